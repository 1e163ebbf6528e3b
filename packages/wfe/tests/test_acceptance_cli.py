"""Acceptance tests for DESIGN.md §8: the ``wfe`` command, run as a real subprocess.

Each test works in its own temporary directory, so the default store
``sqlite:///.wfe/wfe.db`` is created there. Progress is read in the documented plain
format (stdout is a pipe, not a terminal).
"""

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

import pytest

pytest.importorskip("wfe.yaml")
pytest.importorskip("wfe.sqlite")

_SCRIPT = Path(sys.executable).with_name("wfe")
WFE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "wfe.host._cli"]

ID_RE = r"[0-9a-zA-Z-]{8,}"


def wfe(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``wfe ARGS`` in ``cwd`` to the end, capturing its output."""
    return subprocess.run(
        [*WFE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )


def both(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def started_id(output: str) -> str:
    match = re.search(rf"workflow ({ID_RE}) started", output)
    assert match, output
    return match.group(1)


def status_of(cwd: Path, wid: str, *store: str) -> str:
    """The workflow's status as ``wfe show ID`` prints it."""
    shown = wfe(cwd, "show", wid, *store)
    assert shown.returncode == 0, both(shown)
    for status in ("COMPLETE", "SUSPENDED", "TERMINATED", "RUNNABLE"):
        if re.search(rf"status\W+{status}\b", shown.stdout):
            return status
    raise AssertionError(shown.stdout)


HELLO = """
workflow:
  id: hello
  version: 2
  steps:
    - name: Greet
      config:
        run: |
          echo "hello ${{ var.who }}"
          echo "##wfe[output greeted=${{ var.who }}]"
    - name: Shout
      config: {run: "echo LOUD; echo quiet >&2"}
"""


def test_run_success_exits_zero_with_per_step_progress(tmp_path: Path) -> None:
    write(tmp_path / "hello.yaml", HELLO)
    result = wfe(tmp_path, "run", "hello.yaml", "--set", "who=world")
    out = both(result)
    assert result.returncode == 0, out
    wid = started_id(out)
    assert f"[wfe] workflow {wid} started (hello v2)" in result.stdout
    assert "[wfe] step Greet started" in result.stdout
    assert "  Greet | hello world" in result.stdout
    assert re.search(r"^\[wfe\] step Greet completed in \d+(\.\d+)?s$", result.stdout, re.M)
    assert "  Shout | LOUD" in result.stdout
    assert "  Shout [stderr] | quiet" in result.stdout
    assert re.search(r"^\[wfe\] step Shout completed in \d+(\.\d+)?s$", result.stdout, re.M)
    assert re.search(rf"^\[wfe\] workflow {wid} COMPLETE in \d+(\.\d+)?s$", result.stdout, re.M)
    assert result.stdout.index("step Greet completed") < result.stdout.index("step Shout started")


def test_default_store_is_dot_wfe_in_the_current_directory(tmp_path: Path) -> None:
    write(tmp_path / "hello.yaml", HELLO)
    result = wfe(tmp_path, "run", "hello.yaml", "--set", "who=x")
    assert result.returncode == 0, both(result)
    assert (tmp_path / ".wfe" / "wfe.db").is_file()
    wid = started_id(both(result))
    explicit = f"sqlite:///{tmp_path / '.wfe' / 'wfe.db'}"
    listed = wfe(tmp_path, "list", "--store", explicit)
    assert listed.returncode == 0, both(listed)
    assert wid in listed.stdout


def test_store_option_selects_another_store(tmp_path: Path) -> None:
    write(tmp_path / "hello.yaml", HELLO)
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    result = wfe(tmp_path, "run", "hello.yaml", "--set", "who=x", "--store", url)
    assert result.returncode == 0, both(result)
    wid = started_id(both(result))
    assert (tmp_path / "elsewhere.db").is_file()
    assert wid in wfe(tmp_path, "list", "--store", url).stdout
    assert wid not in wfe(tmp_path, "list").stdout


def test_missing_set_value_is_an_error_naming_it(tmp_path: Path) -> None:
    write(tmp_path / "hello.yaml", HELLO)
    result = wfe(tmp_path, "run", "hello.yaml")
    assert result.returncode != 0
    assert "who" in both(result)
    assert "step Greet started" not in result.stdout


FAILING = """
workflow:
  id: fragile
  steps:
    - name: Prepare
      config: {run: "echo preparing"}
    - name: Check
      config:
        run: |
          test -f ready || { echo "ready file is missing" >&2; exit 3; }
          echo "##wfe[output checked=true]"
    - name: Finish
      config: {run: "echo finishing"}
"""


def test_run_failure_exits_nonzero_and_prints_how_to_resume(tmp_path: Path) -> None:
    write(tmp_path / "fragile.yaml", FAILING)
    result = wfe(tmp_path, "run", "fragile.yaml")
    out = both(result)
    assert result.returncode != 0, out
    wid = started_id(out)
    assert re.search(r"^\[wfe\] step Prepare completed in", result.stdout, re.M)
    assert "  Check [stderr] | ready file is missing" in result.stdout
    failed = re.search(r"^\[wfe\] step Check failed: (.*)$", result.stdout, re.M)
    assert failed, result.stdout
    assert "3" in failed.group(1)
    assert "step Finish started" not in result.stdout
    assert f"wfe resume {wid}" in out
    assert status_of(tmp_path, wid) == "SUSPENDED"


def test_resume_after_fixing_the_cause_completes(tmp_path: Path) -> None:
    write(tmp_path / "fragile.yaml", FAILING)
    first = wfe(tmp_path, "run", "fragile.yaml")
    assert first.returncode != 0
    wid = started_id(both(first))
    (tmp_path / "ready").write_text("")
    resumed = wfe(tmp_path, "resume", wid)
    assert resumed.returncode == 0, both(resumed)
    deadline = time.monotonic() + 30
    while status_of(tmp_path, wid) != "COMPLETE":
        # `resume` may only flip the status; a worker then runs the rest.
        assert time.monotonic() < deadline
        worker_until_complete(tmp_path, wid)
    shown = wfe(tmp_path, "show", wid)
    for step in ("Prepare", "Check", "Finish"):
        assert step in shown.stdout


def test_list_and_status_filter(tmp_path: Path) -> None:
    write(tmp_path / "hello.yaml", HELLO)
    write(tmp_path / "fragile.yaml", FAILING)
    ok = started_id(both(wfe(tmp_path, "run", "hello.yaml", "--set", "who=a")))
    bad = started_id(both(wfe(tmp_path, "run", "fragile.yaml")))
    listed = wfe(tmp_path, "list")
    assert listed.returncode == 0, both(listed)
    assert ok in listed.stdout
    assert bad in listed.stdout
    complete = wfe(tmp_path, "list", "--status", "COMPLETE")
    assert complete.returncode == 0, both(complete)
    assert ok in complete.stdout
    assert bad not in complete.stdout
    suspended = wfe(tmp_path, "list", "--status", "SUSPENDED")
    assert bad in suspended.stdout
    assert ok not in suspended.stdout


def test_list_status_is_case_insensitive(tmp_path: Path) -> None:
    write(tmp_path / "hello.yaml", HELLO)
    ok = started_id(both(wfe(tmp_path, "run", "hello.yaml", "--set", "who=a")))
    lower = wfe(tmp_path, "list", "--status", "complete")
    assert lower.returncode == 0, both(lower)
    assert ok in lower.stdout


def test_show_prints_a_step_timeline(tmp_path: Path) -> None:
    write(tmp_path / "hello.yaml", HELLO)
    wid = started_id(both(wfe(tmp_path, "run", "hello.yaml", "--set", "who=a")))
    shown = wfe(tmp_path, "show", wid)
    assert shown.returncode == 0, both(shown)
    assert wid in shown.stdout
    assert "hello" in shown.stdout
    lines = shown.stdout.splitlines()
    greet = [line for line in lines if "Greet" in line]
    shout = [line for line in lines if "Shout" in line]
    assert greet
    assert shout
    assert "COMPLETE" in greet[0]
    assert lines.index(greet[0]) < lines.index(shout[0])


def test_show_unknown_id_fails(tmp_path: Path) -> None:
    write(tmp_path / "hello.yaml", HELLO)
    wfe(tmp_path, "run", "hello.yaml", "--set", "who=a")
    result = wfe(tmp_path, "show", "no-such-workflow")
    assert result.returncode != 0
    assert "no-such-workflow" in both(result)


def test_terminate_a_suspended_workflow(tmp_path: Path) -> None:
    write(tmp_path / "fragile.yaml", FAILING)
    wid = started_id(both(wfe(tmp_path, "run", "fragile.yaml")))
    result = wfe(tmp_path, "terminate", wid)
    assert result.returncode == 0, both(result)
    assert status_of(tmp_path, wid) == "TERMINATED"
    assert wid in wfe(tmp_path, "list", "--status", "TERMINATED").stdout


def test_publish_stores_an_event(tmp_path: Path) -> None:
    write(tmp_path / "hello.yaml", HELLO)
    wfe(tmp_path, "run", "hello.yaml", "--set", "who=a")
    result = wfe(tmp_path, "publish", "approved", "order-17", json.dumps({"ok": True}))
    assert result.returncode == 0, both(result)
    without_data = wfe(tmp_path, "publish", "approved", "order-18")
    assert without_data.returncode == 0, both(without_data)


SLOW = """
workflow:
  id: slow
  steps:
    - name: Nap
      config: {run: "sleep 4; echo '##wfe[output napped=true]'"}
    - name: Done
      config: {run: "echo done"}
"""


def interrupted_run(cwd: Path) -> str:
    """Start `wfe run slow.yaml`, interrupt it mid-step, return the workflow id."""
    write(cwd / "slow.yaml", SLOW)
    proc = subprocess.Popen(
        [*WFE, "run", "slow.yaml", "--plain"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "step Nap started" in line:
            break
    else:
        proc.kill()
        raise AssertionError("".join(lines))
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    output = "".join(lines) + rest + err
    assert proc.returncode != 0, output
    return started_id(output)


def test_interrupted_run_stays_stored_and_resumable(tmp_path: Path) -> None:
    wid = interrupted_run(tmp_path)
    assert status_of(tmp_path, wid) in {"RUNNABLE", "SUSPENDED"}
    resumed = wfe(tmp_path, "resume", wid)
    assert resumed.returncode == 0, both(resumed)
    if status_of(tmp_path, wid) != "COMPLETE":
        worker_until_complete(tmp_path, wid)
    assert status_of(tmp_path, wid) == "COMPLETE"


def test_suspend_then_resume(tmp_path: Path) -> None:
    wid = interrupted_run(tmp_path)
    suspended = wfe(tmp_path, "suspend", wid)
    assert suspended.returncode == 0, both(suspended)
    assert status_of(tmp_path, wid) == "SUSPENDED"
    assert wid in wfe(tmp_path, "list", "--status", "SUSPENDED").stdout
    resumed = wfe(tmp_path, "resume", wid)
    assert resumed.returncode == 0, both(resumed)
    if status_of(tmp_path, wid) != "COMPLETE":
        worker_until_complete(tmp_path, wid)
    assert status_of(tmp_path, wid) == "COMPLETE"


def worker_until_complete(cwd: Path, wid: str, *, store: str | None = None) -> None:
    """Run `wfe worker` until the workflow completes, then stop it with SIGINT."""
    url = store or f"sqlite:///{cwd / '.wfe' / 'wfe.db'}"
    proc = subprocess.Popen(
        [*WFE, "worker", "--store", url],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 40
        while status_of(cwd, wid, "--store", url) != "COMPLETE":
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "worker did not complete the workflow"
            time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_worker_runs_what_the_store_holds(tmp_path: Path) -> None:
    wid = interrupted_run(tmp_path)
    worker_until_complete(tmp_path, wid)
    assert status_of(tmp_path, wid) == "COMPLETE"


def test_validate_good_and_bad_files(tmp_path: Path) -> None:
    write(tmp_path / "hello.yaml", HELLO)
    write(tmp_path / "fragile.yaml", FAILING)
    write(
        tmp_path / "bad.yaml",
        """
        workflow:
          id: bad
          steps:
            - name: a
              config: {run: "true", timeout: whenever}
              bogus: 1
        """,
    )
    good = wfe(tmp_path, "validate", "fragile.yaml")
    assert good.returncode == 0, both(good)
    bad = wfe(tmp_path, "validate", "fragile.yaml", "bad.yaml")
    out = both(bad)
    assert bad.returncode != 0, out
    assert re.search(r"bad\.yaml:5:\d+", out), out
    assert re.search(r"bad\.yaml:6:\d+", out), out
    assert "timeout" in out
    assert "bogus" in out
    assert not (tmp_path / ".wfe").exists() or "bad" not in wfe(tmp_path, "list").stdout


def test_validate_with_set_values(tmp_path: Path) -> None:
    write(tmp_path / "hello.yaml", HELLO)
    result = wfe(tmp_path, "validate", "hello.yaml", "--set", "who=x")
    assert result.returncode == 0, both(result)


def test_run_of_an_invalid_file_runs_nothing(tmp_path: Path) -> None:
    write(
        tmp_path / "partly.yaml",
        f"""
        workflow:
          id: partly
          steps:
            - name: Good
              config: {{run: "touch {tmp_path}/ran"}}
            - name: Bad
              config: {{run: "true", shell: 5, colour: red}}
        """,
    )
    result = wfe(tmp_path, "run", "partly.yaml")
    out = both(result)
    assert result.returncode != 0
    assert re.search(r"partly\.yaml:\d+:\d+", out), out
    assert not (tmp_path / "ran").exists()
    assert "step Good started" not in result.stdout
