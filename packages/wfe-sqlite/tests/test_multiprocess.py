"""Two OS processes sharing one file: the lock admits one owner at a time, and the
queue delivers each acked item once."""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from wfe.core.protocols import QueueKind
from wfe.sqlite import SqliteQueueProvider

LOCK_WORKER = r"""
import sys, time, trio
from datetime import timedelta
from wfe.sqlite import SqliteLockProvider

async def main(url, log, rounds):
    async with SqliteLockProvider(url) as locks:
        done = 0
        while done < rounds:
            lease = await locks.acquire("shared", timedelta(seconds=10))
            if lease is None:
                await trio.sleep(0.001)
                continue
            with open(log, "a") as f:
                f.write(f"enter {lease.fencing_token}\n")
                f.flush()
                time.sleep(0.003)  # hold the resource for a while
                f.write(f"exit {lease.fencing_token}\n")
            await locks.release(lease)
            done += 1

trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
"""

QUEUE_WORKER = r"""
import os, sys, trio
from pathlib import Path
from wfe.core.protocols import QueueKind
from wfe.sqlite import SqliteQueueProvider

async def main(url, barrier):
    async with SqliteQueueProvider(url) as q:
        # Start together, so both processes compete for the items.
        (Path(barrier) / str(os.getpid())).touch()
        while len(list(Path(barrier).iterdir())) < 2:
            await trio.sleep(0.01)
        while True:
            item = await q.dequeue(QueueKind.WORKFLOW, 1.0)
            if item is None:
                return
            print(item.item_id, flush=True)
            await trio.sleep(0.002)  # some work
            await q.ack(item)

trio.run(main, sys.argv[1], sys.argv[2])
"""


async def _run_workers(tmp_path: Path, script: str, *args: str) -> list[str]:
    worker = tmp_path / "worker.py"
    worker.write_text(script)
    outputs: list[str] = []

    async def run_one() -> None:
        result = await trio.run_process(
            [sys.executable, str(worker), *args], capture_stdout=True, capture_stderr=True
        )
        outputs.append(result.stdout.decode())

    async with trio.open_nursery() as nursery:
        for _ in range(2):
            nursery.start_soon(run_one)
    return outputs


async def test_lock_admits_one_process_at_a_time(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    log = tmp_path / "critical.log"
    with trio.fail_after(60):
        await _run_workers(tmp_path, LOCK_WORKER, url, str(log), "25")
    lines = log.read_text().split()
    pairs = list(zip(lines[0::2], lines[1::2], strict=True))
    assert len(pairs) == 100
    tokens = []
    for i in range(0, 100, 2):
        # Every "enter" is followed by the "exit" of the same lease: no overlap.
        assert pairs[i] == ("enter", pairs[i + 1][1])
        assert pairs[i + 1][0] == "exit"
        tokens.append(int(pairs[i][1]))
    assert tokens == sorted(tokens)
    assert len(set(tokens)) == 50


async def test_queue_delivers_each_acked_item_once_across_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    ids = [f"wf-{i}" for i in range(200)]
    async with SqliteQueueProvider(url) as q:
        for item_id in ids:
            await q.enqueue(QueueKind.WORKFLOW, item_id)
    barrier = tmp_path / "ready"
    barrier.mkdir()
    with trio.fail_after(60):
        outputs = await _run_workers(tmp_path, QUEUE_WORKER, url, str(barrier))
    taken = [line for out in outputs for line in out.split()]
    assert sorted(taken) == sorted(ids)
    assert all(out.split() for out in outputs), "both processes took items"
