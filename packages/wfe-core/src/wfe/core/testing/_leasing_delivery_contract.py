"""The contract of the optional :class:`~wfe.core.protocols.LeasingDelivery`."""

from __future__ import annotations

from datetime import timedelta

import attrs

from .._errors import ConfigurationError, StaleLeaseError, WorkflowNotFoundError
from .._models import Event, EventSubscription, PointerStatus, WorkflowInstance, new_id
from ..memory import MemoryLockProvider
from ..protocols import (
    Checkpoint,
    DistributedLockProvider,
    EventDelivery,
    LeasingDelivery,
    PersistenceProvider,
)
from ._leasing_contract import leasing
from ._persistence_contract import PersistenceContract
from ._samples import T0, SampleData, expect_raises, unique_word

_TTL = timedelta(seconds=30)


def _delivery(instance: WorkflowInstance, sub: EventSubscription, event: Event) -> EventDelivery:
    # No token of its own: the lease the delivery takes gives it one.
    return EventDelivery(
        event_id=event.id,
        subscription_id=sub.id,
        workflow_id=instance.id,
        pointer_id=sub.pointer_id,
        time=T0 + timedelta(seconds=1),
    )


class LeasingDeliveryContract(PersistenceContract):
    """:class:`PersistenceContract` plus the
    :class:`~wfe.core.protocols.LeasingDelivery` capability, checked with the lock
    provider of the persistence provider's ``default_locks`` (same fixture)."""

    async def _waiting_for_delivery(
        self, persistence: PersistenceProvider
    ) -> tuple[WorkflowInstance, EventSubscription, Event]:
        """An instance waiting on a subscription and a stored event for it."""
        name = unique_word()
        instance, sub = await self._waiting(persistence, name)
        event = Event(name=name, key="k", data=SampleData(), time=T0)
        await persistence.create_event(event)
        return instance, sub, event

    async def test_deliver_event_leased_takes_the_lease_delivers_and_claims(
        self, persistence: PersistenceProvider
    ) -> None:
        async with leasing(persistence) as (store, locks):
            assert isinstance(store, LeasingDelivery), "not a LeasingDelivery"
            instance, sub, event = await self._waiting_for_delivery(persistence)
            resource = f"contract:{new_id()}"
            older = await locks.acquire(resource, _TTL)
            assert older is not None
            await locks.release(older)
            lease, claimed = await store.deliver_event_leased(
                _delivery(instance, sub, event), locks, resource, _TTL
            )
            assert lease is not None
            assert claimed is not None
            assert (lease.resource, lease.ttl) == (resource, _TTL)
            assert lease.fencing_token > older.fencing_token
            # What a claim for the lease's token would read: the delivery is in it.
            assert claimed == await persistence.get_workflow(instance.id)
            p = claimed.execution_pointers[-1]
            assert (p.status, p.active, p.event_published) == (PointerStatus.PENDING, True, True)
            assert p.event_data == SampleData()
            assert (await persistence.get_event(event.id)).processed
            # A lease like any other of ``locks``: held, renewed, released.
            assert await locks.acquire(resource, _TTL) is None
            assert await locks.renew(lease)
            # Claimed for the lease's token: an older holder is refused.
            with expect_raises(StaleLeaseError, "a checkpoint older than the leased delivery"):
                await persistence.persist_checkpoint(
                    Checkpoint(instance=claimed, fencing_token=older.fencing_token)
                )
            claimed.reference = "after the event"
            await persistence.persist_checkpoint(
                Checkpoint(instance=claimed, fencing_token=lease.fencing_token)
            )
            assert (await persistence.get_workflow(instance.id)).reference == "after the event"
            await locks.release(lease)

    async def test_deliver_event_leased_writes_nothing_while_the_lease_is_held(
        self, persistence: PersistenceProvider
    ) -> None:
        async with leasing(persistence) as (store, locks):
            assert isinstance(store, LeasingDelivery), "not a LeasingDelivery"
            instance, sub, event = await self._waiting_for_delivery(persistence)
            resource = f"contract:{new_id()}"
            held = await locks.acquire(resource, _TTL)
            assert held is not None
            before = await persistence.get_workflow(instance.id)
            got = await store.deliver_event_leased(
                _delivery(instance, sub, event), locks, resource, _TTL
            )
            assert got == (None, None)
            assert await persistence.get_workflow(instance.id) == before
            assert not (await persistence.get_event(event.id)).processed
            assert await locks.renew(held), "the live lease was taken over"
            # The holder's fence was not raised past it.
            await persistence.persist_checkpoint(
                Checkpoint(instance=before, fencing_token=held.fencing_token)
            )

    async def test_deliver_event_leased_that_delivers_nothing_keeps_lease_and_fence(
        self, persistence: PersistenceProvider
    ) -> None:
        async with leasing(persistence) as (store, locks):
            assert isinstance(store, LeasingDelivery), "not a LeasingDelivery"
            instance, sub, event = await self._waiting_for_delivery(persistence)
            resource = f"contract:{new_id()}"
            delivery = _delivery(instance, sub, event)
            first, claimed = await store.deliver_event_leased(delivery, locks, resource, _TTL)
            assert first is not None
            assert claimed is not None
            await locks.release(first)
            after = await persistence.get_workflow(instance.id)
            lease, again = await store.deliver_event_leased(delivery, locks, resource, _TTL)
            assert lease is not None
            assert again is None, "delivered twice"
            assert await persistence.get_workflow(instance.id) == after
            assert await locks.acquire(resource, _TTL) is None, "the lease was not kept"
            with expect_raises(StaleLeaseError, "a claim older than a leased delivery's lease"):
                await persistence.claim_workflow(instance.id, first.fencing_token)
            await locks.release(lease)

    async def test_deliver_event_leased_refused_takes_no_lease(
        self, persistence: PersistenceProvider
    ) -> None:
        async with leasing(persistence) as (store, locks):
            assert isinstance(store, LeasingDelivery), "not a LeasingDelivery"
            instance, sub, event = await self._waiting_for_delivery(persistence)
            resource = f"contract:{new_id()}"
            missing = attrs.evolve(_delivery(instance, sub, event), workflow_id=new_id())
            with expect_raises(WorkflowNotFoundError, "a leased delivery to no workflow"):
                await store.deliver_event_leased(missing, locks, resource, _TTL)
            assert await _free(locks, resource), "a refused delivery kept its lease"
            # A fence above the tokens the lease can give (another lock table, say).
            await persistence.claim_workflow(instance.id, 1_000_000)
            with expect_raises(StaleLeaseError, "a leased delivery under the fence"):
                await store.deliver_event_leased(
                    _delivery(instance, sub, event), locks, resource, _TTL
                )
            assert await _free(locks, resource), "a refused delivery kept its lease"
            assert not (await persistence.get_event(event.id)).processed

    async def test_deliver_event_leased_refuses_locks_kept_elsewhere(
        self, persistence: PersistenceProvider
    ) -> None:
        async with leasing(persistence) as (store, _locks), MemoryLockProvider() as elsewhere:
            assert isinstance(store, LeasingDelivery), "not a LeasingDelivery"
            instance, sub, event = await self._waiting_for_delivery(persistence)
            with expect_raises(ConfigurationError, "a leased delivery with a foreign lock"):
                await store.deliver_event_leased(
                    _delivery(instance, sub, event), elsewhere, "contract:x", _TTL
                )
            assert await elsewhere.acquire("contract:x", _TTL) is not None
            assert not (await persistence.get_event(event.id)).processed


async def _free(locks: DistributedLockProvider, resource: str) -> bool:
    """Whether ``resource`` can be leased now (the lease taken is given back)."""
    lease = await locks.acquire(resource, _TTL)
    if lease is None:
        return False
    await locks.release(lease)
    return True
