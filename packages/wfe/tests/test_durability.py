"""Durability with real processes on one SQLite file: crashes, restarts, two hosts."""

from __future__ import annotations

import collections
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("durability_worker.py")

pytestmark = pytest.mark.slow


def spawn(db: Path, log: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), str(log), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(log: Path, needle: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and needle in log.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} never appeared in {log}")


def finish(proc: subprocess.Popen[str], timeout: float = 90) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"worker failed ({proc.returncode}):\n{err}"
    return out


def steps(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines()]


def test_sigkill_mid_step_resumes_in_new_process(tmp_path: Path) -> None:
    """A host killed with SIGKILL inside step 2: a new process resumes the workflow,
    step 1 does not run again, step 2 runs again, step 3 runs once."""
    db, log = tmp_path / "wfe.db", tmp_path / "steps.log"
    first = spawn(db, log, "start-crash")
    assert first.stdout is not None
    wid = first.stdout.readline().strip()
    wait_for_line(log, "step2")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    out = finish(spawn(db, log, "resume", wid))
    assert out.strip() == "COMPLETE"
    ran = collections.Counter(parts[0] for parts in steps(log))
    assert ran == {"step1": 1, "step2": 2, "step3": 1}
    pids = {parts[0]: parts[2] for parts in steps(log)}
    assert pids["step1"] == str(first.pid)
    assert pids["step3"] != str(first.pid)


def test_waiting_workflow_survives_restart(tmp_path: Path) -> None:
    """A workflow waiting for an event survives a host restart and completes when the
    event is published to the new host."""
    db, log = tmp_path / "wfe.db", tmp_path / "steps.log"
    out = finish(spawn(db, log, "start-wait"))
    wid = out.strip()
    assert "step3" not in log.read_text()
    out = finish(spawn(db, log, "publish", wid))
    assert out.split() == ["COMPLETE", "ops"]
    assert [p[0] for p in steps(log)] == ["step1", "step3"]


def test_two_hosts_never_run_one_instance_at_once(tmp_path: Path) -> None:
    """Two host processes on one file run 100 workflows; no instance runs on both at once."""
    db, log = tmp_path / "wfe.db", tmp_path / "steps.log"
    a = spawn(db, log, "many", "100", "1")
    b = spawn(db, log, "many", "100", "0")
    assert finish(a, 180).strip() == "100"
    assert finish(b, 180).strip() == "100"
    spans: dict[str, list[tuple[float, float, str]]] = collections.defaultdict(list)
    open_: dict[tuple[str, str, str], float] = {}
    for kind, wid, step, pid, stamp in steps(log):
        if kind == "begin":
            open_[(wid, step, pid)] = float(stamp)
        else:
            spans[wid].append((open_.pop((wid, step, pid)), float(stamp), pid))
    assert len(spans) == 100
    assert all(len(s) == 3 for s in spans.values()), "each step ran exactly once"
    for wid, runs in spans.items():
        runs.sort()
        for (_s1, e1, p1), (s2, _e2, p2) in itertools.pairwise(runs):
            assert s2 >= e1 or p1 == p2, f"{wid} ran on {p1} and {p2} at once"
    hosts = {pid for runs in spans.values() for _s, _e, pid in runs}
    assert len(hosts) == 2, "both hosts did work"
    assert os.path.exists(db)
