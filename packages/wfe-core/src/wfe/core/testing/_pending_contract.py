"""The contracts of the optional :class:`~wfe.core.protocols.PendingSubscriptions` and
:class:`~wfe.core.protocols.PendingInCheckpoints`."""

from __future__ import annotations

from datetime import datetime, timedelta

from .._models import Event, EventSubscription
from ..protocols import (
    Checkpoint,
    PendingInCheckpoints,
    PendingSubscriptions,
    PersistenceProvider,
)
from ._persistence_contract import PersistenceContract, _subscription
from ._samples import T0, make_instance, unique_word


def _pending(persistence: PersistenceProvider) -> PendingSubscriptions:
    assert isinstance(persistence, PendingSubscriptions), (
        "no get_subscriptions_with_pending (not a PendingSubscriptions)"
    )
    return persistence


async def _composed(
    persistence: PersistenceProvider, name: str, key: str, as_of: datetime
) -> list[tuple[EventSubscription, str | None]]:
    """What the capability must equal: the reads it stands for, one after another."""
    found: list[tuple[EventSubscription, str | None]] = []
    for sub in await persistence.get_subscriptions(name, key, as_of):
        first = await persistence.get_pending_events(name, key, sub.as_of, 1)
        found.append((sub, first[0].id if first else None))
    return found


def _events(name: str) -> list[Event]:
    """Events of ``name`` at T0 + 5, 15, 15 (stored after the other: taken after it) and
    20 s (processed) with key ``k``, and one of another key at T0 + 31 s."""
    s = timedelta(seconds=1)
    return [
        Event(name=name, key="k", time=T0 + 5 * s),
        Event(name=name, key="k", time=T0 + 15 * s),
        Event(name=name, key="k", time=T0 + 15 * s),
        Event(name=name, key="k", time=T0 + 20 * s, processed=True),
        Event(name=name, key="other key", time=T0 + 31 * s),
    ]


class PendingSubscriptionsContract(PersistenceContract):
    """:class:`PersistenceContract` plus the
    :class:`~wfe.core.protocols.PendingSubscriptions` capability (same fixture)."""

    async def _subscribe(
        self, persistence: PersistenceProvider, name: str, key: str, as_of: datetime
    ) -> EventSubscription:
        return (await self._waiting(persistence, name, key, as_of))[1]

    async def test_subscriptions_with_pending_match_the_reads_they_stand_for(
        self, persistence: PersistenceProvider
    ) -> None:
        store = _pending(persistence)
        name, s = unique_word(), timedelta(seconds=1)
        early = await self._subscribe(persistence, name, "k", T0)
        late = await self._subscribe(persistence, name, "k", T0 + 10 * s)
        bare = await self._subscribe(persistence, name, "k", T0 + 30 * s)
        await self._subscribe(persistence, name, "other key", T0)
        await self._subscribe(persistence, unique_word(), "k", T0)
        events = _events(name)
        for event in events:
            await persistence.create_event(event)
        for as_of in (T0 - s, T0, T0 + 12 * s, T0 + 40 * s):
            got = await store.get_subscriptions_with_pending(name, "k", as_of)
            assert got == await _composed(persistence, name, "k", as_of), as_of
        got = await store.get_subscriptions_with_pending(name, "k", T0 + 40 * s)
        assert got == [(early, events[0].id), (late, events[1].id), (bare, None)]
        assert await store.get_subscriptions_with_pending(unique_word(), "k", T0) == []

    async def test_subscriptions_with_pending_leave_out_closed_subscriptions(
        self, persistence: PersistenceProvider
    ) -> None:
        store = _pending(persistence)
        name = unique_word()
        open_sub = await self._subscribe(persistence, name, "k", T0)
        closed = await self._subscribe(persistence, name, "k", T0)
        instance = await persistence.get_workflow(closed.workflow_id)
        await persistence.persist_checkpoint(
            Checkpoint(instance=instance, closed_subscriptions=[closed.id])
        )
        event = Event(name=name, key="k", time=T0)
        await persistence.create_event(event)
        got = await store.get_subscriptions_with_pending(name, "k", T0)
        assert got == [(open_sub, event.id)]


def _finding(persistence: PersistenceProvider) -> PendingInCheckpoints:
    assert isinstance(persistence, PendingInCheckpoints), (
        "no finds_pending_in_checkpoints (not a PendingInCheckpoints)"
    )
    assert persistence.finds_pending_in_checkpoints(), "it does not find them"
    return persistence


class PendingInCheckpointsContract(PersistenceContract):
    """:class:`PersistenceContract` plus the
    :class:`~wfe.core.protocols.PendingInCheckpoints` capability (same fixture)."""

    async def test_a_checkpoint_finds_the_events_pending_for_the_waits_it_opens(
        self, persistence: PersistenceProvider
    ) -> None:
        _finding(persistence)
        name, s = unique_word(), timedelta(seconds=1)
        events = _events(name)
        for event in events:
            await persistence.create_event(event)
        instance = make_instance(pointers=2)
        await persistence.create_workflow(instance)
        waits = [
            _subscription(instance, name, "k", T0),
            _subscription(instance, name, "k", T0 + 10 * s),
            _subscription(instance, name, "k", T0 + 30 * s),
            _subscription(instance, name, "other key", T0 + 40 * s),
            _subscription(instance, unique_word(), "k", T0),
        ]
        found: dict[str, str] = {}
        await persistence.persist_checkpoint(
            Checkpoint(instance=instance, opened_subscriptions=waits, found_pending=found)
        )
        assert found == {waits[0].id: events[0].id, waits[1].id: events[1].id}
        for wait in waits:
            # What a read after the checkpoint returns.
            first = await persistence.get_pending_events(
                wait.event_name, wait.event_key, wait.as_of, 1
            )
            assert found.get(wait.id) == (first[0].id if first else None), wait

    async def test_events_the_checkpoint_creates_or_processes_are_seen_as_stored(
        self, persistence: PersistenceProvider
    ) -> None:
        _finding(persistence)
        name, s = unique_word(), timedelta(seconds=1)
        taken = Event(name=name, key="k", time=T0 + s)
        later = Event(name=name, key="k", time=T0 + 9 * s)
        for event in (taken, later):
            await persistence.create_event(event)
        instance = make_instance(pointers=2)
        await persistence.create_workflow(instance)
        made = Event(name=name, key="k", time=T0 + 5 * s)
        wait = _subscription(instance, name, "k", T0)
        found: dict[str, str] = {}
        await persistence.persist_checkpoint(
            Checkpoint(
                instance=instance,
                opened_subscriptions=[wait],
                processed_events=[taken.id],
                events=[made],
                found_pending=found,
            )
        )
        assert found == {wait.id: made.id}

    async def test_a_checkpoint_asking_nothing_is_stored_as_before(
        self, persistence: PersistenceProvider
    ) -> None:
        _finding(persistence)
        name = unique_word()
        event = Event(name=name, key="k", time=T0)
        await persistence.create_event(event)
        instance = make_instance(pointers=2)
        await persistence.create_workflow(instance)
        wait = _subscription(instance, name, "k", T0)
        checkpoint = Checkpoint(instance=instance, opened_subscriptions=[wait])
        await persistence.persist_checkpoint(checkpoint)
        assert checkpoint.found_pending is None
        assert await persistence.get_subscriptions(name, "k", T0) == [wait]
