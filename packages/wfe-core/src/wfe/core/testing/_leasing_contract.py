"""The contract of the optional :class:`~wfe.core.protocols.LeasingPersistence`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from .._errors import ConfigurationError, WfeError
from .._models import Event, new_id
from ..memory import MemoryLockProvider
from ..protocols import (
    DistributedLockProvider,
    LeasingPersistence,
    PersistenceProvider,
    ProvidesCompanions,
)
from ._persistence_contract import PersistenceContract
from ._samples import T0, expect_raises, make_instance, unique_word

_TTL = timedelta(seconds=30)


@asynccontextmanager
async def leasing(
    persistence: PersistenceProvider,
) -> AsyncIterator[tuple[LeasingPersistence, DistributedLockProvider]]:
    """The provider as a :class:`LeasingPersistence` and its companion lock provider
    (entered), whose leases it keeps."""
    assert isinstance(persistence, LeasingPersistence), (
        "no create_workflow_leased (not a LeasingPersistence)"
    )
    assert isinstance(persistence, ProvidesCompanions), "no default_locks to lease with"
    locks = persistence.default_locks()
    assert locks is not None, "default_locks gave no lock provider"
    async with locks:
        assert persistence.keeps_leases_of(locks), "its own default_locks are not kept"
        yield persistence, locks


class LeasingPersistenceContract(PersistenceContract):
    """:class:`PersistenceContract` plus the
    :class:`~wfe.core.protocols.LeasingPersistence` capability, checked with the lock
    provider of the persistence provider's ``default_locks`` (same fixture)."""

    async def test_create_workflow_leased_stores_the_instance_and_its_lease(
        self, persistence: PersistenceProvider
    ) -> None:
        async with leasing(persistence) as (store, locks):
            instance = make_instance(pointers=2, data={"n": 1})
            resource = f"contract:{new_id()}"
            lease = await store.create_workflow_leased(instance, locks, resource, _TTL)
            assert lease is not None
            assert lease.resource == resource
            assert lease.ttl == _TTL
            assert await store.get_workflow(instance.id) == instance
            # A lease like any other of ``locks``: held, renewed, released.
            assert await locks.acquire(resource, _TTL) is None
            assert await locks.renew(lease)
            await locks.release(lease)
            again = await locks.acquire(resource, _TTL)
            assert again is not None
            assert again.fencing_token > lease.fencing_token

    async def test_create_workflow_leased_stores_the_instance_when_the_lease_is_held(
        self, persistence: PersistenceProvider
    ) -> None:
        async with leasing(persistence) as (store, locks):
            resource = f"contract:{new_id()}"
            held = await locks.acquire(resource, _TTL)
            assert held is not None
            instance = make_instance()
            assert await store.create_workflow_leased(instance, locks, resource, _TTL) is None
            assert await store.get_workflow(instance.id) == instance
            assert await locks.renew(held), "the live lease was taken over"

    async def test_create_workflow_leased_takes_no_lease_when_the_instance_exists(
        self, persistence: PersistenceProvider
    ) -> None:
        async with leasing(persistence) as (store, locks):
            instance = make_instance(data={"n": 1})
            await store.create_workflow(instance)
            resource = f"contract:{new_id()}"
            twin = make_instance(data={"n": 2})
            twin.id = instance.id
            with expect_raises(WfeError, "creating an instance that exists"):
                await store.create_workflow_leased(twin, locks, resource, _TTL)
            assert await locks.acquire(resource, _TTL) is not None, "a lease was kept"
            assert (await store.get_workflow(instance.id)).data == {"n": 1}

    async def test_create_workflow_leased_refuses_locks_kept_elsewhere(
        self, persistence: PersistenceProvider
    ) -> None:
        async with leasing(persistence) as (store, _locks), MemoryLockProvider() as elsewhere:
            assert not store.keeps_leases_of(elsewhere)
            instance = make_instance()
            with expect_raises(ConfigurationError, "leasing with a foreign lock provider"):
                await store.create_workflow_leased(instance, elsewhere, "contract:x", _TTL)
            assert await elsewhere.acquire("contract:x", _TTL) is not None

    async def test_create_event_leased_stores_the_event_and_its_lease(
        self, persistence: PersistenceProvider
    ) -> None:
        async with leasing(persistence) as (store, locks):
            event = Event(name=unique_word(), key="k", data={"n": 1}, time=T0)
            resource = f"contract:{new_id()}"
            lease = await store.create_event_leased(event, locks, resource, _TTL)
            assert lease is not None
            assert lease.resource == resource
            assert await store.get_event(event.id) == event
            assert await locks.acquire(resource, _TTL) is None
            await locks.release(lease)
            # Held: the event is stored all the same, the live lease kept.
            held = await locks.acquire(resource, _TTL)
            assert held is not None
            other = Event(name=event.name, key="k", time=T0)
            assert await store.create_event_leased(other, locks, resource, _TTL) is None
            assert await store.get_event(other.id) == other
            assert await locks.renew(held), "the live lease was taken over"

    async def test_create_event_leased_takes_no_lease_when_the_event_exists(
        self, persistence: PersistenceProvider
    ) -> None:
        async with leasing(persistence) as (store, locks):
            event = Event(name=unique_word(), key="k", data={"n": 1}, time=T0)
            await store.create_event(event)
            resource = f"contract:{new_id()}"
            twin = Event(name=event.name, key="k", data={"n": 2}, time=T0)
            twin.id = event.id
            with expect_raises(WfeError, "creating an event that exists"):
                await store.create_event_leased(twin, locks, resource, _TTL)
            assert await locks.acquire(resource, _TTL) is not None, "a lease was kept"
            assert (await store.get_event(event.id)).data == {"n": 1}
