"""Three host processes share one PostgreSQL schema and run 300 workflows: every one
completes, every step ran exactly once, and no two executions of one workflow ever
overlapped in time (the lease and the store's fence keep one executor at a time)."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import psycopg
import pytest

from .conftest import URL

WORKER = Path(__file__).with_name("multihost_worker.py")

pytestmark = pytest.mark.slow


def run(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_three_hosts_run_300_workflows_without_overlap(
    tmp_path: Path, store_url: str, schema: str
) -> None:
    log = tmp_path / "log"
    starter = run(store_url, str(log), "start", "300")
    _, err = starter.communicate(timeout=120)
    assert starter.returncode == 0, err
    hosts = [run(store_url, str(log), "serve") for _ in range(3)]
    for host in hosts:
        out, err = host.communicate(timeout=280)
        assert host.returncode == 0, err
        assert out.split() == ["done"], err

    with psycopg.connect(URL) as conn:
        rows = conn.execute(f'SELECT id, status FROM "{schema}".workflows').fetchall()
    assert len(rows) == 300
    assert {status for _, status in rows} == {"COMPLETE"}

    runs: dict[str, list[tuple[int, int, str, int]]] = defaultdict(list)
    open_runs: dict[tuple[str, str, str], int] = {}
    for line in log.read_text().splitlines():
        kind, wid, step, pid, ns = line.split()
        if kind == "start":
            open_runs[(wid, step, pid)] = int(ns)
        else:
            started = open_runs.pop((wid, step, pid))
            runs[wid].append((started, int(ns), step, int(pid)))
    assert not open_runs, f"steps that started and never ended: {open_runs}"
    assert len(runs) == 300
    pids = set()
    for wid, intervals in runs.items():
        intervals.sort()
        assert [s for _, _, s, _ in intervals] == ["1", "2", "3"], f"{wid}: {intervals}"
        for (_, end, _, _), (start, _, _, _) in itertools.pairwise(intervals):
            assert start >= end, f"{wid}: two executions overlapped: {intervals}"
        pids |= {pid for *_, pid in intervals}
    assert len(pids) >= 2, "the work was not shared between hosts"
