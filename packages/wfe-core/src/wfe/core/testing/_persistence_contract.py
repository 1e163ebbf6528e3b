"""The contract every :class:`~wfe.core.protocols.PersistenceProvider` must pass."""

from __future__ import annotations

import copy
import itertools
import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

import attrs
import trio

from .._errors import (
    ConfigurationError,
    DataSerializationError,
    StaleLeaseError,
    WfeError,
    WorkflowNotFoundError,
)
from .._models import (
    Event,
    EventSubscription,
    ExecutionError,
    PointerStatus,
    WorkflowInstance,
    WorkflowStatus,
    new_id,
)
from ..primitives import CHILD_FINISHED_EVENT
from ..protocols import BatchPersistence, Checkpoint, EventDelivery, PersistenceProvider
from ._samples import T0, SampleData, expect_raises, make_instance, make_pointer, unique_word


def _subscription(
    instance: WorkflowInstance, name: str, key: str, as_of: Any = T0
) -> EventSubscription:
    pointer = instance.execution_pointers[-1]
    return EventSubscription(
        workflow_id=instance.id,
        step_id=pointer.step_id,
        pointer_id=pointer.id,
        event_name=name,
        event_key=key,
        as_of=as_of,
    )


def _ids(items: list[Any]) -> list[str]:
    return [item.id for item in items]


_FAR = T0 + timedelta(days=3650)


async def _save(
    persistence: PersistenceProvider,
    instance: WorkflowInstance,
    pointers: Any = (),
    **changes: Any,
) -> None:
    """One checkpoint of ``instance`` with ``pointers`` and the other ``changes``."""
    await persistence.persist_checkpoint(
        Checkpoint(instance=instance, pointers=list(pointers), **changes)
    )


async def _is_open(persistence: PersistenceProvider, sub: EventSubscription) -> bool:
    found = await persistence.get_subscriptions(sub.event_name, sub.event_key, _FAR)
    return sub.id in _ids(found)


class PersistenceContract:
    """Contract tests for a persistence provider.

    Subclass it as ``TestXxx`` and supply an async generator fixture ``persistence``
    yielding an entered provider. The tests tolerate data left by other tests in the
    same store: each uses fresh ids, names and definition ids.
    """

    # -- workflows -------------------------------------------------------------------

    async def test_ensure_store_exists_is_idempotent(
        self, persistence: PersistenceProvider
    ) -> None:
        await persistence.ensure_store_exists()
        await persistence.ensure_store_exists()
        instance = make_instance()
        await persistence.create_workflow(instance)
        await persistence.ensure_store_exists()
        assert await persistence.get_workflow(instance.id) == instance

    async def test_created_workflow_comes_back_equal(
        self, persistence: PersistenceProvider
    ) -> None:
        instance = make_instance(
            pointers=3,
            data={"a": 1},
            reference="ref",
            description="desc",
            next_execution=T0,
        )
        instance.fingerprint = "fp-1"
        assert await persistence.create_workflow(instance) == instance.id
        got = await persistence.get_workflow(instance.id)
        assert got == instance, f"stored {instance!r}\nread back {got!r}"

    async def test_get_workflow_of_unknown_id_raises_not_found(
        self, persistence: PersistenceProvider
    ) -> None:
        with expect_raises(WorkflowNotFoundError, "get_workflow of an unknown id"):
            await persistence.get_workflow(new_id())

    async def test_get_workflow_without_pointers_reads_the_row_only(
        self, persistence: PersistenceProvider
    ) -> None:
        instance = make_instance(pointers=5, data={"a": 1}, next_execution=T0)
        await persistence.create_workflow(instance)
        row = await persistence.get_workflow(instance.id, with_pointers=False)
        assert row.execution_pointers == []
        assert attrs.evolve(row, execution_pointers=instance.execution_pointers) == instance
        with expect_raises(WorkflowNotFoundError, "get_workflow(with_pointers=False) unknown"):
            await persistence.get_workflow(new_id(), with_pointers=False)

    async def test_returned_instances_are_copies(self, persistence: PersistenceProvider) -> None:
        instance = make_instance(pointers=2, data={"items": [1, 2]})
        await persistence.create_workflow(instance)
        instance.data["items"].append(3)
        instance.execution_pointers[0].scope.append("mutated")
        got = await persistence.get_workflow(instance.id)
        assert got.data == {"items": [1, 2]}
        assert "mutated" not in got.execution_pointers[0].scope
        got.data["items"].append(4)
        got.execution_pointers[1].status = PointerStatus.FAILED
        again = await persistence.get_workflow(instance.id)
        assert again.data == {"items": [1, 2]}
        assert again.execution_pointers[1].status is PointerStatus.PENDING

    async def test_pointers_come_back_in_sequence_order(
        self, persistence: PersistenceProvider
    ) -> None:
        instance = make_instance(pointers=12)
        expected = [p.id for p in instance.execution_pointers]
        random.Random(7).shuffle(instance.execution_pointers)
        await persistence.create_workflow(instance)
        got = await persistence.get_workflow(instance.id)
        assert [p.id for p in got.execution_pointers] == expected, "pointers out of order"
        assert [p.sequence for p in got.execution_pointers] == list(range(12))
        for earlier, later in itertools.pairwise(got.execution_pointers):
            assert later.scope == [earlier.id], "scope lost or reordered"

    async def test_persist_writes_only_listed_pointers(
        self, persistence: PersistenceProvider
    ) -> None:
        instance = make_instance(pointers=3)
        await persistence.create_workflow(instance)
        stored_first = attrs.evolve(instance.execution_pointers[0])
        p0, p1, p2 = instance.execution_pointers
        p0.status = PointerStatus.FAILED  # changed locally but not listed: must not be written
        p2.status = PointerStatus.COMPLETE
        p2.active = False
        p2.outcome = "done"
        p2.end_sequence = 3
        p3 = make_pointer(3, scope=[p2.id, p1.id], predecessor_id=p2.id)
        instance.execution_pointers.append(p3)
        instance.status = WorkflowStatus.SUSPENDED
        await _save(persistence, instance, [p2, p3])
        got = await persistence.get_workflow(instance.id)
        assert got.status is WorkflowStatus.SUSPENDED
        assert [p.id for p in got.execution_pointers] == [p0.id, p1.id, p2.id, p3.id]
        assert got.execution_pointers[0] == stored_first, "an unlisted pointer was written"
        assert got.execution_pointers[1] == p1
        assert got.execution_pointers[2] == p2
        assert got.execution_pointers[3] == p3
        assert got.execution_pointers[3].scope == [p2.id, p1.id]

    async def test_checkpoint_with_every_pointer_writes_them_all(
        self, persistence: PersistenceProvider
    ) -> None:
        instance = make_instance(pointers=2)
        await persistence.create_workflow(instance)
        for p in instance.execution_pointers:
            p.retry_count = 5
        instance.execution_pointers.append(make_pointer(2))
        await _save(persistence, instance, instance.execution_pointers)
        assert await persistence.get_workflow(instance.id) == instance

    async def test_checkpoint_stores_every_part_in_one_write(
        self, persistence: PersistenceProvider
    ) -> None:
        instance = make_instance(pointers=1, data={"v": 0})
        await persistence.create_workflow(instance)
        name = unique_word()
        old_sub = _subscription(instance, name, "old")
        await _save(persistence, instance, opened_subscriptions=[old_sub])
        event = Event(name=name, key="seen", time=T0)
        await persistence.create_event(event)
        new_sub = _subscription(instance, name, "new")
        notice = Event(name=unique_word(), key=instance.id, data={"done": True}, time=T0)
        error = ExecutionError(workflow_id=instance.id, pointer_id=None, time=T0, message="x")
        instance.data = {"v": 1}
        instance.status = WorkflowStatus.COMPLETE
        instance.complete_time = T0
        instance.execution_pointers[0].status = PointerStatus.COMPLETE
        await _save(
            persistence,
            instance,
            instance.execution_pointers,
            opened_subscriptions=[new_sub],
            closed_subscriptions=[old_sub.id],
            processed_events=[event.id],
            errors=[error],
            events=[notice],
        )
        assert await persistence.get_workflow(instance.id) == instance
        assert not await _is_open(persistence, old_sub)
        assert await _is_open(persistence, new_sub)
        assert (await persistence.get_event(event.id)).processed
        assert await persistence.get_event(notice.id) == notice
        assert await persistence.get_errors(instance.id) == [error]

    async def test_checkpoint_stores_what_it_held_when_called(
        self, persistence: PersistenceProvider
    ) -> None:
        """Found by the property tests: the memory store read the checkpoint's instance
        after its first await, so a status the engine set meanwhile was stored with the
        older pointers. The engine goes on changing the objects it passed."""
        instance = make_instance(pointers=2, data={"v": 0})
        await persistence.create_workflow(instance)
        expected = copy.deepcopy(instance)
        expected.execution_pointers[-1].status = PointerStatus.RUNNING
        expected.data = {"v": 1}
        live = copy.deepcopy(expected)
        checkpoint = Checkpoint(instance=live, pointers=[live.execution_pointers[-1]])

        async def persist(task_status: trio.TaskStatus[None]) -> None:
            task_status.started()
            # Runs on until the store's first await; the test then changes the objects.
            await persistence.persist_checkpoint(checkpoint)

        async with trio.open_nursery() as nursery:
            await nursery.start(persist)
            live.status = WorkflowStatus.COMPLETE
            live.data["v"] = 2
            live.execution_pointers[-1].status = PointerStatus.COMPLETE
            live.execution_pointers[-1].scope.append("changed")
        assert await persistence.get_workflow(instance.id) == expected

    async def test_checkpoint_of_an_unknown_instance_is_refused(
        self, persistence: PersistenceProvider
    ) -> None:
        with expect_raises(WorkflowNotFoundError, "persist_checkpoint of an unknown instance"):
            await _save(persistence, make_instance())

    async def test_many_persists_keep_every_pointer_correct(
        self, persistence: PersistenceProvider
    ) -> None:
        instance = make_instance(pointers=1)
        await persistence.create_workflow(instance)
        for step in range(1, 40):
            last = instance.execution_pointers[-1]
            last.status = PointerStatus.COMPLETE
            last.active = False
            last.end_sequence = step
            last.persistence_data = {"step": step}
            new = make_pointer(step, predecessor_id=last.id)
            instance.execution_pointers.append(new)
            await _save(persistence, instance, [last, new])
        assert await persistence.get_workflow(instance.id) == instance

    async def test_workflow_data_round_trips_exactly(
        self, persistence: PersistenceProvider
    ) -> None:
        data = SampleData()
        instance = make_instance(data=data)
        await persistence.create_workflow(instance)
        got = await persistence.get_workflow(instance.id)
        assert got.data == data
        assert isinstance(got.data, SampleData)
        assert isinstance(got.data.total, Decimal)
        assert got.data is not data
        instance.data = {"plain": [1, 2.5, "x", None, True], "nested": {"k": Decimal("1.000")}}
        await _save(persistence, instance)
        got = await persistence.get_workflow(instance.id)
        assert got.data == instance.data
        assert str(got.data["nested"]["k"]) == "1.000"

    async def test_pointer_values_round_trip_exactly(
        self, persistence: PersistenceProvider
    ) -> None:
        instance = make_instance(pointers=1)
        p = instance.execution_pointers[0]
        p.persistence_data = {"cursor": Decimal("10.5"), "seen": {"a", "b"}}
        p.event_data = SampleData()
        p.context_item = ("item", 3)
        p.outcome = T0
        p.event_name, p.event_key, p.event_published = "evt", "key", True
        p.sleep_until = T0 + timedelta(minutes=5)
        p.children = ["c1", "c2"]
        p.extension = {"parallel_limit": 4, "child": {"id": "x"}}
        await persistence.create_workflow(instance)
        got = await persistence.get_workflow(instance.id)
        assert got.execution_pointers[0] == p

    async def test_unstorable_data_is_rejected_and_nothing_changes(
        self, persistence: PersistenceProvider
    ) -> None:
        bad = make_instance(data={"fn": lambda: None})
        with expect_raises(DataSerializationError, "create_workflow with a lambda in data"):
            await persistence.create_workflow(bad)
        with expect_raises(WorkflowNotFoundError, "get_workflow after a refused create"):
            await persistence.get_workflow(bad.id)
        instance = make_instance(pointers=1, data={"ok": 1})
        await persistence.create_workflow(instance)
        stored = await persistence.get_workflow(instance.id)
        instance.status = WorkflowStatus.COMPLETE
        instance.data = {"items": [1, 2, {"fn": print}]}
        sub = _subscription(instance, unique_word(), "k")
        error = ExecutionError(workflow_id=instance.id, pointer_id=None, time=T0, message="e")
        with expect_raises(DataSerializationError, "a checkpoint with unstorable data") as e:
            await _save(persistence, instance, opened_subscriptions=[sub], errors=[error])
        assert getattr(e[0], "path", None) == "data.items[2].fn"
        assert await persistence.get_workflow(instance.id) == stored
        assert not await _is_open(persistence, sub)
        assert await persistence.get_errors(instance.id) == []
        instance.data = {"ok": 2}
        instance.execution_pointers[0].persistence_data = object()
        with expect_raises(DataSerializationError, "a checkpoint with an unstorable pointer"):
            await _save(persistence, instance, instance.execution_pointers)
        assert await persistence.get_workflow(instance.id) == stored

    async def test_runnable_instances_by_time_and_status(
        self, persistence: PersistenceProvider
    ) -> None:
        due = make_instance(next_execution=T0)
        later = make_instance(next_execution=T0 + timedelta(hours=1))
        never = make_instance(next_execution=None)  # waits for an event
        suspended = make_instance(next_execution=T0, status=WorkflowStatus.SUSPENDED)
        complete = make_instance(next_execution=T0, status=WorkflowStatus.COMPLETE)
        for w in (due, later, never, suspended, complete):
            await persistence.create_workflow(w)
        waits = _subscription(never, unique_word(), "k")
        await _save(persistence, never, opened_subscriptions=[waits])
        runnable = set(await persistence.get_runnable_instances(T0))
        assert due.id in runnable
        assert not runnable & {later.id, never.id, suspended.id, complete.id}
        runnable = set(await persistence.get_runnable_instances(T0 + timedelta(hours=2)))
        assert {due.id, later.id} <= runnable
        due.next_execution = T0 + timedelta(days=1)
        await _save(persistence, due)
        assert due.id not in await persistence.get_runnable_instances(T0 + timedelta(hours=2))

    async def test_runnable_instances_include_stranded_ones_and_honour_the_limit(
        self, persistence: PersistenceProvider
    ) -> None:
        waiting = make_instance(pointers=1, next_execution=None)
        stranded = make_instance(pointers=1, next_execution=None)
        for w in (waiting, stranded):
            await persistence.create_workflow(w)
        await _save(
            persistence, waiting, opened_subscriptions=[_subscription(waiting, unique_word(), "k")]
        )
        found = await persistence.get_runnable_instances(T0)
        assert stranded.id in found, "a RUNNABLE instance nothing would pick up is not listed"
        assert waiting.id not in found, "an instance waiting for an event is listed"
        for _ in range(3):
            await persistence.create_workflow(make_instance(next_execution=T0))
        assert len(await persistence.get_runnable_instances(T0, 2)) == 2

    async def test_list_workflows_filters_newest_first_and_pages(
        self, persistence: PersistenceProvider
    ) -> None:
        definition = unique_word("def")
        made = []
        for i in range(5):
            status = WorkflowStatus.COMPLETE if i % 2 else WorkflowStatus.RUNNABLE
            w = make_instance(
                definition_id=definition,
                status=status,
                pointers=2,
                create_time=T0 + timedelta(minutes=i),
            )
            await persistence.create_workflow(w)
            made.append(w)
        await persistence.create_workflow(make_instance(definition_id=unique_word("other")))
        newest_first = [w.id for w in reversed(made)]
        listed = await persistence.list_workflows(definition_id=definition)
        assert _ids(listed) == newest_first
        assert all(w.execution_pointers == [] for w in listed), "list_workflows loads pointers"
        assert listed[0].create_time == made[-1].create_time
        page = await persistence.list_workflows(definition_id=definition, skip=1, take=2)
        assert _ids(page) == newest_first[1:3]
        complete = await persistence.list_workflows(
            definition_id=definition, status=WorkflowStatus.COMPLETE
        )
        assert _ids(complete) == [made[3].id, made[1].id]
        anywhere = await persistence.list_workflows(status=WorkflowStatus.COMPLETE, take=10_000)
        assert {made[3].id, made[1].id} <= set(_ids(anywhere))
        assert made[0].id not in _ids(anywhere)

    async def test_concurrent_persists_of_different_instances(
        self, persistence: PersistenceProvider
    ) -> None:
        instances = [make_instance(pointers=1, data={"n": i}) for i in range(30)]

        async def run(instance: WorkflowInstance) -> None:
            await persistence.create_workflow(instance)
            for step in range(1, 4):
                last = instance.execution_pointers[-1]
                last.status = PointerStatus.COMPLETE
                new = make_pointer(step)
                instance.execution_pointers.append(new)
                instance.data = {"n": instance.data["n"], "step": step}
                await _save(persistence, instance, [last, new], fencing_token=step)

        async with trio.open_nursery() as nursery:
            for instance in instances:
                nursery.start_soon(run, instance)
        for w in instances:
            assert await persistence.get_workflow(w.id) == w

    # -- fencing ---------------------------------------------------------------------

    async def test_stale_fencing_token_is_refused_and_changes_nothing(
        self, persistence: PersistenceProvider
    ) -> None:
        instance = make_instance(pointers=1, data={"v": 0})
        await persistence.create_workflow(instance)
        instance.data = {"v": 1}
        await _save(persistence, instance, fencing_token=7)
        stored = await persistence.get_workflow(instance.id)
        instance.data = {"v": 2}
        instance.execution_pointers[0].status = PointerStatus.FAILED
        sub = _subscription(instance, unique_word(), "k")
        event = Event(name=unique_word(), key="k", time=T0)
        await persistence.create_event(event)
        error = ExecutionError(workflow_id=instance.id, pointer_id=None, time=T0, message="e")
        with expect_raises(StaleLeaseError, "a checkpoint with an older fencing token"):
            await _save(
                persistence,
                instance,
                instance.execution_pointers,
                opened_subscriptions=[sub],
                processed_events=[event.id],
                errors=[error],
                fencing_token=6,
            )
        assert await persistence.get_workflow(instance.id) == stored
        assert not await _is_open(persistence, sub)
        assert not (await persistence.get_event(event.id)).processed
        assert await persistence.get_errors(instance.id) == []

    async def test_same_or_newer_fencing_token_is_accepted(
        self, persistence: PersistenceProvider
    ) -> None:
        instance = make_instance(pointers=1, data={"v": 0})
        await persistence.create_workflow(instance)
        for token, value in ((3, 1), (3, 2), (9, 3)):
            instance.data = {"v": value}
            await _save(persistence, instance, fencing_token=token)
            assert (await persistence.get_workflow(instance.id)).data == {"v": value}
        with expect_raises(StaleLeaseError, "a checkpoint after a newer token was seen"):
            await _save(persistence, instance, fencing_token=3)
        instance.data = {"v": 4}
        await _save(persistence, instance)  # unfenced writes are not refused
        assert (await persistence.get_workflow(instance.id)).data == {"v": 4}

    async def test_claim_fences_out_the_previous_holder_before_it_writes(
        self, persistence: PersistenceProvider
    ) -> None:
        instance = make_instance(pointers=1, data={"v": 0})
        await persistence.create_workflow(instance)
        await persistence.claim_workflow(instance.id, 4)
        instance.data = {"v": 1}
        await _save(persistence, instance, fencing_token=4)
        claimed = await persistence.claim_workflow(instance.id, 5)
        assert claimed == await persistence.get_workflow(instance.id)
        assert claimed.data == {"v": 1}
        instance.data = {"v": 2}
        with expect_raises(StaleLeaseError, "the old holder's write after a newer claim"):
            await _save(persistence, instance, fencing_token=4)
        with expect_raises(StaleLeaseError, "an older claim after a newer one"):
            await persistence.claim_workflow(instance.id, 3)
        assert (await persistence.get_workflow(instance.id)).data == {"v": 1}
        with expect_raises(WorkflowNotFoundError, "claim_workflow of an unknown id"):
            await persistence.claim_workflow(new_id(), 1)

    # -- subscriptions ---------------------------------------------------------------

    async def test_subscriptions_are_opened_and_closed_by_checkpoints(
        self, persistence: PersistenceProvider
    ) -> None:
        instance = make_instance(pointers=1)
        await persistence.create_workflow(instance)
        name = unique_word()
        sub = _subscription(instance, name, "key-1", T0)
        instance.execution_pointers[0].status = PointerStatus.WAITING_FOR_EVENT
        await _save(persistence, instance, instance.execution_pointers, opened_subscriptions=[sub])
        assert await persistence.get_subscriptions(name, "key-1", T0) == [sub]
        got = await persistence.get_workflow(instance.id)
        assert got.execution_pointers[0].status is PointerStatus.WAITING_FOR_EVENT
        await _save(persistence, instance, closed_subscriptions=[sub.id, new_id()])
        await _save(persistence, instance, closed_subscriptions=[sub.id])  # harmless again
        assert await persistence.get_subscriptions(name, "key-1", T0) == []

    async def test_get_subscriptions_by_name_key_and_as_of_oldest_first(
        self, persistence: PersistenceProvider
    ) -> None:
        instance = make_instance(pointers=1)
        await persistence.create_workflow(instance)
        name = unique_word()
        late = _subscription(instance, name, "k", T0 + timedelta(minutes=10))
        early = _subscription(instance, name, "k", T0)
        other_key = _subscription(instance, name, "other", T0)
        other_name = _subscription(instance, unique_word(), "k", T0)
        for sub in (late, early, other_key, other_name):
            await _save(persistence, instance, opened_subscriptions=[sub])
        assert await persistence.get_subscriptions(name, "k", T0 - timedelta(seconds=1)) == []
        assert await persistence.get_subscriptions(name, "k", T0) == [early]
        found = await persistence.get_subscriptions(name, "k", T0 + timedelta(hours=1))
        assert found == [early, late]
        await _save(persistence, instance, closed_subscriptions=[early.id])
        found = await persistence.get_subscriptions(name, "k", T0 + timedelta(hours=1))
        assert found == [late]

    # -- event delivery --------------------------------------------------------------

    async def _waiting(
        self, persistence: PersistenceProvider, name: str, key: str = "k", as_of: Any = T0
    ) -> tuple[WorkflowInstance, EventSubscription]:
        """A stored instance whose last pointer waits on an open subscription."""
        instance = make_instance(pointers=3, next_execution=None)
        p = instance.execution_pointers[-1]
        p.status = PointerStatus.WAITING_FOR_EVENT
        p.active = False
        p.event_name, p.event_key = name, key
        await persistence.create_workflow(instance)
        sub = _subscription(instance, name, key, as_of)
        await _save(persistence, instance, opened_subscriptions=[sub])
        return instance, sub

    async def test_deliver_event_is_one_write_that_wakes_the_pointer(
        self, persistence: PersistenceProvider
    ) -> None:
        name = unique_word()
        instance, sub = await self._waiting(persistence, name)
        event = Event(name=name, key="k", data=SampleData(), time=T0)
        await persistence.create_event(event)
        delivery = EventDelivery(
            event_id=event.id,
            subscription_id=sub.id,
            workflow_id=instance.id,
            pointer_id=sub.pointer_id,
            time=T0 + timedelta(seconds=1),
            fencing_token=2,
        )
        assert await persistence.deliver_event(delivery)
        got = await persistence.get_workflow(instance.id)
        p = got.execution_pointers[-1]
        assert (p.status, p.active, p.event_published) == (PointerStatus.PENDING, True, True)
        assert p.event_data == SampleData()
        assert got.execution_pointers[:-1] == instance.execution_pointers[:-1]
        assert got.next_execution == T0 + timedelta(seconds=1)
        assert not await _is_open(persistence, sub)
        assert (await persistence.get_event(event.id)).processed
        assert not await persistence.deliver_event(delivery), "delivered twice"
        with expect_raises(StaleLeaseError, "a delivery under an older token"):
            await persistence.deliver_event(attrs.evolve(delivery, fencing_token=1))

    async def test_deliver_event_that_changes_nothing_still_raises_the_fence(
        self, persistence: PersistenceProvider
    ) -> None:
        """Found by the property tests: the SQL stores raised the fence on a delivery to
        a closed subscription, the memory store did not. Every fenced write that passes
        the fence records its token."""
        name = unique_word()
        instance, sub = await self._waiting(persistence, name)
        await _save(persistence, instance, closed_subscriptions=[sub.id])
        event = Event(name=name, key="k", time=T0)
        await persistence.create_event(event)
        delivery = EventDelivery(
            event_id=event.id,
            subscription_id=sub.id,
            workflow_id=instance.id,
            pointer_id=sub.pointer_id,
            time=T0,
            fencing_token=5,
        )
        assert not await persistence.deliver_event(delivery)
        with expect_raises(StaleLeaseError, "a claim older than a delivery's token"):
            await persistence.claim_workflow(instance.id, 4)

    async def test_deliver_event_can_leave_the_event_pending_for_other_subscribers(
        self, persistence: PersistenceProvider
    ) -> None:
        name = unique_word()
        instance, sub = await self._waiting(persistence, name)
        event = Event(name=name, key="k", time=T0)
        await persistence.create_event(event)
        delivery = EventDelivery(
            event_id=event.id,
            subscription_id=sub.id,
            workflow_id=instance.id,
            pointer_id=sub.pointer_id,
            time=T0,
            mark_processed=False,
        )
        assert await persistence.deliver_event(delivery)
        assert not (await persistence.get_event(event.id)).processed
        assert not await _is_open(persistence, sub)

    async def test_deliver_event_to_a_stale_subscription_changes_nothing(
        self, persistence: PersistenceProvider
    ) -> None:
        name = unique_word()
        instance, sub = await self._waiting(persistence, name)
        event = Event(name=name, key="k", time=T0)
        await persistence.create_event(event)
        before = await persistence.get_workflow(instance.id)
        await _save(persistence, instance, closed_subscriptions=[sub.id])
        delivery = EventDelivery(
            event_id=event.id,
            subscription_id=sub.id,
            workflow_id=instance.id,
            pointer_id=sub.pointer_id,
            time=T0,
        )
        assert not await persistence.deliver_event(delivery)
        assert await persistence.get_workflow(instance.id) == before
        assert not (await persistence.get_event(event.id)).processed

    # -- events ----------------------------------------------------------------------

    async def test_created_event_comes_back_equal(self, persistence: PersistenceProvider) -> None:
        event = Event(name=unique_word(), key="k", data=SampleData(), time=T0)
        assert await persistence.create_event(event) == event.id
        got = await persistence.get_event(event.id)
        assert got == event
        assert got.data is not event.data

    async def test_get_event_of_unknown_id_raises(self, persistence: PersistenceProvider) -> None:
        with expect_raises(WfeError, "get_event of an unknown id"):
            await persistence.get_event(new_id())

    async def test_runnable_events_need_an_open_subscription(
        self, persistence: PersistenceProvider
    ) -> None:
        name = unique_word()
        event = Event(name=name, key="k", data=1, time=T0)
        await persistence.create_event(event)
        far = T0 + timedelta(days=1)
        assert event.id not in await persistence.get_runnable_events(far), "no subscriber yet"
        instance = make_instance()
        await persistence.create_workflow(instance)
        too_late = _subscription(instance, name, "k", T0 + timedelta(seconds=1))
        wrong_key = _subscription(instance, name, "other", T0)
        await _save(persistence, instance, opened_subscriptions=[too_late, wrong_key])
        assert event.id not in await persistence.get_runnable_events(far)
        sub = _subscription(instance, name, "k", T0 - timedelta(seconds=1))
        await _save(persistence, instance, opened_subscriptions=[sub])
        assert event.id in await persistence.get_runnable_events(far)
        assert event.id in await persistence.get_runnable_events(T0)
        early = T0 - timedelta(microseconds=1)
        assert event.id not in await persistence.get_runnable_events(early), "not due yet"
        await _save(persistence, instance, closed_subscriptions=[sub.id])
        assert event.id not in await persistence.get_runnable_events(far)

    async def test_runnable_events_are_earliest_first_and_exclude_processed(
        self, persistence: PersistenceProvider
    ) -> None:
        name = unique_word()
        instance = make_instance()
        await persistence.create_workflow(instance)
        await _save(
            persistence, instance, opened_subscriptions=[_subscription(instance, name, "k")]
        )
        second = Event(name=name, key="k", time=T0 + timedelta(seconds=2))
        first = Event(name=name, key="k", time=T0 + timedelta(seconds=1))
        done = Event(name=name, key="k", time=T0 + timedelta(seconds=3), processed=True)
        for e in (second, first, done):
            await persistence.create_event(e)
        runnable = await persistence.get_runnable_events(T0 + timedelta(days=1))
        ours = [i for i in runnable if i in {first.id, second.id, done.id}]
        assert ours == [first.id, second.id]
        assert len(await persistence.get_runnable_events(T0 + timedelta(days=1), 1)) == 1

    async def test_pending_events_by_name_key_and_as_of_earliest_first(
        self, persistence: PersistenceProvider
    ) -> None:
        name = unique_word()
        events = [
            Event(name=name, key="k", data=i, time=T0 + timedelta(seconds=s))
            for i, s in enumerate((5, -5, 0, 10))
        ]
        events.append(Event(name=name, key="other", time=T0))
        events.append(Event(name=name, key="k", time=T0 + timedelta(seconds=1), processed=True))
        for e in events:
            await persistence.create_event(e)
        pending = await persistence.get_pending_events(name, "k", T0)
        assert [e.data for e in pending] == [2, 0, 3]
        assert _ids(await persistence.get_pending_events(name, "k", T0 - timedelta(hours=1))) == [
            events[1].id,
            events[2].id,
            events[0].id,
            events[3].id,
        ]
        assert await persistence.get_pending_events(name, "k", T0 + timedelta(hours=1)) == []
        assert _ids(await persistence.get_pending_events(name, "k", T0, 1)) == [events[2].id]

    # -- errors ---------------------------------------------------------

    async def test_execution_errors_are_appended_and_listed_oldest_first(
        self, persistence: PersistenceProvider
    ) -> None:
        instance = make_instance()
        await persistence.create_workflow(instance)
        pointer_id = instance.execution_pointers[0].id
        e2 = ExecutionError(
            workflow_id=instance.id, pointer_id=pointer_id, time=T0 + timedelta(1), message="b"
        )
        e1 = ExecutionError(workflow_id=instance.id, pointer_id=None, time=T0, message="a")
        await _save(persistence, instance, errors=[e2])
        await _save(persistence, instance, errors=[e1])
        await _save(persistence, instance, errors=[])
        assert await persistence.get_errors(instance.id) == [e1, e2]
        assert await persistence.get_errors(new_id()) == []

    # -- retention --------------------------------------------------------------------

    async def test_purge_removes_ended_instances_with_everything_theirs(
        self, persistence: PersistenceProvider
    ) -> None:
        # Far older than any other test's instances, so data they leave is not touched.
        old = T0 - timedelta(days=20000)
        cutoff = old + timedelta(days=1)
        done = make_instance(
            status=WorkflowStatus.COMPLETE, create_time=old, complete_time=old + timedelta(hours=2)
        )
        ended = make_instance(
            status=WorkflowStatus.TERMINATED,
            create_time=old,
            complete_time=old + timedelta(hours=1),
        )
        fresh = make_instance(status=WorkflowStatus.COMPLETE, create_time=old, complete_time=cutoff)
        running = make_instance(create_time=old)
        paused = make_instance(status=WorkflowStatus.SUSPENDED, create_time=old)
        for instance in (done, ended, fresh, running, paused):
            await persistence.create_workflow(instance)
        name = unique_word()
        sub = _subscription(done, name, "k", old)
        error = ExecutionError(workflow_id=done.id, pointer_id=None, time=old, message="x")
        await _save(
            persistence, done, done.execution_pointers, opened_subscriptions=[sub], errors=[error]
        )
        statuses = [WorkflowStatus.COMPLETE, WorkflowStatus.TERMINATED]
        assert await persistence.count_purgeable(cutoff, statuses) == 2
        assert await persistence.purge_workflows(cutoff, statuses) == [ended.id, done.id]
        for gone in (done, ended):
            with expect_raises(WorkflowNotFoundError, "a purged instance"):
                await persistence.get_workflow(gone.id)
        assert await persistence.get_errors(done.id) == []
        assert await persistence.get_subscriptions(name, "k", _FAR) == []
        for kept in (fresh, running, paused):
            assert (await persistence.get_workflow(kept.id)).status is kept.status
        assert await persistence.purge_workflows(cutoff, statuses) == []
        suspended = [WorkflowStatus.SUSPENDED]
        assert await persistence.purge_workflows(cutoff, suspended) == [paused.id]

    async def test_purge_takes_a_purged_child_s_untaken_notice_with_it(
        self, persistence: PersistenceProvider
    ) -> None:
        old = T0 - timedelta(days=20000)
        child, kept = (
            make_instance(status=WorkflowStatus.COMPLETE, create_time=old, complete_time=end)
            for end in (old, old + timedelta(days=2))
        )
        for instance in (child, kept):
            await persistence.create_workflow(instance)
        untaken, taken, other = (
            Event(name=CHILD_FINISHED_EVENT, key=key, time=old, processed=processed)
            for key, processed in ((child.id, False), (child.id, True), (kept.id, False))
        )
        for event in (untaken, taken, other):
            await persistence.create_event(event)
        cutoff = old + timedelta(days=1)
        assert await persistence.purge_workflows(cutoff, [WorkflowStatus.COMPLETE]) == [child.id]
        with expect_raises(WfeError, "the purged child's untaken notice"):
            await persistence.get_event(untaken.id)
        # A delivered notice goes with the other processed events (purge_events); the
        # notice of a workflow still stored stays.
        assert (await persistence.get_event(taken.id)).processed
        assert not (await persistence.get_event(other.id)).processed

    async def test_purge_goes_in_batches_of_the_limit(
        self, persistence: PersistenceProvider
    ) -> None:
        old = T0 - timedelta(days=30000)
        made = [
            make_instance(
                status=WorkflowStatus.COMPLETE,
                create_time=old,
                complete_time=old + timedelta(minutes=i),
            )
            for i in range(5)
        ]
        for instance in made:
            await persistence.create_workflow(instance)
        cutoff = old + timedelta(days=1)
        statuses = [WorkflowStatus.COMPLETE]
        batches = [await persistence.purge_workflows(cutoff, statuses, 2) for _ in range(4)]
        assert batches == [_ids(made[:2]), _ids(made[2:4]), _ids(made[4:]), []]

    async def test_purge_never_takes_runnable_instances(
        self, persistence: PersistenceProvider
    ) -> None:
        for statuses in ([WorkflowStatus.RUNNABLE], [WorkflowStatus.COMPLETE, "RUNNABLE"], []):
            with expect_raises(ConfigurationError, f"purging {statuses}"):
                await persistence.purge_workflows(_FAR, statuses)  # type: ignore[arg-type]
            with expect_raises(ConfigurationError, f"counting {statuses}"):
                await persistence.count_purgeable(_FAR, statuses)  # type: ignore[arg-type]

    async def test_purge_events_takes_processed_old_ones_only(
        self, persistence: PersistenceProvider
    ) -> None:
        old = T0 - timedelta(days=20000)
        name = unique_word()
        gone = Event(name=name, key="k", time=old, processed=True)
        waiting = Event(name=name, key="k", time=old)
        recent = Event(name=name, key="k", time=old + timedelta(days=2), processed=True)
        for event in (gone, waiting, recent):
            await persistence.create_event(event)
        assert await persistence.purge_events(old + timedelta(days=1)) == 1
        with expect_raises(WfeError, "a purged event"):
            await persistence.get_event(gone.id)
        assert (await persistence.get_event(waiting.id)).id == waiting.id
        assert (await persistence.get_event(recent.id)).id == recent.id


class BatchPersistenceContract(PersistenceContract):
    """:class:`PersistenceContract` plus the
    :class:`~wfe.core.protocols.BatchPersistence` capability, for a persistence provider
    that has it (same fixture)."""

    async def test_get_workflows_reads_those_that_exist_in_the_order_asked(
        self, persistence: PersistenceProvider
    ) -> None:
        assert isinstance(persistence, BatchPersistence), (
            "no get_workflows (not a BatchPersistence)"
        )
        instances = [make_instance(pointers=i + 1, data={"n": i}) for i in range(3)]
        for instance in instances:
            await persistence.create_workflow(instance)
        a, b, c = (i.id for i in instances)
        asked = [c, new_id(), a, c, b]
        got = await persistence.get_workflows(asked)
        assert got == [instances[2], instances[0], instances[1]]
        rows = await persistence.get_workflows(asked, with_pointers=False)
        assert [r.id for r in rows] == [c, a, b]
        assert all(r.execution_pointers == [] for r in rows)
        assert rows[0].data == {"n": 2}
        assert await persistence.get_workflows([]) == []
        assert await persistence.get_workflows([new_id()], with_pointers=False) == []
        many = [make_instance(data={"n": i}) for i in range(40)]
        for instance in many:
            await persistence.create_workflow(instance)
        rows = await persistence.get_workflows([i.id for i in reversed(many)], with_pointers=False)
        assert [r.data for r in rows] == [{"n": i} for i in reversed(range(40))]
        got[0].data["n"] = 99  # a copy
        assert (await persistence.get_workflows([c]))[0].data == {"n": 2}
