"""The contract of the optional :class:`~wfe.core.protocols.LeasingDelivery`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import attrs

from .._errors import ConfigurationError, StaleLeaseError, WorkflowNotFoundError
from .._models import Event, EventSubscription, PointerStatus, WorkflowInstance, new_id
from ..memory import MemoryLockProvider
from ..protocols import (
    Checkpoint,
    DistributedLockProvider,
    EventDelivery,
    Lease,
    LeasingDelivery,
    PersistenceProvider,
)
from ._claiming_contract import ClaimingDeliveryContract, sample_delivery
from ._leasing_contract import leasing
from ._samples import SampleData, expect_raises

_TTL = timedelta(seconds=30)


@attrs.frozen
class _Setup:
    """The store, its lock provider, a waiting instance, its subscription, an event
    for it and a fresh lock resource."""

    store: LeasingDelivery
    locks: DistributedLockProvider
    instance: WorkflowInstance
    sub: EventSubscription
    event: Event
    resource: str

    def delivery(self) -> EventDelivery:
        # No token of its own: the lease the delivery takes gives it one.
        return sample_delivery(self.instance, self.sub, self.event, None)

    async def deliver(self) -> tuple[Lease | None, WorkflowInstance | None]:
        return await self.store.deliver_event_leased(
            self.delivery(), self.locks, self.resource, _TTL
        )


class LeasingDeliveryContract(ClaimingDeliveryContract):
    """:class:`ClaimingDeliveryContract` plus the
    :class:`~wfe.core.protocols.LeasingDelivery` capability, checked with the lock
    provider of the persistence provider's ``default_locks`` (same fixture)."""

    @asynccontextmanager
    async def _delivering(self, persistence: PersistenceProvider) -> AsyncIterator[_Setup]:
        async with leasing(persistence) as (store, locks):
            assert isinstance(store, LeasingDelivery), "not a LeasingDelivery"
            _, instance, sub, event = await self._waiting_with_event(persistence)
            yield _Setup(store, locks, instance, sub, event, f"contract:{new_id()}")

    async def test_deliver_event_leased_takes_the_lease_delivers_and_claims(
        self, persistence: PersistenceProvider
    ) -> None:
        async with self._delivering(persistence) as d:
            older = await d.locks.acquire(d.resource, _TTL)
            assert older is not None
            await d.locks.release(older)
            lease, claimed = await d.deliver()
            assert lease is not None
            assert claimed is not None
            assert (lease.resource, lease.ttl) == (d.resource, _TTL)
            assert lease.fencing_token > older.fencing_token
            # What a claim for the lease's token would read: the delivery is in it.
            assert claimed == await persistence.get_workflow(d.instance.id)
            p = claimed.execution_pointers[-1]
            assert (p.status, p.active, p.event_published) == (PointerStatus.PENDING, True, True)
            assert p.event_data == SampleData()
            assert (await persistence.get_event(d.event.id)).processed
            # A lease like any other of ``locks``: held, renewed, released.
            assert await d.locks.acquire(d.resource, _TTL) is None
            assert await d.locks.renew(lease)
            # Claimed for the lease's token: an older holder is refused.
            with expect_raises(StaleLeaseError, "a checkpoint older than the leased delivery"):
                await persistence.persist_checkpoint(
                    Checkpoint(instance=claimed, fencing_token=older.fencing_token)
                )
            claimed.reference = "after the event"
            await persistence.persist_checkpoint(
                Checkpoint(instance=claimed, fencing_token=lease.fencing_token)
            )
            stored = await persistence.get_workflow(d.instance.id)
            assert stored.reference == "after the event"
            await d.locks.release(lease)

    async def test_deliver_event_leased_writes_nothing_while_the_lease_is_held(
        self, persistence: PersistenceProvider
    ) -> None:
        async with self._delivering(persistence) as d:
            held = await d.locks.acquire(d.resource, _TTL)
            assert held is not None
            before = await persistence.get_workflow(d.instance.id)
            assert await d.deliver() == (None, None)
            assert await persistence.get_workflow(d.instance.id) == before
            assert not (await persistence.get_event(d.event.id)).processed
            assert await d.locks.renew(held), "the live lease was taken over"
            # The holder's fence was not raised past it.
            await persistence.persist_checkpoint(
                Checkpoint(instance=before, fencing_token=held.fencing_token)
            )

    async def test_deliver_event_leased_that_delivers_nothing_keeps_lease_and_fence(
        self, persistence: PersistenceProvider
    ) -> None:
        async with self._delivering(persistence) as d:
            first, claimed = await d.deliver()
            assert first is not None
            assert claimed is not None
            await d.locks.release(first)
            after = await persistence.get_workflow(d.instance.id)
            lease, again = await d.deliver()
            assert lease is not None
            assert again is None, "delivered twice"
            assert await persistence.get_workflow(d.instance.id) == after
            assert await d.locks.acquire(d.resource, _TTL) is None, "the lease was not kept"
            with expect_raises(StaleLeaseError, "a claim older than a leased delivery's lease"):
                await persistence.claim_workflow(d.instance.id, first.fencing_token)
            await d.locks.release(lease)

    async def test_deliver_event_leased_gives_up_the_lease_it_is_handed_when_it_delivers(
        self, persistence: PersistenceProvider
    ) -> None:
        async with self._delivering(persistence) as d:
            other = f"contract:{new_id()}"
            # Held elsewhere: nothing written, the handed lease kept.
            held = await d.locks.acquire(d.resource, _TTL)
            assert held is not None
            event_lease = await d.locks.acquire(other, _TTL)
            assert event_lease is not None
            got = await d.store.deliver_event_leased(
                d.delivery(), d.locks, d.resource, _TTL, release=event_lease
            )
            assert got == (None, None)
            assert await d.locks.renew(event_lease), "given up without a delivery"
            await d.locks.release(held)
            # Delivered: given up in the same write.
            lease, claimed = await d.store.deliver_event_leased(
                d.delivery(), d.locks, d.resource, _TTL, release=event_lease
            )
            assert lease is not None
            assert claimed is not None
            assert not await d.locks.renew(event_lease), "the handed lease is still held"
            again = await d.locks.acquire(other, _TTL)
            assert again is not None
            assert again.fencing_token > event_lease.fencing_token
            await d.locks.release(lease)
            # Nothing left to deliver: kept.
            lease, claimed = await d.store.deliver_event_leased(
                d.delivery(), d.locks, d.resource, _TTL, release=again
            )
            assert lease is not None
            assert claimed is None
            assert await d.locks.renew(again), "given up without a delivery"
            await d.locks.release(lease)
            await d.locks.release(again)

    async def test_deliver_event_leased_refused_takes_no_lease(
        self, persistence: PersistenceProvider
    ) -> None:
        async with self._delivering(persistence) as d:
            missing = attrs.evolve(d.delivery(), workflow_id=new_id())
            with expect_raises(WorkflowNotFoundError, "a leased delivery to no workflow"):
                await d.store.deliver_event_leased(missing, d.locks, d.resource, _TTL)
            assert await _free(d.locks, d.resource), "a refused delivery kept its lease"
            # A fence above the tokens the lease can give (another lock table, say).
            await persistence.claim_workflow(d.instance.id, 1_000_000)
            with expect_raises(StaleLeaseError, "a leased delivery under the fence"):
                await d.deliver()
            assert await _free(d.locks, d.resource), "a refused delivery kept its lease"
            assert not (await persistence.get_event(d.event.id)).processed

    async def test_deliver_event_leased_refuses_locks_kept_elsewhere(
        self, persistence: PersistenceProvider
    ) -> None:
        async with self._delivering(persistence) as d, MemoryLockProvider() as elsewhere:
            with expect_raises(ConfigurationError, "a leased delivery with a foreign lock"):
                await d.store.deliver_event_leased(d.delivery(), elsewhere, "contract:x", _TTL)
            assert await elsewhere.acquire("contract:x", _TTL) is not None
            assert not (await persistence.get_event(d.event.id)).processed


async def _free(locks: DistributedLockProvider, resource: str) -> bool:
    """Whether ``resource`` can be leased now (the lease taken is given back)."""
    lease = await locks.acquire(resource, _TTL)
    if lease is None:
        return False
    await locks.release(lease)
    return True
