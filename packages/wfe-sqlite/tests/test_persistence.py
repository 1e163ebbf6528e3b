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
    ExecutionError,
    ExecutionPointer,
    PointerStatus,
    ProviderError,
    ScheduledCommand,
    StaleLeaseError,
    WorkflowInstance,
    WorkflowNotFoundError,
    WorkflowStatus,
)
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


async def test_persist_writes_only_listed_pointers(persistence: SqlitePersistenceProvider) -> None:
    inst = make_instance(3)
    await persistence.create_workflow(inst)
    first, second, _ = inst.execution_pointers
    first.retry_count = 5  # changed in memory, but not listed: must stay as stored
    second.status = PointerStatus.COMPLETE
    new = ExecutionPointer(step_id=9, sequence=3)
    inst.execution_pointers.append(new)
    inst.status = WorkflowStatus.COMPLETE
    await persistence.persist_workflow(inst, [second, new])
    got = await persistence.get_workflow(inst.id)
    assert got.status is WorkflowStatus.COMPLETE
    assert got.execution_pointers[0].retry_count == 0
    assert got.execution_pointers[1].status is PointerStatus.COMPLETE
    assert got.execution_pointers[3] == new


async def test_persist_without_pointer_list_replaces_them_all(
    persistence: SqlitePersistenceProvider,
) -> None:
    inst = make_instance(3)
    await persistence.create_workflow(inst)
    del inst.execution_pointers[1]
    inst.execution_pointers[0].retry_count = 2
    await persistence.persist_workflow(inst)
    assert await persistence.get_workflow(inst.id) == inst


async def test_persist_creates_subscriptions_with_the_workflow(
    persistence: SqlitePersistenceProvider,
) -> None:
    inst = make_instance(1)
    await persistence.create_workflow(inst)
    sub = EventSubscription(
        workflow_id=inst.id,
        step_id=0,
        pointer_id=inst.execution_pointers[0].id,
        event_name="approved",
        event_key="k",
        as_of=T0,
    )
    await persistence.persist_workflow(inst, [], subscriptions=[sub])
    assert await persistence.get_subscriptions("approved", "k", T0) == [sub]


async def test_stale_fencing_token_is_refused_and_changes_nothing(
    persistence: SqlitePersistenceProvider,
) -> None:
    inst = make_instance(1)
    await persistence.create_workflow(inst)
    inst.data = {"v": 1}
    await persistence.persist_workflow(inst, [], fencing_token=5)
    await persistence.persist_workflow(inst, [], fencing_token=5)  # same holder again
    stale = make_instance(1, id=inst.id, data={"v": "stale"})
    stale.execution_pointers[0].id = inst.execution_pointers[0].id
    stale.execution_pointers[0].status = PointerStatus.FAILED
    sub = EventSubscription(
        workflow_id=inst.id, step_id=0, pointer_id="p", event_name="e", event_key="k", as_of=T0
    )
    with pytest.raises(StaleLeaseError, match="fencing token 4"):
        await persistence.persist_workflow(stale, None, subscriptions=[sub], fencing_token=4)
    got = await persistence.get_workflow(inst.id)
    assert got.data == {"v": 1}
    assert got.execution_pointers[0].status is PointerStatus.PENDING
    assert await persistence.get_subscription(sub.id) is None
    await persistence.persist_workflow(inst, [], fencing_token=6)


async def test_persisting_an_unknown_workflow_raises(
    persistence: SqlitePersistenceProvider,
) -> None:
    with pytest.raises(WorkflowNotFoundError):
        await persistence.persist_workflow(make_instance())
    with pytest.raises(WorkflowNotFoundError):
        await persistence.get_workflow("missing")


async def test_failed_write_stores_nothing(persistence: SqlitePersistenceProvider) -> None:
    inst = make_instance(2)
    inst.execution_pointers[1].id = inst.execution_pointers[0].id  # duplicate pointer id
    with pytest.raises(ProviderError, match="already exists"):
        await persistence.create_workflow(inst)
    assert await persistence.get_workflows([inst.id]) == []
    ok = make_instance(1)
    await persistence.create_workflow(ok)
    ok.execution_pointers[0].persistence_data = object()
    with pytest.raises(DataSerializationError):
        await persistence.persist_workflow(ok)
    assert (await persistence.get_workflow(ok.id)).execution_pointers[0].persistence_data is None


async def test_get_workflows_skips_missing_ids(persistence: SqlitePersistenceProvider) -> None:
    a, b = make_instance(), make_instance()
    for inst in (a, b):
        await persistence.create_workflow(inst)
    got = await persistence.get_workflows([b.id, "nope", a.id])
    assert [i.id for i in got] == [b.id, a.id]
    assert got[0] == b


async def test_runnable_instances_are_due_and_runnable(
    persistence: SqlitePersistenceProvider,
) -> None:
    due = make_instance(next_execution=T0)
    later = make_instance(next_execution=T0 + timedelta(minutes=1))
    suspended = make_instance(next_execution=T0, status=WorkflowStatus.SUSPENDED)
    never = make_instance(next_execution=None)
    for inst in (due, later, suspended, never):
        await persistence.create_workflow(inst)
    assert await persistence.get_runnable_instances(T0) == [due.id]
    assert await persistence.get_runnable_instances(T0 + timedelta(hours=1)) == [
        due.id,
        later.id,
    ]


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
    sub = EventSubscription(
        workflow_id="w", step_id=1, pointer_id="p", event_name="paid", event_key="o1", as_of=T0
    )
    await persistence.create_subscription(sub)
    assert await persistence.get_runnable_events(T0 + timedelta(hours=1)) == [early.id, late.id]
    assert await persistence.get_runnable_events(T0) == [early.id]
    await persistence.mark_event_processed(early.id)
    assert (await persistence.get_event(early.id)).processed
    assert [e.id for e in await persistence.get_pending_events("paid", "o1", T0)] == [late.id]
    await persistence.mark_event_unprocessed(early.id)
    assert await persistence.get_runnable_events(T0) == [early.id]
    await persistence.terminate_subscription(sub.id)
    assert await persistence.get_runnable_events(T0) == []


async def test_subscriptions_by_name_key_and_as_of(persistence: SqlitePersistenceProvider) -> None:
    def sub(as_of: datetime, key: str = "k") -> EventSubscription:
        return EventSubscription(
            workflow_id="w", step_id=0, pointer_id="p", event_name="e", event_key=key, as_of=as_of
        )

    later, earlier, other = sub(T0 + timedelta(seconds=5)), sub(T0), sub(T0, "x")
    for s in (later, earlier, other):
        await persistence.create_subscription(s)
    assert await persistence.get_subscriptions("e", "k", T0) == [earlier]
    assert await persistence.get_subscriptions("e", "k", T0 + timedelta(seconds=5)) == [
        earlier,
        later,
    ]
    await persistence.terminate_subscription(earlier.id)
    await persistence.terminate_subscription(earlier.id)
    await persistence.terminate_subscription("unknown")
    closed = await persistence.get_subscription(earlier.id)
    assert closed is not None
    assert closed.terminated
    assert await persistence.get_subscription("unknown") is None
    assert await persistence.get_subscriptions("e", "k", T0) == []


async def test_errors_are_appended_oldest_first(persistence: SqlitePersistenceProvider) -> None:
    e2 = ExecutionError(workflow_id="w", pointer_id="p", time=T0 + timedelta(1), message="two")
    e1 = ExecutionError(workflow_id="w", pointer_id=None, time=T0, message="one")
    await persistence.persist_errors([e2])
    await persistence.persist_errors([e1])
    await persistence.persist_errors([])
    assert await persistence.get_errors("w") == [e1, e2]
    assert await persistence.get_errors("other") == []


async def test_scheduled_commands_are_kept_once_and_taken_when_due(
    persistence: SqlitePersistenceProvider,
) -> None:
    a = ScheduledCommand(name="ProcessWorkflow", data="w1", execute_time=T0 + timedelta(1))
    b = ScheduledCommand(name="ProcessWorkflow", data="w2", execute_time=T0)
    await persistence.schedule_command(a)
    await persistence.schedule_command(b)
    await persistence.schedule_command(
        ScheduledCommand(name="ProcessWorkflow", data="w1", execute_time=T0 + timedelta(2))
    )
    assert await persistence.take_due_commands(T0 - timedelta(1)) == []
    assert await persistence.take_due_commands(T0 + timedelta(days=5)) == [b, a]
    assert await persistence.take_due_commands(T0 + timedelta(days=5)) == []


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
