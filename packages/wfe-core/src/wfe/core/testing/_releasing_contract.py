"""The contract of the optional :class:`~wfe.core.protocols.ReleasingCheckpoint`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import attrs

from .._errors import ConfigurationError, StaleLeaseError, WorkflowNotFoundError
from .._models import Event, WorkflowInstance, WorkflowStatus, new_id
from ..memory import MemoryLockProvider
from ..protocols import (
    Checkpoint,
    DistributedLockProvider,
    IndexingPersistence,
    Lease,
    PersistenceProvider,
    ReleasingCheckpoint,
    SearchFilters,
)
from ._indexing_contract import _indexing
from ._leasing_contract import LeasingPersistenceContract, leasing
from ._samples import T0, expect_raises, make_instance, unique_word

_TTL = timedelta(seconds=30)


@attrs.frozen
class _Held:
    """The store, its lock provider, an instance claimed under a lease on a fresh
    resource, and that lease."""

    store: ReleasingCheckpoint
    locks: DistributedLockProvider
    instance: WorkflowInstance
    lease: Lease

    def checkpoint(self, token: int | None = None, **changes: object) -> Checkpoint:
        return Checkpoint(
            instance=self.instance,
            fencing_token=self.lease.fencing_token if token is None else token,
            **changes,  # type: ignore[arg-type]
        )


class ReleasingCheckpointContract(LeasingPersistenceContract):
    """:class:`LeasingPersistenceContract` plus the
    :class:`~wfe.core.protocols.ReleasingCheckpoint` capability, checked with the lock
    provider of the persistence provider's ``default_locks`` (same fixture)."""

    @asynccontextmanager
    async def _holding(self, persistence: PersistenceProvider) -> AsyncIterator[_Held]:
        async with leasing(persistence) as (store, locks):
            assert isinstance(store, ReleasingCheckpoint), "not a ReleasingCheckpoint"
            instance = make_instance(pointers=2, data={"n": 1})
            lease = await store.create_workflow_leased(
                instance, locks, f"contract:{new_id()}", _TTL
            )
            assert lease is not None
            claimed = await store.claim_workflow(instance.id, lease.fencing_token)
            yield _Held(store, locks, claimed, lease)

    async def test_persist_checkpoint_releasing_stores_it_and_gives_the_lease_up(
        self, persistence: PersistenceProvider
    ) -> None:
        async with self._holding(persistence) as h:
            h.instance.reference = "parked"
            h.instance.execution_pointers[0].active = False
            notice = Event(name=unique_word(), key="k", data={"n": 2}, time=T0)
            await h.store.persist_checkpoint_releasing(
                h.checkpoint(pointers=[h.instance.execution_pointers[0]], events=[notice]),
                h.locks,
                h.lease,
            )
            assert await persistence.get_workflow(h.instance.id) == h.instance
            assert (await persistence.get_event(notice.id)).data == {"n": 2}
            # Given up: free for the next holder at once, no longer renewable.
            assert not await h.locks.renew(h.lease)
            again = await h.locks.acquire(h.lease.resource, _TTL)
            assert again is not None
            assert again.fencing_token > h.lease.fencing_token

    async def test_persist_checkpoint_releasing_that_ends_the_workflow(
        self, persistence: PersistenceProvider
    ) -> None:
        async with self._holding(persistence) as h:
            h.instance.status = WorkflowStatus.COMPLETE
            h.instance.complete_time = T0
            h.instance.next_execution = None
            await h.store.persist_checkpoint_releasing(h.checkpoint(), h.locks, h.lease)
            stored = await persistence.get_workflow(h.instance.id)
            assert stored.status is WorkflowStatus.COMPLETE
            assert await h.locks.acquire(h.lease.resource, _TTL) is not None

    async def test_a_refused_persist_checkpoint_releasing_keeps_the_lease(
        self, persistence: PersistenceProvider
    ) -> None:
        async with self._holding(persistence) as h:
            before = await persistence.get_workflow(h.instance.id)
            # A newer holder raised the fence: this checkpoint is stale.
            await persistence.claim_workflow(h.instance.id, h.lease.fencing_token + 1)
            h.instance.reference = "stale"
            with expect_raises(StaleLeaseError, "a stale checkpoint giving its lease up"):
                await h.store.persist_checkpoint_releasing(h.checkpoint(), h.locks, h.lease)
            assert (await persistence.get_workflow(h.instance.id)).reference == before.reference
            assert await h.locks.renew(h.lease), "the lease was given up by a refused write"
            assert await h.locks.acquire(h.lease.resource, _TTL) is None
            await h.locks.release(h.lease)

    async def test_persist_checkpoint_releasing_of_an_unknown_workflow_keeps_the_lease(
        self, persistence: PersistenceProvider
    ) -> None:
        async with self._holding(persistence) as h:
            ghost = make_instance()
            with expect_raises(WorkflowNotFoundError, "a checkpoint of no stored workflow"):
                await h.store.persist_checkpoint_releasing(
                    Checkpoint(instance=ghost, fencing_token=h.lease.fencing_token),
                    h.locks,
                    h.lease,
                )
            assert await h.locks.renew(h.lease), "the lease was given up by a failed write"
            await h.locks.release(h.lease)

    async def test_persist_checkpoint_releasing_leaves_a_newer_holders_lease(
        self, persistence: PersistenceProvider
    ) -> None:
        async with self._holding(persistence) as h:
            # The lease was released (or ran out) and taken by another holder, which has
            # not claimed the instance yet: the checkpoint is stored, and only a lease
            # of the same owner and token is given up.
            await h.locks.release(h.lease)
            newer = await h.locks.acquire(h.lease.resource, _TTL)
            assert newer is not None
            h.instance.reference = "late"
            await h.store.persist_checkpoint_releasing(h.checkpoint(), h.locks, h.lease)
            assert (await persistence.get_workflow(h.instance.id)).reference == "late"
            assert await h.locks.renew(newer), "another holder's lease was given up"
            await h.locks.release(newer)

    async def test_persist_checkpoint_releasing_refuses_locks_kept_elsewhere(
        self, persistence: PersistenceProvider
    ) -> None:
        async with self._holding(persistence) as h, MemoryLockProvider() as elsewhere:
            foreign = await elsewhere.acquire("contract:x", _TTL)
            assert foreign is not None
            with expect_raises(ConfigurationError, "releasing with a foreign lock provider"):
                await h.store.persist_checkpoint_releasing(h.checkpoint(), elsewhere, foreign)
            assert await elsewhere.renew(foreign)
            await h.locks.release(h.lease)

    async def test_with_documents_in_checkpoints_a_releasing_one_writes_its_document(
        self, persistence: PersistenceProvider
    ) -> None:
        if not isinstance(persistence, IndexingPersistence):
            return  # no documents in checkpoints: nothing more to check
        async with _indexing(persistence) as (_, search), self._holding(persistence) as h:
            parked = unique_word("parked")
            h.instance.reference = parked
            await h.store.persist_checkpoint_releasing(h.checkpoint(), h.locks, h.lease)
            # Running, and indexed all the same: the pass that holds it ended.
            page = await search.search("", SearchFilters(reference=parked))
            assert [(r.id, r.status) for r in page.items] == [
                (h.instance.id, WorkflowStatus.RUNNABLE)
            ]
            # A refused one writes no document.
            newer = await h.locks.acquire(h.lease.resource, _TTL)
            assert newer is not None
            await persistence.claim_workflow(h.instance.id, newer.fencing_token)
            stale = unique_word("stale")
            h.instance.reference = stale
            with expect_raises(StaleLeaseError, "a stale releasing checkpoint"):
                await h.store.persist_checkpoint_releasing(h.checkpoint(), h.locks, h.lease)
            assert (await search.search("", SearchFilters(reference=stale))).total == 0
            await h.locks.release(newer)
