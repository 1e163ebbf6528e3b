"""A process storing, round after round, one checkpoint of each of twenty ended
workflows at once (so they commit in shared batches, each writing the workflow's
search document), plus one checkpoint refused by its fence (so every batch it joins is
rolled back to its savepoint and runs again write by write). It prints ``ack <id> <n>``
once the checkpoint with data ``{"n": n}`` of workflow ``<id>`` is stored, ``batch
<size>`` for each batch of several writes the writer runs, and, from round 5 on,
``in batch`` each time a search document is being written inside a batch, which then
lasts 0.2 s more, so the parent can kill the process there.
Run: ``batch_kill_worker.py DB``."""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

import trio

from wfe.core import StaleLeaseError, WorkflowInstance, WorkflowStatus
from wfe.core.protocols import Checkpoint
from wfe.sqlite import SqlitePersistenceProvider, _persistence, _writer

WORKFLOWS = 20
_out = threading.Lock()
_round = 0
_real_store = _persistence.store_document
_real_batch = _writer.Writer._run_batch


def _say(line: str) -> None:
    with _out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _slow_store(*args: Any) -> None:
    if _round >= 5:
        _say("in batch")
        time.sleep(0.2)
    _real_store(*args)


def _seen_batch(self: _writer.Writer, jobs: list[_writer.Job], *args: Any, **kw: Any) -> None:
    if len(jobs) > 1:
        _say(f"batch {len(jobs)}")
    _real_batch(self, jobs, *args, **kw)


def _ended(i: int) -> WorkflowInstance:
    return WorkflowInstance(
        id=f"wf-{i}",
        definition_id="d",
        version=1,
        data={"n": 0},
        reference=f"order{i}",
        status=WorkflowStatus.COMPLETE,
        create_time=datetime(2026, 12, 4, tzinfo=UTC),
        complete_time=datetime(2026, 12, 4, tzinfo=UTC),
    )


async def main(db: str) -> None:
    global _round
    _persistence.store_document = _slow_store  # type: ignore[assignment]
    _writer.Writer._run_batch = _seen_batch  # type: ignore[method-assign]
    async with (
        SqlitePersistenceProvider(f"sqlite:///{db}") as store,
        store.default_search() as search,
    ):
        assert store.index_ended_in_checkpoints(search)
        ended = [_ended(i) for i in range(WORKFLOWS)]
        stale = _ended(WORKFLOWS)
        for inst in (*ended, stale):
            await store.create_workflow(inst)
            await store.claim_workflow(inst.id, 1)
        await store.claim_workflow(stale.id, 2)  # passed to a new owner

        async def persist(inst: WorkflowInstance, n: int) -> None:
            inst.data = {"n": n}
            await store.persist_checkpoint(Checkpoint(instance=inst, fencing_token=1))
            _say(f"ack {inst.id} {n}")

        async def refused() -> None:
            try:
                await store.persist_checkpoint(Checkpoint(instance=stale, fencing_token=1))
            except StaleLeaseError:
                return
            raise AssertionError("a stale checkpoint was stored")

        while True:
            _round += 1
            async with trio.open_nursery() as nursery:
                for inst in ended[: WORKFLOWS // 2]:
                    nursery.start_soon(persist, inst, _round)
                nursery.start_soon(refused)
                for inst in ended[WORKFLOWS // 2 :]:
                    nursery.start_soon(persist, inst, _round)


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
