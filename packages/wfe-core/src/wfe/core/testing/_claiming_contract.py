"""The contract of the optional :class:`~wfe.core.protocols.ClaimingDelivery`."""

from __future__ import annotations

from datetime import timedelta

import attrs

from .._errors import ConfigurationError, StaleLeaseError, WorkflowNotFoundError
from .._models import Event, EventSubscription, PointerStatus, WorkflowInstance, new_id
from ..protocols import (
    Checkpoint,
    ClaimingDelivery,
    EventDelivery,
    PersistenceProvider,
)
from ._persistence_contract import PersistenceContract
from ._samples import T0, SampleData, expect_raises, unique_word


def _claiming(persistence: PersistenceProvider) -> ClaimingDelivery:
    assert isinstance(persistence, ClaimingDelivery), (
        "no deliver_event_claiming (not a ClaimingDelivery)"
    )
    return persistence


def sample_delivery(
    instance: WorkflowInstance, sub: EventSubscription, event: Event, token: int | None
) -> EventDelivery:
    return EventDelivery(
        event_id=event.id,
        subscription_id=sub.id,
        workflow_id=instance.id,
        pointer_id=sub.pointer_id,
        time=T0 + timedelta(seconds=1),
        fencing_token=token,
    )


class ClaimingDeliveryContract(PersistenceContract):
    """:class:`PersistenceContract` plus the
    :class:`~wfe.core.protocols.ClaimingDelivery` capability (same fixture)."""

    async def _waiting_with_event(
        self, persistence: PersistenceProvider
    ) -> tuple[ClaimingDelivery, WorkflowInstance, EventSubscription, Event]:
        """The store, an instance waiting on a subscription and a stored event for it."""
        store = _claiming(persistence)
        name = unique_word()
        instance, sub = await self._waiting(persistence, name)
        event = Event(name=name, key="k", data=SampleData(), time=T0)
        await persistence.create_event(event)
        return store, instance, sub, event

    async def test_deliver_event_claiming_delivers_and_returns_the_claimed_instance(
        self, persistence: PersistenceProvider
    ) -> None:
        store, instance, sub, event = await self._waiting_with_event(persistence)
        claimed = await store.deliver_event_claiming(sample_delivery(instance, sub, event, 7))
        assert claimed is not None
        # What a claim for that token would read: the delivery is in it.
        assert claimed == await persistence.get_workflow(instance.id)
        p = claimed.execution_pointers[-1]
        assert (p.status, p.active, p.event_published) == (PointerStatus.PENDING, True, True)
        assert p.event_data == SampleData()
        assert claimed.next_execution == T0 + timedelta(seconds=1)
        assert (await persistence.get_event(event.id)).processed
        # Claimed for 7: an older holder is refused, the holder's checkpoint stored.
        with expect_raises(StaleLeaseError, "a checkpoint older than the claiming delivery"):
            await persistence.persist_checkpoint(Checkpoint(instance=claimed, fencing_token=6))
        claimed.reference = "after the event"
        await persistence.persist_checkpoint(Checkpoint(instance=claimed, fencing_token=7))
        assert (await persistence.get_workflow(instance.id)).reference == "after the event"

    async def test_deliver_event_claiming_that_delivers_nothing_returns_none(
        self, persistence: PersistenceProvider
    ) -> None:
        store, instance, sub, event = await self._waiting_with_event(persistence)
        delivery = sample_delivery(instance, sub, event, 3)
        assert await store.deliver_event_claiming(delivery) is not None
        before = await persistence.get_workflow(instance.id)
        assert await store.deliver_event_claiming(attrs.evolve(delivery, fencing_token=5)) is None
        assert await persistence.get_workflow(instance.id) == before
        # The fence is raised all the same.
        with expect_raises(StaleLeaseError, "a claim older than a claiming delivery's token"):
            await persistence.claim_workflow(instance.id, 4)
        with expect_raises(StaleLeaseError, "a claiming delivery under an older token"):
            await store.deliver_event_claiming(attrs.evolve(delivery, fencing_token=2))

    async def test_deliver_event_claiming_refuses_what_a_claim_refuses(
        self, persistence: PersistenceProvider
    ) -> None:
        store, instance, sub, event = await self._waiting_with_event(persistence)
        missing = attrs.evolve(sample_delivery(instance, sub, event, 1), workflow_id=new_id())
        with expect_raises(WorkflowNotFoundError, "a claiming delivery to no workflow"):
            await store.deliver_event_claiming(missing)
        with expect_raises(ConfigurationError, "a claiming delivery without a token"):
            await store.deliver_event_claiming(sample_delivery(instance, sub, event, None))
        assert not (await persistence.get_event(event.id)).processed
