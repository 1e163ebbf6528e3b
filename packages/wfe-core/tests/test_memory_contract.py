"""The in-memory providers pass every contract suite (which also exercises the suites)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import trio
import trio.testing

from wfe.core import ConfigurationError, WorkflowStarted
from wfe.core.memory import (
    MemoryLifecycleEventPublisher,
    MemoryLockProvider,
    MemoryPersistenceProvider,
    MemoryQueueProvider,
    MemorySearchIndex,
)
from wfe.core.protocols import (
    Checkpoint,
    DistributedLockProvider,
    LifecycleEventPublisher,
    PersistenceProvider,
    ProvidesCompanions,
    QueueKind,
    QueueProvider,
    SearchIndex,
)
from wfe.core.testing import (
    BatchPersistenceContract,
    BatchQueueContract,
    LockContract,
    QueueContract,
    SearchContract,
    StepLogContract,
    make_instance,
)


class TestMemoryPersistence(BatchPersistenceContract):
    @pytest.fixture
    async def persistence(self) -> AsyncIterator[MemoryPersistenceProvider]:
        async with MemoryPersistenceProvider() as provider:
            yield provider


class TestMemoryStepLogs(StepLogContract):
    @pytest.fixture
    async def step_logs(self) -> AsyncIterator[MemoryPersistenceProvider]:
        async with MemoryPersistenceProvider() as provider:
            yield provider


class TestMemoryLocks(LockContract):
    @pytest.fixture
    async def locks(self) -> AsyncIterator[MemoryLockProvider]:
        async with MemoryLockProvider() as provider:
            yield provider


class TestMemoryQueues(BatchQueueContract):
    @pytest.fixture
    async def queues(self) -> AsyncIterator[MemoryQueueProvider]:
        async with MemoryQueueProvider(visibility_timeout=self.visibility_timeout) as provider:
            yield provider


class TestMemorySearch(SearchContract):
    @pytest.fixture
    async def search_index(self) -> AsyncIterator[MemorySearchIndex]:
        async with MemorySearchIndex() as index:
            yield index


class TestCompanionsPassTheContracts(LockContract, QueueContract, SearchContract):
    """The providers a MemoryPersistenceProvider hands out meet the same contracts."""

    @pytest.fixture
    async def store(self) -> AsyncIterator[MemoryPersistenceProvider]:
        async with MemoryPersistenceProvider(
            visibility_timeout=self.visibility_timeout
        ) as provider:
            yield provider

    @pytest.fixture
    async def locks(self, store: MemoryPersistenceProvider) -> AsyncIterator[MemoryLockProvider]:
        async with store.default_locks() as provider:
            yield provider

    @pytest.fixture
    async def queues(self, store: MemoryPersistenceProvider) -> AsyncIterator[MemoryQueueProvider]:
        async with store.default_queues() as provider:
            yield provider

    @pytest.fixture
    async def search_index(
        self, store: MemoryPersistenceProvider
    ) -> AsyncIterator[MemorySearchIndex]:
        async with store.default_search() as index:
            yield index


def test_memory_providers_satisfy_their_protocols() -> None:
    store = MemoryPersistenceProvider()
    assert isinstance(store, PersistenceProvider)
    assert isinstance(store, ProvidesCompanions)
    assert isinstance(MemoryLockProvider(), DistributedLockProvider)
    assert isinstance(MemoryQueueProvider(), QueueProvider)
    assert isinstance(MemorySearchIndex(), SearchIndex)
    assert isinstance(MemoryLifecycleEventPublisher(), LifecycleEventPublisher)


async def test_companions_share_the_store_state_but_not_the_owner() -> None:
    """Two hosts given one store object coordinate through it, as with a database."""
    store = MemoryPersistenceProvider()
    a, b = store.default_locks(), store.default_locks()
    lease = await a.acquire("wf-1", timedelta(seconds=30))
    assert lease is not None
    assert await b.acquire("wf-1", lease.ttl) is None
    assert a.owner != b.owner
    await store.default_queues().enqueue(QueueKind.WORKFLOW, "x")
    item = await store.default_queues().dequeue(QueueKind.WORKFLOW, 0)
    assert item is not None
    assert item.item_id == "x"
    await store.default_search().index(make_instance(reference="shared"))
    assert (await store.default_search().search("shared")).total == 1


async def test_separate_providers_do_not_share_state() -> None:
    a, b = MemoryQueueProvider(), MemoryQueueProvider()
    await a.enqueue(QueueKind.WORKFLOW, "x")
    assert await b.dequeue(QueueKind.WORKFLOW, 0) is None


def test_queue_rejects_a_non_positive_visibility_timeout() -> None:
    with pytest.raises(ConfigurationError, match="visibility_timeout"):
        MemoryQueueProvider(visibility_timeout=0)


async def test_persist_cost_does_not_grow_with_history() -> None:
    """Persisting one changed pointer copies that pointer, not the whole history."""
    store = MemoryPersistenceProvider()
    instance = make_instance(pointers=20_000)
    await store.create_workflow(instance)
    last = instance.execution_pointers[-1]
    start = trio.current_time()
    for _ in range(200):
        last.retry_count += 1
        await store.persist_checkpoint(Checkpoint(instance=instance, pointers=[last]))
    per_persist = (trio.current_time() - start) / 200
    # Copying 20,000 pointers takes tens of milliseconds; one pointer, microseconds.
    assert per_persist < 0.005, f"{per_persist * 1000:.2f} ms per persist"
    assert (await store.get_workflow(instance.id)).execution_pointers[-1].retry_count == 200


async def test_lifecycle_publisher_keeps_events_and_feeds_subscribers() -> None:
    events = [
        WorkflowStarted(workflow_instance_id=str(i), definition_id="d", version=1) for i in range(3)
    ]
    received: list[str] = []
    async with MemoryLifecycleEventPublisher() as publisher:
        await publisher.publish(events[0])
        live = publisher.subscribe(replay=False)

        async def read_all() -> None:
            async for event in publisher.subscribe():
                received.append(event.workflow_instance_id)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_all)
            # No threads here: "every task blocked" means read_all has subscribed, and
            # later that it has taken everything published so far.
            await trio.testing.wait_all_tasks_blocked()
            await publisher.publish(events[1])
            publisher.publish_nowait(events[2])
            await trio.testing.wait_all_tasks_blocked()
            publisher.close()
    assert received == ["0", "1", "2"]
    assert publisher.events == events
    assert [e.workflow_instance_id async for e in live] == ["1", "2"]
