"""The contract suites catch broken providers: each defect below fails its contract test."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import attrs
import pytest
import trio

from wfe.core import WorkflowInstance
from wfe.core.memory import (
    MemoryLockProvider,
    MemoryPersistenceProvider,
    MemoryQueueProvider,
    MemorySearchIndex,
)
from wfe.core.memory._locks import _Held
from wfe.core.protocols import (
    Checkpoint,
    EventDelivery,
    Lease,
    Page,
    QueueItem,
    QueueKind,
    SearchFilters,
)
from wfe.core.testing import (
    T0,
    LockContract,
    PersistenceContract,
    QueueContract,
    SearchContract,
)


class PointersReversed(MemoryPersistenceProvider):
    async def get_workflow(
        self, workflow_id: str, *, with_pointers: bool = True
    ) -> WorkflowInstance:
        instance = await super().get_workflow(workflow_id, with_pointers=with_pointers)
        instance.execution_pointers.reverse()
        return instance


class WritesEveryPointer(MemoryPersistenceProvider):
    async def persist_checkpoint(self, checkpoint: Checkpoint) -> None:
        everything = checkpoint.instance.execution_pointers
        await super().persist_checkpoint(attrs.evolve(checkpoint, pointers=everything))


class IgnoresFencing(MemoryPersistenceProvider):
    async def persist_checkpoint(self, checkpoint: Checkpoint) -> None:
        await super().persist_checkpoint(attrs.evolve(checkpoint, fencing_token=None))


class ClaimRecordsNoToken(MemoryPersistenceProvider):
    async def claim_workflow(self, workflow_id: str, fencing_token: int) -> WorkflowInstance:
        return await self.get_workflow(workflow_id)


class ReturnsLiveObjects(MemoryPersistenceProvider):
    def __init__(self) -> None:
        super().__init__()
        self.live: dict[str, WorkflowInstance] = {}

    async def get_workflow(
        self, workflow_id: str, *, with_pointers: bool = True
    ) -> WorkflowInstance:
        if workflow_id not in self.live:
            self.live[workflow_id] = await super().get_workflow(workflow_id)
        return self.live[workflow_id]


class EventsWithoutSubscribers(MemoryPersistenceProvider):
    async def get_runnable_events(self, as_of: datetime, limit: int = 1000) -> list[str]:
        await trio.lowlevel.checkpoint()
        return [i for i in self._unprocessed if self._events[i].event.time <= as_of]


class DeliversTwice(MemoryPersistenceProvider):
    async def deliver_event(self, delivery: EventDelivery) -> bool:
        delivered = await super().deliver_event(delivery)
        return delivered or delivery.subscription_id in self._subscriptions


class PartialCheckpoint(MemoryPersistenceProvider):
    """Stores the instance row, then fails on the rest: not one write."""

    async def persist_checkpoint(self, checkpoint: Checkpoint) -> None:
        await super().persist_checkpoint(
            Checkpoint(instance=checkpoint.instance, fencing_token=checkpoint.fencing_token)
        )
        await super().persist_checkpoint(checkpoint)


class TwoOwnersAtOnce(MemoryLockProvider):
    async def acquire(self, resource: str, ttl: timedelta) -> Lease | None:
        self._table.held.pop(resource, None)
        return await super().acquire(resource, ttl)


class RacyAcquire(MemoryLockProvider):
    """Checks, yields to other tasks, then takes the lock: the classic race."""

    async def acquire(self, resource: str, ttl: timedelta) -> Lease | None:
        if self._table.current(resource) is not None:
            return None
        await trio.lowlevel.checkpoint()
        token = self._table.tokens.get(resource, 0) + 1
        self._table.tokens[resource] = token
        self._table.held[resource] = _Held(self.owner, token, time.monotonic() + 30)
        return Lease(
            resource=resource, owner=self.owner, fencing_token=token, ttl=ttl, expires_at=T0
        )


class ReleasesAnyLease(MemoryLockProvider):
    async def release(self, lease: Lease) -> None:
        await trio.lowlevel.checkpoint()
        self._table.held.pop(lease.resource, None)


class RenewsExpiredLeases(MemoryLockProvider):
    async def renew(self, lease: Lease) -> bool:
        await trio.lowlevel.checkpoint()
        return True


class LosesUnackedItems(MemoryQueueProvider):
    async def dequeue(self, kind: QueueKind, timeout: float) -> QueueItem | None:
        item = await super().dequeue(kind, timeout)
        if item is not None:
            await self.ack(item)
        return item


class LastInFirstOut(MemoryQueueProvider):
    async def enqueue(self, kind: QueueKind, item_id: str) -> None:
        await super().enqueue(kind, item_id)
        self._state.waiting[kind].rotate(1)


class IgnoresTimeout(MemoryQueueProvider):
    async def dequeue(self, kind: QueueKind, timeout: float) -> QueueItem | None:
        return await super().dequeue(kind, 0)


class TotalIsPageSize(MemorySearchIndex):
    async def search(
        self, terms: str, filters: SearchFilters | None = None, skip: int = 0, take: int = 100
    ) -> Page:
        page = await super().search(terms, filters, skip, take)
        return attrs.evolve(page, total=len(page.items))


class OldestFirst(MemorySearchIndex):
    async def search(
        self, terms: str, filters: SearchFilters | None = None, skip: int = 0, take: int = 100
    ) -> Page:
        page = await super().search(terms, filters, 0, 1_000_000)
        items = list(reversed(page.items))[skip : skip + take]
        return attrs.evolve(page, items=items)


class SearchIgnoresData(MemorySearchIndex):
    async def index(self, instance: WorkflowInstance) -> None:
        await super().index(attrs.evolve(instance, data=None))


FIXTURES: dict[type, str] = {
    PersistenceContract: "persistence",
    LockContract: "locks",
    QueueContract: "queues",
    SearchContract: "search_index",
}

CASES: list[tuple[type, str, type]] = [
    (PersistenceContract, "test_pointers_come_back_in_sequence_order", PointersReversed),
    (PersistenceContract, "test_persist_writes_only_listed_pointers", WritesEveryPointer),
    (
        PersistenceContract,
        "test_claim_fences_out_the_previous_holder_before_it_writes",
        ClaimRecordsNoToken,
    ),
    (
        PersistenceContract,
        "test_deliver_event_is_one_write_that_wakes_the_pointer",
        DeliversTwice,
    ),
    (
        PersistenceContract,
        "test_unstorable_data_is_rejected_and_nothing_changes",
        PartialCheckpoint,
    ),
    (
        PersistenceContract,
        "test_stale_fencing_token_is_refused_and_changes_nothing",
        IgnoresFencing,
    ),
    (PersistenceContract, "test_returned_instances_are_copies", ReturnsLiveObjects),
    (
        PersistenceContract,
        "test_runnable_events_need_an_open_subscription",
        EventsWithoutSubscribers,
    ),
    (LockContract, "test_acquire_is_exclusive_per_resource", TwoOwnersAtOnce),
    (LockContract, "test_concurrent_acquirers_get_one_lease", RacyAcquire),
    (LockContract, "test_release_of_unknown_or_released_lease_is_harmless", ReleasesAnyLease),
    (LockContract, "test_stale_lease_cannot_renew", RenewsExpiredLeases),
    (QueueContract, "test_unacked_item_is_delivered_again", LosesUnackedItems),
    (QueueContract, "test_items_come_out_in_order", LastInFirstOut),
    (QueueContract, "test_empty_dequeue_waits_for_its_timeout", IgnoresTimeout),
    (
        SearchContract,
        "test_empty_terms_match_all_and_results_are_newest_first_and_paged",
        TotalIsPageSize,
    ),
    (
        SearchContract,
        "test_empty_terms_match_all_and_results_are_newest_first_and_paged",
        OldestFirst,
    ),
    (
        SearchContract,
        "test_terms_match_reference_description_definition_and_data",
        SearchIgnoresData,
    ),
]


def _make(factory: type, suite: type) -> Any:
    if suite is QueueContract:
        return factory(visibility_timeout=QueueContract.visibility_timeout)
    return factory()


async def _run(suite: type, test_name: str, provider: Any) -> None:
    await getattr(suite(), test_name)(**{FIXTURES[suite]: provider})


@pytest.mark.parametrize(
    ("suite", "test_name", "defective"), CASES, ids=[f"{c[2].__name__}-{c[1]}" for c in CASES]
)
async def test_contract_test_fails_for_defective_provider(
    suite: type, test_name: str, defective: type
) -> None:
    async with _make(defective, suite) as provider:
        with pytest.raises(AssertionError):
            await _run(suite, test_name, provider)


@pytest.mark.parametrize(
    ("suite", "test_name", "defective"), CASES, ids=[f"{c[2].__name__}-{c[1]}" for c in CASES]
)
async def test_same_contract_test_passes_for_the_sound_base_provider(
    suite: type, test_name: str, defective: type
) -> None:
    """The failures above come from the defects, not from the tests themselves."""
    sound = defective.__mro__[1]
    async with _make(sound, suite) as provider:
        await _run(suite, test_name, provider)
