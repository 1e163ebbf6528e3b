"""Micro-benchmark of the wfe-sqlite store; prints ``metric value unit`` lines.

- ``persist_checkpoint`` checkpoints per second for one instance with one changed pointer,
  once with 10 stored pointers and once with 10,000 (the two should be about equal:
  a checkpoint writes only the changed pointer row);
- lock acquire + release cycles per second;
- queue enqueue + dequeue + ack round trips per second.

Runs on a file in a temporary directory (WAL, ``synchronous=NORMAL``), from one trio
task, so each figure includes the one worker-thread hop per call. Usage::

    python tools/bench/sqlite_store.py [--rounds N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import trio

from wfe.core import ExecutionPointer, PointerStatus, WorkflowInstance
from wfe.core.protocols import Checkpoint, QueueKind
from wfe.sqlite import SqlitePersistenceProvider


def _report(metric: str, value: float, unit: str) -> None:
    print(f"{metric} {value:.0f} {unit}", flush=True)


async def make_instance(store: SqlitePersistenceProvider, pointers: int) -> WorkflowInstance:
    inst = WorkflowInstance(
        definition_id="bench",
        version=1,
        data={"counter": 0, "note": "x" * 200},
        execution_pointers=[
            ExecutionPointer(step_id=i % 7, sequence=i, status=PointerStatus.COMPLETE)
            for i in range(pointers)
        ],
    )
    await store.create_workflow(inst)
    return inst


async def bench_checkpoints(
    store: SqlitePersistenceProvider, inst: WorkflowInstance, rounds: int, *, report: bool = True
) -> None:
    pointers = len(inst.execution_pointers)
    current = inst.execution_pointers[-1]
    start = time.perf_counter()
    for i in range(rounds):
        inst.data["counter"] = i
        current.retry_count = i
        current.status = PointerStatus.RUNNING if i % 2 else PointerStatus.PENDING
        await store.persist_checkpoint(
            Checkpoint(instance=inst, pointers=[current], fencing_token=1)
        )
    elapsed = time.perf_counter() - start
    if not report:
        return
    _report(
        f"sqlite.persist_checkpoint.after_{pointers}_pointers", rounds / elapsed, "checkpoints/s"
    )
    _report(
        f"sqlite.persist_checkpoint_latency.after_{pointers}_pointers",
        elapsed / rounds * 1e6,
        "us",
    )


async def bench_locks(store: SqlitePersistenceProvider, rounds: int) -> None:
    async with store.default_locks() as locks:
        start = time.perf_counter()
        for i in range(rounds):
            lease = await locks.acquire(f"wf-{i % 16}", timedelta(seconds=30))
            assert lease is not None
            await locks.release(lease)
        elapsed = time.perf_counter() - start
    _report("sqlite.lock_acquire_release", rounds / elapsed, "cycles/s")


async def bench_queue(store: SqlitePersistenceProvider, rounds: int) -> None:
    async with store.default_queues() as queues:
        start = time.perf_counter()
        for i in range(rounds):
            await queues.enqueue(QueueKind.WORKFLOW, f"wf-{i}")
            item = await queues.dequeue(QueueKind.WORKFLOW, 1.0)
            assert item is not None
            await queues.ack(item)
        elapsed = time.perf_counter() - start
    _report("sqlite.queue_enqueue_dequeue_ack", rounds / elapsed, "round-trips/s")


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        async with SqlitePersistenceProvider(url) as store:
            # Both instances exist before timing, so both runs see the same file size.
            small = await make_instance(store, 10)
            large = await make_instance(store, 10_000)
            await bench_checkpoints(store, small, rounds // 10, report=False)  # warm-up
            await bench_checkpoints(store, small, rounds)
            await bench_checkpoints(store, large, rounds)
            await bench_locks(store, rounds)
            await bench_queue(store, rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000, help="operations per metric")
    trio.run(main, parser.parse_args().rounds)
