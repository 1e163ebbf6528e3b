"""The contract every :class:`~wfe.core.protocols.QueueProvider` must pass."""

from __future__ import annotations

import time

import trio

from .._errors import ConfigurationError
from ..protocols import BatchQueue, QueueItem, QueueKind, QueueProvider
from ._samples import expect_raises, unique_word


class QueueContract:
    """Contract tests for a queue provider.

    Subclass it as ``TestXxx`` and supply an async generator fixture ``queues``
    yielding an entered provider over empty queues whose visibility timeout is the
    class attribute ``visibility_timeout`` (seconds; short, so redelivery is tested
    with real waiting).
    """

    visibility_timeout = 0.5

    async def _take(self, queues: QueueProvider, kind: QueueKind, timeout: float = 2.0) -> str:
        item = await queues.dequeue(kind, timeout)
        assert item is not None, f"expected an item of kind {kind}, the queue was empty"
        assert item.kind == kind
        await queues.ack(item)
        return item.item_id

    async def test_items_come_out_in_order(self, queues: QueueProvider) -> None:
        ids = [unique_word() for _ in range(3)]
        for i in ids:
            await queues.enqueue(QueueKind.WORKFLOW, i)
        assert [await self._take(queues, QueueKind.WORKFLOW) for _ in ids] == ids

    async def test_many_items_in_order(self, queues: QueueProvider) -> None:
        ids = [unique_word() for _ in range(200)]
        for i in ids:
            await queues.enqueue(QueueKind.INDEX, i)
        assert [await self._take(queues, QueueKind.INDEX) for _ in ids] == ids

    async def test_kinds_are_isolated(self, queues: QueueProvider) -> None:
        wf, ev = unique_word(), unique_word()
        await queues.enqueue(QueueKind.WORKFLOW, wf)
        assert await queues.dequeue(QueueKind.EVENT, 0.05) is None
        await queues.enqueue(QueueKind.EVENT, ev)
        assert await self._take(queues, QueueKind.EVENT) == ev
        assert await self._take(queues, QueueKind.WORKFLOW) == wf
        assert await queues.dequeue(QueueKind.INDEX, 0.05) is None

    async def test_empty_dequeue_waits_for_its_timeout(self, queues: QueueProvider) -> None:
        start = time.monotonic()
        assert await queues.dequeue(QueueKind.WORKFLOW, 0.3) is None
        elapsed = time.monotonic() - start
        assert elapsed >= 0.25, f"returned after {elapsed:.3f}s, before its 0.3s timeout"
        assert elapsed < 1.5, f"returned after {elapsed:.3f}s, long after its 0.3s timeout"

    async def test_dequeue_wakes_when_another_task_enqueues(self, queues: QueueProvider) -> None:
        item_id = unique_word()
        got: list[QueueItem | None] = []
        woke_after: list[float] = []

        async def consumer(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            got.append(await queues.dequeue(QueueKind.EVENT, 10.0))
            woke_after.append(time.monotonic())

        async with trio.open_nursery() as nursery:
            await nursery.start(consumer)
            await trio.sleep(0.1)
            enqueued_at = time.monotonic()
            await queues.enqueue(QueueKind.EVENT, item_id)
        assert got[0] is not None
        assert got[0].item_id == item_id
        delay = woke_after[0] - enqueued_at
        assert delay < 1.5, f"dequeue woke {delay:.3f}s after the enqueue"
        await queues.ack(got[0])

    async def test_cancelled_dequeue_loses_no_item(self, queues: QueueProvider) -> None:
        with trio.move_on_after(0.05):
            await queues.dequeue(QueueKind.WORKFLOW, 5.0)
        item_id = unique_word()
        await queues.enqueue(QueueKind.WORKFLOW, item_id)
        assert await self._take(queues, QueueKind.WORKFLOW) == item_id

    async def test_unacked_item_is_delivered_again(self, queues: QueueProvider) -> None:
        item_id = unique_word()
        await queues.enqueue(QueueKind.WORKFLOW, item_id)
        first = await queues.dequeue(QueueKind.WORKFLOW, 2.0)
        assert first is not None
        assert first.item_id == item_id
        assert await queues.dequeue(QueueKind.WORKFLOW, 0.05) is None, "delivered twice at once"
        again = await queues.dequeue(QueueKind.WORKFLOW, self.visibility_timeout * 6 + 2)
        assert again is not None, "an un-acked item was lost"
        assert again.item_id == item_id
        await queues.ack(first)  # the old receipt: harmless
        await queues.ack(again)
        await queues.ack(again)  # twice: harmless
        wait = self.visibility_timeout * 1.5
        assert await queues.dequeue(QueueKind.WORKFLOW, wait) is None, "acked item came back"

    async def test_acked_item_is_not_delivered_again(self, queues: QueueProvider) -> None:
        await queues.enqueue(QueueKind.EVENT, unique_word())
        await self._take(queues, QueueKind.EVENT)
        wait = self.visibility_timeout * 1.5
        assert await queues.dequeue(QueueKind.EVENT, wait) is None

    async def test_enqueue_of_waiting_id_is_delivered_at_most_twice(
        self, queues: QueueProvider
    ) -> None:
        item_id = unique_word()
        await queues.enqueue(QueueKind.WORKFLOW, item_id)
        await queues.enqueue(QueueKind.WORKFLOW, item_id)
        assert await self._take(queues, QueueKind.WORKFLOW) == item_id
        extra = await queues.dequeue(QueueKind.WORKFLOW, 0.1)
        if extra is not None:
            assert extra.item_id == item_id
            await queues.ack(extra)
        assert await queues.dequeue(QueueKind.WORKFLOW, 0.05) is None


class BatchQueueContract(QueueContract):
    """:class:`QueueContract` plus the :class:`~wfe.core.protocols.BatchQueue`
    capability, for a queue provider that has it (same fixture)."""

    def _batched(self, queues: QueueProvider) -> BatchQueue:
        assert isinstance(queues, BatchQueue), "the queue takes no batches (not a BatchQueue)"
        return queues

    async def test_batches_come_out_in_order_and_only_once(self, queues: QueueProvider) -> None:
        batched = self._batched(queues)
        ids = [unique_word() for _ in range(7)]
        await queues.enqueue_many(QueueKind.INDEX, ids)
        first = await batched.dequeue_many(QueueKind.INDEX, 3, 2.0)
        rest = await batched.dequeue_many(QueueKind.INDEX, 100, 2.0)
        assert [i.item_id for i in first] == ids[:3]
        assert [i.item_id for i in rest] == ids[3:]
        assert all(i.kind is QueueKind.INDEX for i in first + rest)
        assert await batched.dequeue_many(QueueKind.INDEX, 100, 0.05) == []
        await batched.ack_many(first + rest)
        await batched.ack_many(first)  # twice: harmless
        await batched.ack_many([])
        wait = self.visibility_timeout * 1.5
        assert await batched.dequeue_many(QueueKind.INDEX, 100, wait) == [], "acked came back"

    async def test_a_batch_not_acked_is_delivered_again(self, queues: QueueProvider) -> None:
        batched = self._batched(queues)
        ids = [unique_word() for _ in range(3)]
        await queues.enqueue_many(QueueKind.WORKFLOW, ids)
        taken = await batched.dequeue_many(QueueKind.WORKFLOW, 10, 2.0)
        assert [i.item_id for i in taken] == ids
        await batched.ack_many(taken[:1])
        again = await batched.dequeue_many(QueueKind.WORKFLOW, 10, self.visibility_timeout * 6 + 2)
        assert sorted(i.item_id for i in again) == sorted(ids[1:]), "un-acked items were lost"
        await batched.ack_many(again)

    async def test_batch_dequeue_waits_and_wakes(self, queues: QueueProvider) -> None:
        batched = self._batched(queues)
        start = time.monotonic()
        assert await batched.dequeue_many(QueueKind.EVENT, 5, 0.3) == []
        assert time.monotonic() - start >= 0.25, "returned before its timeout"
        item_id = unique_word()
        got: list[QueueItem] = []

        async def consumer(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            got.extend(await batched.dequeue_many(QueueKind.EVENT, 5, 10.0))

        async with trio.open_nursery() as nursery:
            await nursery.start(consumer)
            await queues.enqueue(QueueKind.EVENT, item_id)
        assert [i.item_id for i in got] == [item_id]
        await batched.ack_many(got)
        with trio.move_on_after(0.05):
            await batched.dequeue_many(QueueKind.EVENT, 5, 5.0)  # cancelled: loses nothing
        await queues.enqueue(QueueKind.EVENT, item_id)
        assert await self._take(queues, QueueKind.EVENT) == item_id

    async def test_batch_limit_must_be_positive(self, queues: QueueProvider) -> None:
        batched = self._batched(queues)
        for limit in (0, -1):
            with expect_raises(ConfigurationError, "limit"):
                await batched.dequeue_many(QueueKind.INDEX, limit, 0)
