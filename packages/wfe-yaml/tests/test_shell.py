"""The shell step type: outputs, environment, streaming, failures and timeouts."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from wfe.core import StepError
from wfe.yaml import ShellStepError, ShellStepType, StepInfo
from wfe.yaml._shell_outputs import export_env, parse_output_line, parse_output_value

Runner = Any  # the `runner` fixture of conftest.py


def info(name: str, base: Path | None, exported: frozenset[str] = frozenset()) -> StepInfo:
    return StepInfo(
        name=name, workflow_id="t", file="t.yaml", base_dir=base or Path.cwd(), exported=exported
    )


async def assert_gone(pid: int) -> None:
    """The process ``pid`` is dead (a zombie awaiting its reaper counts as dead)."""
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        stat = trio.Path(f"/proc/{pid}/stat")
        try:
            if (await stat.read_text()).rsplit(")", 1)[-1].split()[0] == "Z":
                return
        except FileNotFoundError:
            return
        await trio.sleep(0.05)
    pytest.fail(f"process {pid} survived")


def shell(
    config: dict[str, Any],
    name: str = "step",
    base: Path | None = None,
    exported: frozenset[str] = frozenset(),
) -> Any:
    return ShellStepType().build(config, info(name, base, exported))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("false", False),
        ("null", None),
        ("42", 42),
        ("-7", -7),
        ("3.5", 3.5),
        ("1e3", 1000.0),
        ("True", "True"),
        ("nan", "nan"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_output_values_are_typed(text: str, value: Any) -> None:
    assert parse_output_value(text) == value
    assert type(parse_output_value(text)) is type(value)


def test_output_line_syntax() -> None:
    assert parse_output_line("##wfe[output files=3]") == ("files", 3)
    assert parse_output_line("##wfe[output msg=a]b]") == ("msg", "a]b")
    assert parse_output_line("echo ##wfe[output x=1]") is None


async def test_outputs_merge_into_data_and_record_the_step(runner: Runner) -> None:
    body = shell(
        {
            "run": 'echo "##wfe[output files=3]"; echo "##wfe[output ok=true]"; '
            'echo "##wfe[output name=hello world]"; echo oops >&2'
        },
        name="Count",
    )
    data = await runner.run(body, {})
    assert data["files"] == 3
    assert data["ok"] is True
    assert data["name"] == "hello world"
    record = data["steps"]["Count"]
    assert record["exit_code"] == 0
    assert "##wfe[output files=3]" in record["stdout"]
    assert record["stderr"] == "oops\n"
    assert record["outputs"] == {"files": 3, "ok": True, "name": "hello world"}


async def test_output_lines_are_streamed_to_the_log(runner: Runner) -> None:
    await runner.run(shell({"run": "echo one; echo two >&2; printf three"}), {})
    assert runner.lines("stdout") == ["one", "three"]
    assert runner.lines("stderr") == ["two"]


async def test_data_keys_are_exported_upper_cased(runner: Runner) -> None:
    body = shell(
        {"run": 'echo "##wfe[output got=$BRANCH|$COUNT|$ITEMS|$MY_KEY]"'},
        exported=frozenset({"branch", "count", "items", "my-key"}),
    )
    data = await runner.run(body, {"branch": "main", "count": 3, "items": [1, "a"], "my-key": None})
    assert data["got"] == 'main|3|[1, "a"]|null'


def test_dangerous_names_are_not_exported() -> None:
    env, skipped = export_env({"path": "/evil", "bash_env": "/x", "ld_preload": "x", "ok": "y"})
    assert env == {"OK": "y"}
    assert len(skipped) == 3


async def test_env_working_dir_and_shell(runner: Runner, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    body = shell(
        {
            "run": 'echo "##wfe[output where=$(pwd)]"; echo "##wfe[output greeting=$GREETING]"; '
            'echo "##wfe[output arr=${BASH_VERSION:+bash}]"',
            "env": {"GREETING": "hi ${{ data.who }}"},
            "working_dir": "sub",
            "shell": "bash",
        },
        base=tmp_path,
    )
    data = await runner.run(body, {"who": "bob"})
    assert data["where"] == str(tmp_path / "sub")
    assert data["greeting"] == "hi bob"
    assert data["arr"] == "bash"


async def test_file_script_runs(runner: Runner, tmp_path: Path) -> None:
    (tmp_path / "s.sh").write_text('echo "##wfe[output from_file=$X]"\n')
    body = shell({"file": "s.sh"}, base=tmp_path, exported=frozenset({"x"}))
    data = await runner.run(body, {"x": "yes"})
    assert data["from_file"] == "yes"


async def test_non_zero_exit_is_a_step_error_with_code_and_stderr(runner: Runner) -> None:
    body = shell({"run": "echo before; echo broken thing >&2; exit 3"}, name="Bad")
    data: dict[str, Any] = {}
    with pytest.raises(ShellStepError) as info_:
        await runner.run(body, data)
    assert isinstance(info_.value, StepError)
    assert info_.value.exit_code == 3
    assert "exit code 3" in str(info_.value)
    assert "broken thing" in str(info_.value)
    assert data["steps"]["Bad"]["exit_code"] == 3


async def test_timeout_kills_the_whole_process_group(runner: Runner, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    body = shell({"run": f"sleep 30 & echo $! > {pidfile}; wait", "timeout": "500ms"})
    started = time.monotonic()
    with pytest.raises(ShellStepError, match="timed out") as exc:
        await runner.run(body, {})
    assert exc.value.timed_out
    # The child sleeps 30 s: returning well before that shows the group was killed.
    assert time.monotonic() - started < 20
    await assert_gone(int(pidfile.read_text()))


async def test_cancellation_kills_the_process_group(runner: Runner, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    body = shell({"run": f"sleep 30 & echo $! > {pidfile}; wait"})
    async with trio.open_nursery() as nursery:
        nursery.start_soon(runner.run, body, {})
        # Cancel once the background child exists, not after a guessed delay.
        with trio.fail_after(10):
            while not pidfile.exists() or not pidfile.read_text().strip():
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    await assert_gone(int(pidfile.read_text()))


async def test_background_child_holding_the_pipe_does_not_hang(runner: Runner) -> None:
    started = time.monotonic()
    data = await runner.run(shell({"run": "sleep 20 & echo done"}), {})
    assert data["steps"]["step"]["stdout"] == "done\n"
    # Waiting for the background child to close the pipe would take 20 s.
    assert time.monotonic() - started < 15


async def test_output_tails_are_bounded(runner: Runner) -> None:
    data = await runner.run(
        shell({"run": "i=0; while [ $i -lt 2000 ]; do printf '%0100d\\n' $i; i=$((i+1)); done"}),
        {},
    )
    stdout = data["steps"]["step"]["stdout"]
    assert len(stdout) == 64 * 1024
    assert stdout.endswith("1999\n")


async def test_missing_working_dir_is_a_step_error(runner: Runner, tmp_path: Path) -> None:
    with pytest.raises(StepError, match="not a directory"):
        await runner.run(shell({"run": "true", "working_dir": "nope"}, base=tmp_path), {})


async def test_unresolved_data_is_a_step_error_naming_it(runner: Runner) -> None:
    with pytest.raises(StepError, match=r"data\.missing"):
        await runner.run(shell({"run": "echo ${{ data.missing }}"}), {"present": 1})
