"""The host's index consumer: every change reaches the search index, and changes that
pile up while it is busy go together, in one batch (one dequeue, one read, one index
write and one ack, on queues and stores that take batches). A store that writes
documents with checkpoints needs no index work for a finished workflow, nor for one
whose pass ended (parked) with the checkpoint that gave its lease up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import pytest
import trio

from wfe.core import (
    PointerStatus,
    StepExecutionContext,
    WorkflowBuilder,
    WorkflowInstance,
    WorkflowStatus,
)
from wfe.core.memory import MemoryQueueProvider
from wfe.core.protocols import (
    BatchQueue,
    BulkSearchIndex,
    IndexingPersistence,
    QueueItem,
    QueueKind,
    ReleasingCheckpoint,
    SearchFilters,
)
from wfe.host import WorkflowHost, WorkflowHostBuilder

_COUNT = 30


def _noop(ctx: StepExecutionContext) -> None:
    return None


_DEFINITION = WorkflowBuilder(dict).start_with(_noop).then(_noop).build("indexed", 1)
# Parks in a wait: its runs end without ending it.
_PARKED = (
    WorkflowBuilder(dict)
    .start_with(_noop)
    .wait_for("go", lambda data, ctx: data["n"])
    .build("parked", 1)
)


async def _all_indexed(
    host: WorkflowHost, ids: list[str], definition_id: str, status: WorkflowStatus
) -> None:
    """Wait until the index shows every one of ``ids`` with ``status``."""
    wanted = SearchFilters(definition_id=definition_id, status=status)
    with trio.fail_after(30):
        while True:
            page = await host.search("", wanted, take=_COUNT * 2)
            if {r.id for r in page.items} >= set(ids):
                return
            await trio.sleep(0.01)  # the index is a separate view: look again


async def _all_indexed_complete(host: WorkflowHost, ids: list[str]) -> None:
    await _all_indexed(host, ids, "indexed", WorkflowStatus.COMPLETE)


async def _burst(host: WorkflowHost) -> list[str]:
    ids = [await host.start_workflow("indexed", 1, {"n": i}) for i in range(_COUNT)]
    for wid in ids:
        assert (await host.wait_for_workflow(wid, 30)).status is WorkflowStatus.COMPLETE
    return ids


async def _park(host: WorkflowHost) -> list[str]:
    ids = [await host.start_workflow("parked", 1, {"n": i}) for i in range(_COUNT)]
    with trio.fail_after(30):
        for wid in ids:
            while not any(  # the store is read: no event to wait on
                p.status is PointerStatus.WAITING_FOR_EVENT
                for p in (await host.get_workflow(wid)).execution_pointers
            ):
                await trio.sleep(0.005)
    return ids


async def test_changes_made_while_the_index_is_busy_go_in_one_batch(
    host_factory: Any, store_url: str
) -> None:
    # A search index of its own, not the store's companion: every store indexes the
    # parked workflows through the host's index queue.
    async with host_factory(_PARKED, configure=lambda b: b.search(store_url)) as host:
        index = host.search_index
        batches: list[int] = []
        go_on = trio.Event()
        if isinstance(index, BulkSearchIndex):
            original = index.index_many

            async def held_first(instances: Sequence[WorkflowInstance]) -> None:
                batches.append(len(instances))
                if len(batches) == 1:
                    await go_on.wait()  # busy with the first batch until the burst is over
                await original(instances)

            index.index_many = held_first  # type: ignore[method-assign]
        ids = await _park(host)
        go_on.set()
        await _all_indexed(host, ids, "parked", WorkflowStatus.RUNNABLE)  # parked
        if isinstance(index, BulkSearchIndex):
            # The first batch held back every other change: they came in few batches.
            assert sum(batches) >= _COUNT
            assert len(batches) <= 4, batches
            assert max(batches[1:]) >= _COUNT // 2, batches


async def test_a_parked_workflow_is_searchable_once_its_pass_ends(host_factory: Any) -> None:
    async with host_factory(_PARKED) as host:
        persistence, index = host.persistence, host.search_index
        both = isinstance(persistence, ReleasingCheckpoint) and isinstance(
            persistence, IndexingPersistence
        )
        if not both:
            pytest.skip("the store writes no documents with its checkpoints")
        assert isinstance(index, BulkSearchIndex)
        held = trio.Event()

        async def never(instances: Sequence[WorkflowInstance]) -> None:
            await held.wait()  # the index queue's consumer gets nowhere

        index.index_many = never  # type: ignore[method-assign]
        ids = await _park(host)
        # The wait and the document were stored by one write, ending the pass.
        wanted = SearchFilters(definition_id="parked", status=WorkflowStatus.RUNNABLE)
        found = await host.search("", wanted, take=_COUNT * 2)
        assert {r.id for r in found.items} >= set(ids)
        held.set()


async def test_a_finished_workflow_is_searchable_once_its_end_is_stored(
    host_factory: Any,
) -> None:
    async with host_factory(_DEFINITION) as host:
        persistence, index = host.persistence, host.search_index
        assert index is not None
        if not isinstance(persistence, IndexingPersistence):
            await _all_indexed_complete(host, await _burst(host))  # through the queue
            return
        assert persistence.index_ended_in_checkpoints(index), "its own index is the host's"
        done = SearchFilters(definition_id="indexed", status=WorkflowStatus.COMPLETE)
        for i in range(5):
            wid = await host.start_workflow("indexed", 1, {"n": i})
            assert (await host.wait_for_workflow(wid, 30)).status is WorkflowStatus.COMPLETE
            # No index work in between: the final checkpoint wrote the document.
            assert wid in {r.id for r in (await host.search("", done, take=100)).items}


class _OneByOne:
    """A queue provider without the BatchQueue capability (as a third party's may be)."""

    def __init__(self) -> None:
        self._inner = MemoryQueueProvider()

    async def __aenter__(self) -> Self:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._inner.__aexit__(*exc_info)

    async def enqueue(self, kind: QueueKind, item_id: str) -> None:
        await self._inner.enqueue(kind, item_id)

    async def enqueue_many(self, kind: QueueKind, item_ids: Sequence[str]) -> None:
        await self._inner.enqueue_many(kind, item_ids)

    async def dequeue(self, kind: QueueKind, timeout: float) -> QueueItem | None:
        return await self._inner.dequeue(kind, timeout)

    async def ack(self, item: QueueItem) -> None:
        await self._inner.ack(item)


async def test_a_queue_without_batches_still_indexes_every_change(store_url: str) -> None:
    queue = _OneByOne()
    assert not isinstance(queue, BatchQueue)
    builder = WorkflowHostBuilder().persistence(store_url).queues(queue).register(_DEFINITION)
    async with builder.build() as host:
        await _all_indexed_complete(host, await _burst(host))
