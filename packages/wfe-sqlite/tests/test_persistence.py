"""SqlitePersistenceProvider: storage of workflows, pointers, events, subscriptions."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from wfe.core import (
    DataSerializationError,
    Event,
    EventSubscription,
    ExecutionPointer,
    PointerStatus,
    ProviderError,
    WorkflowInstance,
    WorkflowNotFoundError,
    WorkflowStatus,
)
from wfe.core.protocols import Checkpoint, EventDelivery
from wfe.sqlite import SqlitePersistenceProvider

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_instance(n_pointers: int = 2, **kw: object) -> WorkflowInstance:
    pointers = [
        ExecutionPointer(step_id=i, sequence=i, step_name=f"s{i}") for i in range(n_pointers)
    ]
    defaults: dict[str, object] = {
        "definition_id": "order",
        "version": 1,
        "data": {"total": Decimal("12.50"), "when": T0, "day": date(2024, 5, 1)},
        "execution_pointers": pointers,
        "create_time": T0,
    }
    defaults.update(kw)
    return WorkflowInstance(**defaults)  # type: ignore[arg-type]


async def test_workflow_round_trips_exactly(persistence: SqlitePersistenceProvider) -> None:
    inst = make_instance(
        reference="A-17",
        description="an order",
        next_execution=T0,
        fingerprint="abc",
        data={"d": Decimal("0.10"), "u": uuid.UUID(int=7), "nested": [{"t": (1, 2)}]},
    )
    p = inst.execution_pointers[0]
    p.status = PointerStatus.SLEEPING
    p.sleep_until = T0 + timedelta(seconds=5)
    p.persistence_data = {"k": Decimal("1.5")}
    p.children = ["x", "y"]
    p.scope = ["outer"]
    p.extension = {"attempt": 2}
    assert await persistence.create_workflow(inst) == inst.id
    got = await persistence.get_workflow(inst.id)
    assert got == inst
    assert got is not inst
    assert isinstance(got.data["d"], Decimal)


async def test_returned_instances_are_copies(persistence: SqlitePersistenceProvider) -> None:
    inst = make_instance()
    await persistence.create_workflow(inst)
    got = await persistence.get_workflow(inst.id)
    got.data["total"] = Decimal(0)
    got.execution_pointers[0].retry_count = 9
    assert await persistence.get_workflow(inst.id) == inst


async def test_pointers_come_back_in_sequence_order(
    persistence: SqlitePersistenceProvider,
) -> None:
    inst = make_instance(0)
    inst.execution_pointers = [
        ExecutionPointer(step_id=i, sequence=s) for i, s in enumerate([3, 1, 2, 0])
    ]
    await persistence.create_workflow(inst)
    got = await persistence.get_workflow(inst.id)
    assert [p.sequence for p in got.execution_pointers] == [0, 1, 2, 3]


@pytest.mark.parametrize("n", [0, 1, 64, 65, 500])
async def test_histories_short_and_long_come_back_whole_and_in_order(
    persistence: SqlitePersistenceProvider, n: int
) -> None:
    """Up to 64 pointers are read on the trio thread, longer histories in a reader
    thread: either way all of them, in order."""
    inst = make_instance(0)
    inst.execution_pointers = [
        ExecutionPointer(step_id=i, sequence=n - i, step_name=f"s{i}") for i in range(n)
    ]
    await persistence.create_workflow(inst)
    got = await persistence.get_workflow(inst.id)
    assert [p.sequence for p in got.execution_pointers] == list(range(1, n + 1))
    assert [p.id for p in got.execution_pointers] == [
        p.id for p in reversed(inst.execution_pointers)
    ]


async def test_persisting_an_unknown_workflow_raises(
    persistence: SqlitePersistenceProvider,
) -> None:
    with pytest.raises(WorkflowNotFoundError):
        await persistence.persist_checkpoint(Checkpoint(instance=make_instance()))
    with pytest.raises(WorkflowNotFoundError):
        await persistence.get_workflow("missing")


async def test_failed_write_stores_nothing(persistence: SqlitePersistenceProvider) -> None:
    inst = make_instance(2)
    inst.execution_pointers[1].id = inst.execution_pointers[0].id  # duplicate pointer id
    with pytest.raises(ProviderError, match="already exists"):
        await persistence.create_workflow(inst)
    with pytest.raises(WorkflowNotFoundError):
        await persistence.get_workflow(inst.id)
    ok = make_instance(1)
    await persistence.create_workflow(ok)
    ok.execution_pointers[0].persistence_data = object()
    with pytest.raises(DataSerializationError):
        await persistence.persist_checkpoint(
            Checkpoint(instance=ok, pointers=ok.execution_pointers)
        )
    assert (await persistence.get_workflow(ok.id)).execution_pointers[0].persistence_data is None


async def test_list_workflows_filters_and_pages_newest_first(
    persistence: SqlitePersistenceProvider,
) -> None:
    made = []
    for i in range(5):
        inst = make_instance(
            1,
            create_time=T0 + timedelta(seconds=i),
            definition_id="a" if i % 2 else "b",
            status=WorkflowStatus.COMPLETE if i == 4 else WorkflowStatus.RUNNABLE,
        )
        await persistence.create_workflow(inst)
        made.append(inst)
    listed = await persistence.list_workflows()
    assert [i.id for i in listed] == [i.id for i in reversed(made)]
    assert all(i.execution_pointers == [] for i in listed)
    assert [i.id for i in await persistence.list_workflows(skip=1, take=2)] == [
        made[3].id,
        made[2].id,
    ]
    assert [i.id for i in await persistence.list_workflows(definition_id="a")] == [
        made[3].id,
        made[1].id,
    ]
    assert [i.id for i in await persistence.list_workflows(status=WorkflowStatus.COMPLETE)] == [
        made[4].id
    ]


async def test_events_pending_runnable_and_processed(
    persistence: SqlitePersistenceProvider,
) -> None:
    early = Event(name="paid", key="o1", data={"amount": Decimal("3")}, time=T0)
    late = Event(name="paid", key="o1", time=T0 + timedelta(seconds=10))
    other = Event(name="paid", key="o2", time=T0)
    for ev in (late, early, other):
        await persistence.create_event(ev)
    assert await persistence.get_event(early.id) == early
    with pytest.raises(ProviderError, match="no event"):
        await persistence.get_event("missing")
    pending = await persistence.get_pending_events("paid", "o1", T0)
    assert [e.id for e in pending] == [early.id, late.id]
    # Nobody subscribes yet: nothing is runnable, the events stay pending.
    assert await persistence.get_runnable_events(T0 + timedelta(hours=1)) == []
    waiter = make_instance(1)
    await persistence.create_workflow(waiter)
    sub = EventSubscription(
        workflow_id=waiter.id,
        step_id=0,
        pointer_id=waiter.execution_pointers[0].id,
        event_name="paid",
        event_key="o1",
        as_of=T0,
    )
    await persistence.persist_checkpoint(Checkpoint(instance=waiter, opened_subscriptions=[sub]))
    assert await persistence.get_runnable_events(T0 + timedelta(hours=1)) == [early.id, late.id]
    assert await persistence.get_runnable_events(T0) == [early.id]
    await persistence.persist_checkpoint(Checkpoint(instance=waiter, processed_events=[early.id]))
    assert (await persistence.get_event(early.id)).processed
    assert [e.id for e in await persistence.get_pending_events("paid", "o1", T0)] == [late.id]
    await persistence.persist_checkpoint(Checkpoint(instance=waiter, closed_subscriptions=[sub.id]))
    assert await persistence.get_runnable_events(T0 + timedelta(hours=1)) == []


async def test_event_delivery_reads_no_data_class(persistence: SqlitePersistenceProvider) -> None:
    """Delivery works on the stored JSON: the data's class need not be importable here."""
    waiter = make_instance(1, data={"order": "x"})
    p = waiter.execution_pointers[0]
    p.status = PointerStatus.WAITING_FOR_EVENT
    p.active = False
    p.persistence_data = {"cursor": Decimal("2.5")}
    await persistence.create_workflow(waiter)
    sub = EventSubscription(
        workflow_id=waiter.id, step_id=0, pointer_id=p.id, event_name="e", event_key="k", as_of=T0
    )
    await persistence.persist_checkpoint(Checkpoint(instance=waiter, opened_subscriptions=[sub]))
    event = Event(name="e", key="k", data={"$wfe": "not-a-tag", "amount": Decimal("3")}, time=T0)
    await persistence.create_event(event)
    delivery = EventDelivery(
        event_id=event.id, subscription_id=sub.id, workflow_id=waiter.id, pointer_id=p.id, time=T0
    )
    assert await persistence.deliver_event(delivery)
    got = (await persistence.get_workflow(waiter.id)).execution_pointers[0]
    assert got.event_data == event.data
    assert got.persistence_data == {"cursor": Decimal("2.5")}
    assert got.status is PointerStatus.PENDING


async def test_ensure_store_exists_is_idempotent(persistence: SqlitePersistenceProvider) -> None:
    inst = make_instance()
    await persistence.create_workflow(inst)
    await persistence.ensure_store_exists()
    await persistence.ensure_store_exists()
    assert await persistence.get_workflow(inst.id) == inst


async def test_file_store_survives_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    inst = make_instance(3)
    async with SqlitePersistenceProvider(url) as store:
        await store.create_workflow(inst)
    async with SqlitePersistenceProvider(url) as store:
        assert await store.get_workflow(inst.id) == inst


async def test_naive_datetimes_are_read_as_utc(persistence: SqlitePersistenceProvider) -> None:
    inst = make_instance(create_time=datetime(2024, 1, 1, 8, 0))
    await persistence.create_workflow(inst)
    got = await persistence.get_workflow(inst.id)
    assert got.create_time == datetime(2024, 1, 1, 8, 0, tzinfo=UTC)


async def test_unopened_provider_says_how_to_open(tmp_path: Path) -> None:
    store = SqlitePersistenceProvider(f"sqlite:///{tmp_path / 'w.db'}")
    with pytest.raises(ProviderError, match="async with"):
        await store.get_workflow("x")
