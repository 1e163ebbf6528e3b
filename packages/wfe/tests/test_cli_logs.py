"""``wfe logs``: every step's output kept in the store (shell stdout/stderr, Deno
``console.log``/``Wfe.log``, code steps' ``ctx.log``), read back by another process."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from wfe.core import ExecutionResult, StepExecutionContext, WorkflowBuilder, WorkflowStatus
from wfe.host import WorkflowHostBuilder
from wfe.sqlite import SqlitePersistenceProvider

from .cli_support import started_id, wfe, wfe_cmd, write

pytest.importorskip("wfe.yaml")
pytest.importorskip("wfe.sqlite")

PIPELINE = """\
workflow:
  id: logs
  steps:
    - name: shell
      config: {run: "echo out-line; echo err-line >&2"}
    - name: js
      type: deno
      config:
        script: |
          console.log("from console.log");
          Wfe.log("from Wfe.log");
    - name: grid
      matrix: {n: [1, 2]}
      config: {run: "echo grid-${{ matrix.n }}"}
    - name: broken
      config: {run: "echo about to fail; exit 7"}
"""


def test_logs_show_every_steps_output_and_filter_by_step(tmp_path: Path) -> None:
    write(tmp_path, "logs.yaml", PIPELINE)
    run = wfe(tmp_path, "run", "logs.yaml", "--plain")
    assert run.returncode == 1, run.stdout + run.stderr
    wid = started_id(run.stdout)
    result = wfe(tmp_path, "logs", wid)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    for expected in (
        "shell | out-line",
        "shell [stderr] | err-line",
        "js | from console.log",
        "js [log] | from Wfe.log",
        "grid (1) | grid-1",
        "grid (2) | grid-2",
        "broken | about to fail",
    ):
        assert expected in out, result.stdout
    assert out.index("shell | out-line") < out.index("js | from console.log")
    assert "[wfe] step broken failed: step 'broken' failed with exit code 7; stdout tail:" in out
    grid = wfe(tmp_path, "logs", wid, "grid").stdout.splitlines()
    assert sorted(grid) == ["grid (1) | grid-1", "grid (2) | grid-2"]
    one = wfe(tmp_path, "logs", wid, "grid (2)").stdout.splitlines()
    assert one == ["grid (2) | grid-2"]
    missing = wfe(tmp_path, "logs", "nope")
    assert missing.returncode == 2
    assert "no workflow 'nope'" in missing.stderr


def test_logs_follow_prints_lines_as_a_running_workflow_writes_them(tmp_path: Path) -> None:
    write(
        tmp_path,
        "slow.yaml",
        """\
        workflow:
          id: slow
          steps:
            - name: wait
              config:
                run: |
                  echo first
                  while [ ! -e go ]; do sleep 0.05; done
                  echo second
        """,
    )
    with (
        subprocess.Popen(
            wfe_cmd("run", "slow.yaml", "--plain"), cwd=tmp_path, stdout=subprocess.PIPE, text=True
        ) as runner,
    ):
        assert runner.stdout is not None
        wid = started_id(runner.stdout.readline())
        for line in runner.stdout:  # the step has printed its first line
            if "wait | first" in line:
                break
        with subprocess.Popen(
            wfe_cmd("logs", wid, "--follow"), cwd=tmp_path, stdout=subprocess.PIPE, text=True
        ) as follower:
            assert follower.stdout is not None
            assert follower.stdout.readline() == "wait | first\n"
            (tmp_path / "go").touch()
            rest = follower.stdout.read()
            assert follower.wait(timeout=30) == 0
        assert "wait | second" in rest
        runner.stdout.read()
        assert runner.wait(timeout=30) == 0


async def test_code_steps_ctx_log_lines_are_stored_and_bounded(tmp_path: Path) -> None:
    def chatty(ctx: StepExecutionContext) -> ExecutionResult:
        for i in range(10):
            ctx.log(f"line {i}")
        ctx.log("x" * 100, "stderr")
        return ExecutionResult.next()

    definition = WorkflowBuilder(dict).start_with(chatty).name("chatty").build("chat", 1)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    builder = (
        WorkflowHostBuilder()
        .persistence(url)
        .register(definition)
        .step_log_limits(max_lines=3, max_line_length=20)
    )
    async with builder.build() as host:
        wid = await host.start_workflow("chat", 1, {})
        assert (await host.wait_for_workflow(wid, timeout=30)).status is WorkflowStatus.COMPLETE
    result = wfe(tmp_path, "logs", wid, "--store", url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "chatty [log] | line 0",
        "chatty [log] | line 1",
        "chatty [log] | line 2",
        "chatty [log] | [wfe] this step attempt wrote more than 3 lines; the rest is not kept",
    ]


def test_the_stored_lines_per_step_are_bounded_by_an_environment_variable(tmp_path: Path) -> None:
    write(
        tmp_path,
        "many.yaml",
        """\
        workflow:
          id: many
          steps:
            - {name: loud, config: {run: "for i in 1 2 3 4 5; do echo line $i; done"}}
        """,
    )
    result = subprocess.run(
        wfe_cmd("run", "many.yaml", "--plain"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "WFE_STEP_LOG_LINES": "2"},
    )
    assert result.returncode == 0, result.stderr
    assert "loud | line 5" in result.stdout  # shown live in full
    stored = wfe(tmp_path, "logs", started_id(result.stdout)).stdout.splitlines()
    assert stored == [
        "loud | line 1",
        "loud | line 2",
        "loud [log] | [wfe] this step attempt wrote more than 2 lines; the rest is not kept",
    ]
    bad = subprocess.run(
        wfe_cmd("run", "many.yaml"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "WFE_STEP_LOG_LINES": "lots"},
    )
    assert bad.returncode == 2
    assert "$WFE_STEP_LOG_LINES must be a whole number >= 0, got 'lots'" in bad.stderr


async def test_step_logs_take_the_lines_after_every_step_middleware(tmp_path: Path) -> None:
    """The store's copy is the innermost sink: a middleware that puts a sink of its own
    in place (as ``wfe run`` does to print lines) still has the step's lines stored, and
    lines the middleware itself logs around the step are not the step's."""
    seen: list[str] = []

    async def own_sink(ctx: Any, body: Any, proceed: Any) -> Any:
        ctx.log("before, by the middleware")
        ctx.log_sink = lambda stream, line: seen.append(line)
        try:
            return await proceed()
        finally:
            ctx.log("after, by the middleware")

    def step(ctx: StepExecutionContext) -> None:
        ctx.log("by the step")

    definition = WorkflowBuilder(dict).start_with(step).name("one").build("mw-logs", 1)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    builder = (
        WorkflowHostBuilder().persistence(url).register(definition).use_step_middleware(own_sink)
    )
    async with builder.build() as host:
        wid = await host.start_workflow("mw-logs", 1, {})
        assert (await host.wait_for_workflow(wid, timeout=30)).status is WorkflowStatus.COMPLETE
    # A host writes the lines still buffered as it stops.
    async with SqlitePersistenceProvider(url) as store:
        stored = await store.read_step_logs(wid)
    assert [line.line for line in stored] == ["by the step"]
    assert seen == ["by the step", "after, by the middleware"]
