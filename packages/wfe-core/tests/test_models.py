"""The persistent model classes: defaults, identity, and lookups."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from wfe.core import (
    Event,
    EventSubscription,
    ExecutionError,
    ExecutionPointer,
    PointerStatus,
    ScheduledCommand,
    WorkflowInstance,
    WorkflowStatus,
)
from wfe.core._models import new_id, utcnow
from wfe.core.protocols import Lease, QueueItem, QueueKind, SearchFilters
from wfe.core.testing import T0, make_instance


def test_new_ids_are_unique_32_char_hex() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_new_ids_are_uuid4_hex_across_many_pages_of_random_bytes() -> None:
    ids = [new_id() for _ in range(5000)]  # ~20 refills of the random pool
    assert len(set(ids)) == len(ids)
    parsed = [uuid.UUID(i) for i in ids]
    assert {(u.version, u.variant) for u in parsed} == {(4, uuid.RFC_4122)}
    assert all(u.hex == i for u, i in zip(parsed, ids, strict=True))


def test_threads_never_hand_out_the_same_id() -> None:
    found: list[list[str]] = [[] for _ in range(8)]

    def make(into: list[str]) -> None:
        into.extend(new_id() for _ in range(3000))

    threads = [threading.Thread(target=make, args=(f,)) for f in found]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for f in found for i in f]
    assert len(set(every)) == len(every) == 8 * 3000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_id()  # the parent's pool is filled: a child that kept it would repeat it
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its ids and leave at once
        os.close(read)
        os.write(write, "".join(new_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode()
    os.waitpid(pid, 0)
    theirs = {child[i : i + 32] for i in range(0, len(child), 32)}
    ours = {new_id() for _ in range(100)}
    assert len(theirs) == 100
    assert not theirs & ours


def test_utcnow_is_timezone_aware_utc() -> None:
    assert utcnow().tzinfo is UTC


def test_statuses_are_their_names() -> None:
    assert [s.value for s in WorkflowStatus] == ["RUNNABLE", "SUSPENDED", "COMPLETE", "TERMINATED"]
    assert PointerStatus("WAITING_FOR_EVENT") is PointerStatus.WAITING_FOR_EVENT
    assert len(PointerStatus) == 10


def test_new_instance_defaults() -> None:
    before = utcnow()
    instance = WorkflowInstance(definition_id="d", version=2)
    assert instance.status is WorkflowStatus.RUNNABLE
    assert instance.execution_pointers == []
    assert instance.next_execution is None
    assert instance.complete_time is None
    assert before <= instance.create_time <= utcnow()
    assert instance.id != WorkflowInstance(definition_id="d", version=2).id


def test_new_pointer_defaults_do_not_share_lists() -> None:
    a, b = ExecutionPointer(step_id=0), ExecutionPointer(step_id=0)
    a.children.append("x")
    a.scope.append("y")
    a.extension["k"] = 1
    assert (b.children, b.scope, b.extension) == ([], [], {})
    assert a.status is PointerStatus.PENDING
    assert a.active
    assert a.sequence == 0
    assert a.end_sequence is None


def test_models_take_keyword_arguments_only() -> None:
    with pytest.raises(TypeError):
        WorkflowInstance("d", 1)  # type: ignore[call-arg, arg-type]


def test_instance_pointer_lookup_by_id() -> None:
    instance = make_instance(pointers=3)
    second = instance.execution_pointers[1]
    assert instance.pointer(second.id) is second
    with pytest.raises(KeyError):
        instance.pointer("missing")


def test_make_instance_orders_and_links_pointers() -> None:
    instance = make_instance(pointers=3, next_execution=T0)
    sequences = [p.sequence for p in instance.execution_pointers]
    assert sequences == [0, 1, 2]
    first, second, last = instance.execution_pointers
    assert second.scope == [first.id]
    assert last.predecessor_id == second.id
    assert last.status is PointerStatus.PENDING
    assert first.status is PointerStatus.COMPLETE


def test_values_are_frozen() -> None:
    error = ExecutionError(workflow_id="w", pointer_id=None, time=T0, message="m")
    command = ScheduledCommand(name="n", data="d", execute_time=T0)
    lease = Lease(resource="r", owner="o", fencing_token=1, ttl=timedelta(1), expires_at=T0)
    for value in (error, command, lease, QueueItem(kind=QueueKind.EVENT, item_id="i")):
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            value.__setattr__("time", T0)


def test_scheduled_command_names() -> None:
    assert ScheduledCommand.PROCESS_WORKFLOW == "ProcessWorkflow"
    assert ScheduledCommand.PROCESS_EVENT == "ProcessEvent"


def test_event_and_subscription_defaults() -> None:
    event = Event(name="n", key="k")
    assert not event.processed
    assert event.time.tzinfo is not None
    sub = EventSubscription(
        workflow_id="w", step_id=1, pointer_id="p", event_name="n", event_key="k", as_of=T0
    )
    assert not sub.terminated


def test_queue_kinds_and_empty_filters() -> None:
    assert [k.value for k in QueueKind] == ["workflow", "event", "index"]
    filters = SearchFilters()
    fields = [f.name for f in attrs.fields(SearchFilters)]
    assert all(getattr(filters, name) is None for name in fields if name != "data")
    assert filters.data == ()


def test_instances_compare_by_value() -> None:
    a = make_instance(pointers=2, create_time=datetime(2026, 1, 1, tzinfo=UTC))
    b = attrs.evolve(a, execution_pointers=[attrs.evolve(p) for p in a.execution_pointers])
    assert a == b
    b.execution_pointers[0].retry_count = 1
    assert a != b
