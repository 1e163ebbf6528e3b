"""The ``wfe`` command, run as a real process in a scratch directory."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("wfe.yaml")
pytest.importorskip("wfe.sqlite")

pytestmark = pytest.mark.timeout(120)

HELLO = """\
workflow:
  id: hello
  version: 1
  steps:
    - name: greet
      config:
        run: echo "hello ${{ var.who }}"; echo "a warning" >&2
    - name: count
      config:
        run: echo "##wfe[output n=3]"
"""

BROKEN = """\
workflow:
  id: broken
  version: 1
  steps:
    - name: build
      config:
        run: echo building; echo "compiler exploded" >&2; exit 3
"""

SLEEPY = """\
workflow:
  id: sleepy
  version: 1
  steps:
    - name: first
      config:
        run: echo one
    - name: nap
      config:
        run: if [ -f marker ]; then echo resumed; else touch marker; echo sleeping; sleep 60; fi
    - name: last
      config:
        run: echo last
"""

WAITER = """\
from wfe.core import WorkflowBuilder

definition = (
    WorkflowBuilder(dict)
    .start_with(lambda ctx: None).name("begin")
    .wait_for("go", "k1").name("wait-go")
    .output(lambda step, data: data.__setitem__("got", step.event_data))
    .build("waiter", 1)
)
"""

FINAL = re.compile(r"^\[wfe\] workflow ([0-9a-f]+) (COMPLETE|SUSPENDED|TERMINATED) in \d+\.\d\ds$")


def wfe_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "wfe.host._cli", *args]


def wfe(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        wfe_cmd(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def final_line(out: str) -> re.Match[str]:
    last = out.strip().splitlines()[-1]
    match = FINAL.match(last)
    assert match, f"unexpected final line {last!r}"
    return match


def show_json(cwd: Path, wid: str, *store: str) -> dict[str, Any]:
    result = wfe(cwd, "show", wid, "--json", *store)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_run_to_success_prints_step_lines_and_final_line(tmp_path: Path) -> None:
    """A successful run exits 0 with one plain line per event, tagged output lines
    (stderr marked), ``--set`` interpolated, and the default store under ``.wfe/``."""
    write(tmp_path, "hello.yaml", HELLO)
    result = wfe(tmp_path, "run", "hello.yaml", "--set", "who=world")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[wfe] step greet started" in out
    assert "  greet | hello world" in out
    assert "  greet [stderr] | a warning" in out
    assert re.search(r"^\[wfe\] step greet completed in \d+\.\d\ds$", out, re.M)
    assert "[wfe] step count started" in out
    wid, status = final_line(out).groups()
    assert status == "COMPLETE"
    assert f"[wfe] workflow {wid} started (hello v1)" in out
    assert (tmp_path / ".wfe" / "wfe.db").is_file()
    remembered = json.loads((tmp_path / ".wfe" / "definitions.json").read_text())
    assert remembered["hello@1"]["path"] == str(tmp_path / "hello.yaml")
    assert remembered["hello@1"]["config"] == {"who": "world"}


def test_unresolved_set_variable_is_a_usage_error(tmp_path: Path) -> None:
    """A ``${{ var.x }}`` without ``--set x=...`` exits 2 naming the variable and where."""
    write(tmp_path, "hello.yaml", HELLO)
    result = wfe(tmp_path, "run", "hello.yaml")
    assert result.returncode == 2
    assert re.search(
        r"hello\.yaml:7:\d+: workflow\.steps\[0\]\.config\.run: .*var\.who", result.stderr
    )
    bad_set = wfe(tmp_path, "run", "hello.yaml", "--set", "who")
    assert bad_set.returncode == 2
    assert "--set 'who': expected NAME=VALUE" in bad_set.stderr


def test_failing_run_exits_1_with_stderr_tail_and_resume_hint(tmp_path: Path) -> None:
    """A failed step suspends the workflow: exit 1, the step's stderr tail shown, and
    how to resume; fixing the file and ``wfe resume ID`` then completes it."""
    broken = write(tmp_path, "broken.yaml", BROKEN)
    result = wfe(tmp_path, "run", "broken.yaml")
    assert result.returncode == 1
    out = result.stdout
    assert "[wfe] step build failed:" in out
    assert "compiler exploded" in out
    wid, status = final_line(out).groups()
    assert status == "SUSPENDED"
    assert f"wfe resume {wid}" in out
    assert "compiler exploded" in result.stderr
    assert f"wfe resume {wid}" in result.stderr

    broken.write_text(BROKEN.replace("exit 3", "exit 0"))
    resumed = wfe(tmp_path, "resume", wid)
    assert resumed.returncode == 0, resumed.stderr
    assert final_line(resumed.stdout).groups() == (wid, "COMPLETE")


def test_validate_reports_every_issue_with_its_position(tmp_path: Path) -> None:
    """``wfe validate``: 0 when every file is valid, 1 with ``file:line:col: key: message``
    lines otherwise, 2 for a file that does not exist."""
    write(tmp_path, "good.yaml", BROKEN)
    write(
        tmp_path,
        "bad.yaml",
        """\
        workflow:
          id: x
          version: one
          steps:
            - name: a
              confg: {}
        """,
    )
    good = wfe(tmp_path, "validate", "good.yaml")
    assert good.returncode == 0
    bad = wfe(tmp_path, "validate", "good.yaml", "bad.yaml")
    assert bad.returncode == 1
    assert "bad.yaml:3:12: workflow.version: " in bad.stdout
    assert re.search(r"^bad\.yaml:6:7: workflow\.steps\[0\]\.confg: unknown key", bad.stdout, re.M)
    missing = wfe(tmp_path, "validate", "nope.yaml")
    assert missing.returncode == 2
    assert "nope.yaml: no such file" in missing.stderr
    run_bad = wfe(tmp_path, "run", "bad.yaml")
    assert run_bad.returncode == 2
    assert re.search(r"^bad\.yaml:3:12: workflow\.version: ", run_bad.stderr, re.M)
    assert "Traceback" not in run_bad.stderr


def test_list_and_show_after_runs(tmp_path: Path) -> None:
    """``wfe list`` shows stored workflows (filtered by ``--status``); ``wfe show`` a step
    timeline with errors; an unknown id exits 2."""
    write(tmp_path, "hello.yaml", HELLO)
    write(tmp_path, "broken.yaml", BROKEN)
    ok_id = final_line(wfe(tmp_path, "run", "hello.yaml", "--set", "who=x").stdout).group(1)
    bad_id = final_line(wfe(tmp_path, "run", "broken.yaml").stdout).group(1)

    listed = wfe(tmp_path, "list")
    assert listed.returncode == 0
    assert re.search(rf"^{ok_id}\s+hello v1\s+COMPLETE", listed.stdout, re.M)
    assert re.search(rf"^{bad_id}\s+broken v1\s+SUSPENDED", listed.stdout, re.M)
    suspended = wfe(tmp_path, "list", "--status", "suspended", "--json")
    assert [w["id"] for w in json.loads(suspended.stdout)] == [bad_id]
    assert wfe(tmp_path, "list", "--status", "sleepy").returncode == 2

    shown = wfe(tmp_path, "show", ok_id)
    assert shown.returncode == 0
    assert re.search(
        r"^\s+greet\s+COMPLETE\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d+\.\d\ds", shown.stdout, re.M
    )
    assert re.search(r"^\s+count\s+COMPLETE", shown.stdout, re.M)
    failed = wfe(tmp_path, "show", bad_id)
    assert re.search(r"^\s+build\s+FAILED", failed.stdout, re.M)
    assert "errors:" in failed.stdout
    assert "compiler exploded" in failed.stdout
    data = show_json(tmp_path, ok_id)
    assert [s["name"] for s in data["steps"]] == ["greet", "count"]
    assert data["data"]["n"] == 3
    unknown = wfe(tmp_path, "show", "no-such-id")
    assert unknown.returncode == 2
    assert "no workflow 'no-such-id'" in unknown.stderr


def test_inputs_are_typed_and_checked(tmp_path: Path) -> None:
    """``--input n=3`` is the integer 3; an input of the wrong type exits 2."""
    write(
        tmp_path,
        "typed.yaml",
        """\
        workflow:
          id: typed
          version: 1
          inputs:
            n: {type: integer}
          steps:
            - name: show
              config:
                run: echo "n is ${{ data.n }}"
        """,
    )
    ok = wfe(tmp_path, "run", "typed.yaml", "--input", "n=3")
    assert ok.returncode == 0, ok.stderr
    assert "  show | n is 3" in ok.stdout
    bad = wfe(tmp_path, "run", "typed.yaml", "--input", "n=abc")
    assert bad.returncode == 2
    assert "typed.yaml:5:" in bad.stderr


def test_a_file_with_several_workflows_needs_workflow(tmp_path: Path) -> None:
    """With several workflows in the file, ``--workflow ID`` picks one; without it the
    command exits 2 naming them."""
    write(
        tmp_path,
        "two.yaml",
        """\
        workflows:
          - id: a
            version: 1
            steps:
              - {name: s, config: {run: echo from-a}}
          - id: b
            version: 1
            steps:
              - {name: s, config: {run: echo from-b}}
        """,
    )
    ambiguous = wfe(tmp_path, "run", "two.yaml")
    assert ambiguous.returncode == 2
    assert "a, b" in ambiguous.stderr
    assert "--workflow" in ambiguous.stderr
    picked = wfe(tmp_path, "run", "two.yaml", "--workflow", "b")
    assert picked.returncode == 0
    assert "  s | from-b" in picked.stdout
    assert wfe(tmp_path, "run", "two.yaml", "--workflow", "c").returncode == 2


def test_store_errors_exit_3(tmp_path: Path) -> None:
    """A store that cannot be opened exits 3 with a message naming it."""
    write(tmp_path, "hello.yaml", HELLO)
    missing_dir = wfe(
        tmp_path, "run", "hello.yaml", "--set", "who=x", "--store", "sqlite:///no/x.db"
    )
    assert missing_dir.returncode == 3
    assert "sqlite:///no/x.db" in missing_dir.stderr
    unknown = wfe(tmp_path, "list", "--store", "nosuch://x")
    assert unknown.returncode == 3
    assert "nosuch" in unknown.stderr
    assert "Traceback" not in unknown.stderr + missing_dir.stderr


def test_suspend_resume_terminate_a_stored_workflow(tmp_path: Path) -> None:
    """Control commands change a stored workflow's status without running it; a
    terminated workflow cannot be resumed."""
    write(tmp_path, "waiter.py", WAITER)
    started = wfe(tmp_path, "run", "--import", "waiter", "--detach")
    assert started.returncode == 0, started.stderr
    wid = re.search(r"workflow ([0-9a-f]+) started", started.stdout).group(1)  # type: ignore[union-attr]
    assert show_json(tmp_path, wid)["status"] == "RUNNABLE"
    assert wfe(tmp_path, "suspend", wid).returncode == 0
    assert show_json(tmp_path, wid)["status"] == "SUSPENDED"
    again = wfe(tmp_path, "suspend", wid)
    assert again.returncode == 1
    assert "it is SUSPENDED" in again.stderr
    assert wfe(tmp_path, "resume", wid, "--detach").returncode == 0
    assert show_json(tmp_path, wid)["status"] == "RUNNABLE"
    assert wfe(tmp_path, "terminate", wid).returncode == 0
    assert show_json(tmp_path, wid)["status"] == "TERMINATED"
    assert wfe(tmp_path, "resume", wid).returncode == 1
    assert wfe(tmp_path, "terminate", "nope").returncode == 2


def test_publish_wakes_a_workflow_run_by_a_worker(tmp_path: Path) -> None:
    """A background ``wfe worker`` runs a stored workflow up to its wait; ``wfe publish``
    wakes it; SIGINT stops the worker cleanly (exit 0)."""
    write(tmp_path, "waiter.py", WAITER)
    store = ["--store", "sqlite:///state/wfe.db"]
    (tmp_path / "state").mkdir()
    started = wfe(tmp_path, "run", "--import", "waiter", "--detach", *store)
    assert started.returncode == 0, started.stderr
    wid = re.search(r"workflow ([0-9a-f]+) started", started.stdout).group(1)  # type: ignore[union-attr]
    # The worker needs no arguments: the definition's source was remembered.
    worker = subprocess.Popen(
        wfe_cmd("worker", *store),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while show_json(tmp_path, wid, *store)["steps"][-1]["name"] != "wait-go":
            assert time.monotonic() < deadline, "the worker never reached the wait"
            time.sleep(0.2)
        published = wfe(tmp_path, "publish", "go", "k1", '{"a": 1}', *store)
        assert published.returncode == 0, published.stderr
        while (data := show_json(tmp_path, wid, *store))["status"] != "COMPLETE":
            assert time.monotonic() < deadline, "the event did not complete the workflow"
            time.sleep(0.2)
        assert data["data"]["got"] == {"a": 1}
    finally:
        worker.send_signal(signal.SIGINT)
        out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert f"[wfe] {wid} step wait-go started" in out
    assert f"[wfe] workflow {wid} COMPLETE" in out
    assert out.strip().endswith("[wfe] worker stopped")


def test_interrupted_run_exits_130_and_resumes(tmp_path: Path) -> None:
    """SIGINT during a step exits 130 leaving the workflow stored; ``wfe resume ID``
    (no file: its source was remembered) runs it to the end."""
    write(tmp_path, "sleepy.yaml", SLEEPY)
    proc = subprocess.Popen(
        wfe_cmd("run", "sleepy.yaml"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "nap | sleeping" in line:
            break
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    out = "".join(seen) + rest
    assert proc.returncode == 130, out + err
    wid = re.search(r"workflow ([0-9a-f]+) started", out).group(1)  # type: ignore[union-attr]
    assert f"[wfe] workflow {wid} INTERRUPTED after" in out
    assert f"wfe resume {wid}" in err
    assert show_json(tmp_path, wid)["status"] == "RUNNABLE"

    resumed = wfe(tmp_path, "resume", wid)
    assert resumed.returncode == 0, resumed.stderr
    assert "  nap | resumed" in resumed.stdout
    assert "  last | last" in resumed.stdout
    assert final_line(resumed.stdout).groups() == (wid, "COMPLETE")


def test_terminal_gets_a_live_table_then_the_final_line(tmp_path: Path) -> None:
    """On a terminal the steps show in a rich Live table; the summary line follows it."""
    import pty

    write(tmp_path, "hello.yaml", HELLO)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        wfe_cmd("run", "hello.yaml", "--set", "who=tty"),
        cwd=tmp_path,
        stdout=follower,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process has exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    screen = b"".join(chunks).decode(errors="replace")
    assert "greet" in screen
    assert "completed" in screen
    assert "##wfe[output n=3]" in screen  # the last output line of `count`
    assert "[wfe] step greet started" not in screen  # not the plain lines
    assert re.search(r"\[wfe\] workflow [0-9a-f]+ COMPLETE in \d+\.\d\ds", screen)
