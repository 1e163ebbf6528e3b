"""LISTEN/NOTIFY across processes: each provider below has its own pool and its own LISTEN
connection, as two hosts would. Polling is set far beyond the waits, so only a
notification can explain a wake-up."""

from __future__ import annotations

import pytest
import trio

from wfe.core import StaleLeaseError, WorkflowStatus
from wfe.core.protocols import Checkpoint, QueueKind
from wfe.core.testing import make_instance, unique_word
from wfe.postgres import PostgresPersistenceProvider, PostgresQueueProvider

SLOW_POLL = 60.0


async def test_an_enqueue_elsewhere_wakes_a_waiting_dequeue(store_url: str) -> None:
    async with (
        PostgresQueueProvider(store_url, poll_interval=SLOW_POLL) as consumer,
        PostgresQueueProvider(store_url) as producer,
    ):
        await consumer._db.listener.wait_connected()
        item_id = unique_word()
        got = []

        async def consume() -> None:
            got.append(await consumer.dequeue(QueueKind.WORKFLOW, 30.0))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await trio.sleep(0.05)  # let it look at the empty table and wait
            await producer.enqueue(QueueKind.WORKFLOW, item_id)
        assert got[0] is not None
        assert got[0].item_id == item_id
        await consumer.ack(got[0])


async def test_status_changes_are_announced_on_commit_and_only_they(store_url: str) -> None:
    seen: list[str] = []
    async with (
        PostgresPersistenceProvider(store_url, poll_interval=SLOW_POLL) as watcher,
        PostgresPersistenceProvider(store_url) as writer,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(watcher.watch_workflows, seen.append)
        await watcher._db.listener.wait_connected()
        quiet, loud = make_instance(pointers=1), make_instance(pointers=1)
        await writer.create_workflow(quiet)
        await writer.create_workflow(loud)
        quiet.data = {"step": 1}  # stays RUNNABLE: no announcement
        await writer.persist_checkpoint(Checkpoint(instance=quiet, fencing_token=1))
        loud.status = WorkflowStatus.SUSPENDED
        await writer.persist_checkpoint(Checkpoint(instance=loud, fencing_token=1))
        with trio.fail_after(10):
            while loud.id not in seen:
                await trio.sleep(0.005)
        # Notifications arrive in commit order: the quiet one would have come first.
        assert quiet.id not in seen
        # A refused (stale) checkpoint announces nothing either.
        quiet.status = WorkflowStatus.COMPLETE
        await writer.claim_workflow(quiet.id, 5)
        with pytest.raises(StaleLeaseError):
            await writer.persist_checkpoint(Checkpoint(instance=quiet, fencing_token=2))
        loud.status = WorkflowStatus.RUNNABLE
        await writer.persist_checkpoint(Checkpoint(instance=loud, fencing_token=1))
        with trio.fail_after(10):
            while seen.count(loud.id) < 2:
                await trio.sleep(0.005)
        assert quiet.id not in seen
        nursery.cancel_scope.cancel()
