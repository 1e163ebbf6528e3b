# ruff: noqa: E501  (a YAML step reads better unwrapped)
"""What ``wfe run`` shows and runs: each attempt of a retried step, output under the
right step and attempt, only the workflow it starts, a failure told once, and the
output of failing commands and of code steps."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from .cli_support import show_json, started_id, wfe, wfe_cmd, write

pytest.importorskip("wfe.yaml")
pytest.importorskip("wfe.sqlite")

pytestmark = pytest.mark.timeout(120)

FLAKY = """\
workflow:
  id: flaky
  version: 1
  outputs:
    done: bool
  steps:
    - name: flaky
      error_behavior: {type: retry, interval: 100ms, max_retries: 3}
      config:
        run: |
          n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count
          echo "attempt $n"
          [ $n -ge 3 ] || { echo "not yet"; exit 1; }
    - name: after
      config:
        run: echo "##wfe[output done=true]"
"""

SLEEPY = """\
workflow:
  id: sleepy
  version: 1
  steps:
    - name: nap
      config:
        run: if [ -f marker ]; then echo resumed; else touch marker; echo sleeping; sleep 60; fi
    - name: last
      config:
        run: touch sleepy-finished
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


def test_each_attempt_is_shown_in_order(tmp_path: Path) -> None:
    """Attempts 2 and 3 are announced with their number, their output comes under them
    (before the next step), and the internal (outputs) step is not shown."""
    write(tmp_path, "flaky.yaml", FLAKY)
    result = wfe(tmp_path, "run", "flaky.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [
        ln for ln in result.stdout.splitlines() if not ln.startswith(("[wfe] workflow", "    "))
    ]
    expected = [
        "[wfe] step flaky started",
        "  flaky | attempt 1",
        "  flaky | not yet",
        "[wfe] step flaky failed (attempt 1/4; retrying in 0.10s): step 'flaky' failed",
        "[wfe] step flaky started (attempt 2/4)",
        "  flaky | attempt 2",
        "  flaky | not yet",
        "[wfe] step flaky failed (attempt 2/4; retrying in 0.10s): step 'flaky' failed",
        "[wfe] step flaky started (attempt 3/4)",
        "  flaky | attempt 3",
        "[wfe] step flaky completed in",
        "[wfe] step after started",
    ]
    assert len(lines) >= len(expected), result.stdout
    for want, got in zip(expected, lines, strict=False):
        assert got.startswith(want), f"{got!r} does not start with {want!r}\n{result.stdout}"
    assert "(outputs)" not in result.stdout


def _interrupted(tmp_path: Path) -> str:
    """Start sleepy.yaml, Ctrl-C it during its first step; returns its id."""
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
    rest, _ = proc.communicate(timeout=30)
    out = "".join(seen) + rest
    assert proc.returncode == 130, out
    assert "[wfe] step nap interrupted" in out
    return started_id(out)


def test_run_leaves_other_interrupted_workflows_alone(tmp_path: Path) -> None:
    """``wfe run`` runs the workflow it starts; an interrupted one of the same store is
    not finished behind the user's back, and one line says how to run it."""
    other = _interrupted(tmp_path)
    write(tmp_path, "flaky.yaml", FLAKY)
    result = wfe(tmp_path, "run", "flaky.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    notes = [ln for ln in result.stdout.splitlines() if "not run here" in ln]
    assert len(notes) == 1, result.stdout
    assert other in notes[0]
    assert "wfe resume" in notes[0]
    assert "wfe worker" in notes[0]
    assert "nap" not in result.stdout
    assert not (tmp_path / "sleepy-finished").exists()
    assert show_json(tmp_path, other)["status"] == "RUNNABLE"


def test_a_resumed_step_is_announced_before_its_output(tmp_path: Path) -> None:
    """The step cut short by Ctrl-C runs again on resume: started, output, completed —
    in that order."""
    wid = _interrupted(tmp_path)
    resumed = wfe(tmp_path, "resume", wid)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    lines = resumed.stdout.splitlines()
    order = [
        lines.index("[wfe] step nap started"),
        lines.index("  nap | resumed"),
        next(i for i, ln in enumerate(lines) if ln.startswith("[wfe] step nap completed")),
        lines.index("[wfe] step last started"),
    ]
    assert order == sorted(order), resumed.stdout
    assert (tmp_path / "sleepy-finished").exists()


def test_a_failure_is_told_once_in_a_merged_log(tmp_path: Path) -> None:
    """With stdout and stderr in one log (CI), the error message appears once."""
    write(tmp_path, "broken.yaml", BROKEN)
    result = wfe(tmp_path, "run", "broken.yaml", merged=True)
    assert result.returncode == 1
    assert result.stdout.count("failed with exit code 3") == 1, result.stdout
    wid = started_id(result.stdout)
    assert f"wfe resume {wid}" in result.stdout


def test_an_empty_stderr_shows_the_stdout_tail(tmp_path: Path) -> None:
    """A command that explains itself on stdout (pytest exits 5 so) has that in its error."""
    write(
        tmp_path,
        "quiet.yaml",
        """\
        workflow:
          id: quiet
          version: 1
          steps:
            - name: tests
              config:
                run: echo "collected 0 items"; echo "no tests ran"; exit 5
        """,
    )
    result = wfe(tmp_path, "run", "quiet.yaml")
    assert result.returncode == 1
    failed = result.stdout[result.stdout.index("[wfe] step tests failed") :]
    assert "exit code 5; stdout tail:" in failed
    assert "no tests ran" in failed
    assert "stderr was empty" not in result.stdout + result.stderr


def test_a_timeout_is_written_as_a_duration(tmp_path: Path) -> None:
    write(
        tmp_path,
        "slow.yaml",
        """\
        workflow:
          id: slow
          version: 1
          steps:
            - name: slow
              config:
                run: sleep 30
                timeout: 300ms
        """,
    )
    result = wfe(tmp_path, "run", "slow.yaml")
    assert result.returncode == 1
    assert "timed out after 300ms" in result.stdout
    assert not re.search(r"\d:\d\d:\d\d", result.stdout)


def test_print_in_a_code_step_is_shown_under_it(tmp_path: Path) -> None:
    write(
        tmp_path,
        "greeter.py",
        """\
        from wfe.core import WorkflowBuilder

        def greet(ctx):
            print("hello from print")
            print("half", end="")
            print(" a line")

        definition = WorkflowBuilder(dict).start_with(greet).name("greet").build("greeter", 1)
        """,
    )
    result = wfe(tmp_path, "run", "--import", "greeter")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "  greet | hello from print" in result.stdout
    assert "  greet | half a line" in result.stdout


def test_changed_steps_under_the_same_version_warn(tmp_path: Path) -> None:
    write(tmp_path, "broken.yaml", BROKEN)
    assert wfe(tmp_path, "run", "broken.yaml").returncode == 1
    changed = BROKEN.replace("exit 3", "exit 0") + (
        "    - name: package\n      config:\n        run: echo packaging\n"
    )
    write(tmp_path, "broken.yaml", changed)
    result = wfe(tmp_path, "run", "broken.yaml")
    assert result.returncode == 0, result.stderr
    assert "warning: 'broken' version 1 ran in this store with other steps" in result.stderr
    assert "new version" in result.stderr


def test_string_inputs_keep_their_text(tmp_path: Path) -> None:
    """``--input version=1.10`` for a string input is "1.10", not the float 1.1; other
    types are read by their declaration."""
    write(
        tmp_path,
        "release.yaml",
        """\
        workflow:
          id: release
          version: 1
          inputs:
            version: string
            count: integer
            dry_run: bool
            tags: list<string>
          steps:
            - name: show
              config:
                run: echo "${{ data.version }} ${{ data.count }} ${{ data.dry_run }} ${{ data.tags }}"
        """,
    )
    inputs = ["version=1.10", "count=3", "dry_run=yes", 'tags=["a","b"]']
    result = wfe(tmp_path, "run", "release.yaml", *(a for i in inputs for a in ("--input", i)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert '  show | 1.10 3 true ["a", "b"]' in result.stdout
    bad = wfe(
        tmp_path,
        "run",
        "release.yaml",
        "--input",
        "version=1",
        "--input",
        "count=x",
        "--input",
        "dry_run=no",
        "--input",
        "tags=[]",
    )
    assert bad.returncode == 2
    assert "input count: expected integer, got str 'x'" in bad.stderr
