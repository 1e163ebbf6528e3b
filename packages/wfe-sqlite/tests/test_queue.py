"""SqliteQueueProvider: FIFO per kind, coalescing, visibility timeout, receipts, wake-ups."""

from __future__ import annotations

from pathlib import Path

import trio

from wfe.core.protocols import QueueItem, QueueKind, QueueProvider
from wfe.sqlite import SqlitePersistenceProvider, SqliteQueueProvider

W, E = QueueKind.WORKFLOW, QueueKind.EVENT


async def test_is_a_queue_provider(queues: SqliteQueueProvider) -> None:
    assert isinstance(queues, QueueProvider)


async def test_fifo_per_kind_and_kinds_are_isolated(queues: SqliteQueueProvider) -> None:
    for i in ("a", "b", "c"):
        await queues.enqueue(W, i)
    await queues.enqueue(E, "e")
    got = []
    for _ in range(3):
        item = await queues.dequeue(W, 0)
        assert item is not None
        got.append(item.item_id)
        await queues.ack(item)
    assert got == ["a", "b", "c"]
    assert await queues.dequeue(W, 0) is None
    item = await queues.dequeue(E, 0)
    assert item is not None
    assert item.kind is E
    assert item.item_id == "e"


async def test_enqueueing_a_waiting_id_is_coalesced(queues: SqliteQueueProvider) -> None:
    await queues.enqueue(W, "x")
    await queues.enqueue(W, "x")
    first = await queues.dequeue(W, 0)
    assert first is not None
    assert await queues.dequeue(W, 0) is None
    # Taken (not waiting) ids are enqueued afresh: the taker may have read old state.
    await queues.enqueue(W, "x")
    again = await queues.dequeue(W, 0)
    assert again is not None
    assert again.item_id == "x"


async def test_unacked_item_is_delivered_again_with_a_new_receipt(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    async with SqliteQueueProvider(url, visibility_timeout=0.2) as q:
        await q.enqueue(W, "x")
        first = await q.dequeue(W, 0)
        assert first is not None
        assert await q.dequeue(W, 0) is None
        with trio.fail_after(2):
            second = await q.dequeue(W, 1)
        assert second is not None
        assert second.item_id == "x"
        assert second.receipt != first.receipt
        await q.ack(first)  # the old receipt acks nothing
        with trio.fail_after(2):
            third = await q.dequeue(W, 1)  # visible again after the visibility timeout
        assert third is not None
        await q.ack(third)
        await q.ack(third)
        await q.ack(QueueItem(kind=W, item_id="x", receipt="garbage"))
        assert await q.dequeue(W, 0.3) is None


async def test_acked_item_is_not_delivered_again(queues: SqliteQueueProvider) -> None:
    await queues.enqueue(W, "x")
    item = await queues.dequeue(W, 0)
    assert item is not None
    await queues.ack(item)
    assert await queues.dequeue(W, queues.visibility_timeout + 0.2) is None


async def test_dequeue_wakes_at_once_on_enqueue_in_process(tmp_path: Path) -> None:
    """A companion's enqueue wakes a waiting dequeue long before the next poll."""
    store = SqlitePersistenceProvider(f"sqlite:///{tmp_path / 'q.db'}", poll_interval=5.0)
    got: list[QueueItem | None] = []
    arrived = trio.Event()
    async with store, store.default_queues() as consumer, store.default_queues() as producer:

        async def consume() -> None:
            got.append(await consumer.dequeue(W, 10))
            arrived.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            # Most likely the consumer waits by now (nothing observable says so); were it
            # late, its first look would find the item: the test passes either way.
            await trio.sleep(0.1)
            start = trio.current_time()
            await producer.enqueue(W, "now")
            with trio.fail_after(4):
                await arrived.wait()
            elapsed = trio.current_time() - start
    assert got[0] is not None
    assert got[0].item_id == "now"
    assert elapsed < 1.0


async def test_dequeue_returns_none_after_its_timeout(queues: SqliteQueueProvider) -> None:
    start = trio.current_time()
    assert await queues.dequeue(W, 0.1) is None
    assert 0.09 <= trio.current_time() - start < 1


async def test_cancelled_dequeue_loses_no_item(queues: SqliteQueueProvider) -> None:
    with trio.move_on_after(0.05):
        await queues.dequeue(W, 10)
    await queues.enqueue(W, "kept")
    item = await queues.dequeue(W, 0)
    assert item is not None
    assert item.item_id == "kept"


async def test_other_provider_on_the_file_is_seen_by_polling(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    async with (
        SqliteQueueProvider(url, poll_interval=0.02) as consumer,
        SqliteQueueProvider(url) as producer,
        trio.open_nursery() as nursery,
    ):
        got: list[QueueItem | None] = []
        arrived = trio.Event()

        async def take() -> None:
            got.append(await consumer.dequeue(W, 5))
            arrived.set()

        nursery.start_soon(take)
        await trio.sleep(0.05)
        await producer.enqueue(W, "remote")
        with trio.fail_after(1):
            await arrived.wait()
    assert got[0] is not None
    assert got[0].item_id == "remote"


async def test_a_delivery_put_back_is_visible_at_once(queues: SqliteQueueProvider) -> None:
    """What a dequeue cancelled mid-take does with the row it took."""
    await queues.enqueue(W, "x")
    taken = await queues.dequeue(W, 0)
    assert taken is not None
    await queues._put_back(taken)
    again = await queues.dequeue(W, 0)
    assert again is not None
    assert again.item_id == "x"
    # With a waiting copy enqueued meanwhile, the put-back delivery merges into it.
    await queues.enqueue(W, "x")
    await queues._put_back(again)
    last = await queues.dequeue(W, 0)
    assert last is not None
    await queues.ack(last)
    assert await queues.dequeue(W, 0) is None
