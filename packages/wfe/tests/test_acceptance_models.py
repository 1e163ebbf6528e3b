"""Black-box acceptance tests of DESIGN.md, written from the design text alone.

§3: the models, enums, results and lifecycle event types, and exact data round trips.
Stores: the in-memory store and ``sqlite:///<tmp>``.
"""

from __future__ import annotations

import sys
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import attrs
import pytest

from wfe.core import (
    ErrorBehavior,
    Event,
    EventSubscription,
    ExecutionError,
    ExecutionPointer,
    ExecutionResult,
    PointerStatus,
    ScheduledCommand,
    StepCompleted,
    StepStarted,
    WfeError,
    WorkflowBuilder,
    WorkflowCompleted,
    WorkflowDefinition,
    WorkflowError,
    WorkflowInstance,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowStatus,
    WorkflowStep,
    WorkflowSuspended,
    WorkflowTerminated,
)

# The helpers and data classes live in sibling modules so that they are importable by name
# (pytest's importlib mode does not put tests/ on sys.path).
sys.path.insert(0, str(Path(__file__).parent))
from acceptance_models import Address, Color, Holder, Order, Rich
from acceptance_support import (
    open_host,
    store_fixture,  # noqa: F401  (the ``store`` fixture)
)

# --------------------------------------------------------------------------- §3 models

MODEL_FIELDS: list[tuple[type, list[str]]] = [
    (
        WorkflowDefinition,
        ["id", "version", "steps", "data_type", "default_error_behavior", "description"],
    ),
    (
        WorkflowStep,
        [
            "id",
            "name",
            "external_id",
            "body",
            "children",
            "outcomes",
            "inputs",
            "outputs",
            "error_behavior",
            "compensation_step_id",
            "cancel_condition",
            "proceed_on_cancel",
        ],
    ),
    (
        WorkflowInstance,
        [
            "id",
            "definition_id",
            "version",
            "description",
            "reference",
            "status",
            "data",
            "execution_pointers",
            "next_execution",
            "create_time",
            "complete_time",
        ],
    ),
    (
        ExecutionPointer,
        [
            "id",
            "step_id",
            "step_name",
            "status",
            "active",
            "sleep_until",
            "persistence_data",
            "start_time",
            "end_time",
            "event_name",
            "event_key",
            "event_published",
            "event_data",
            "retry_count",
            "children",
            "context_item",
            "predecessor_id",
            "outcome",
            "scope",
        ],
    ),
    (Event, ["id", "name", "key", "data", "time", "processed"]),
    (
        EventSubscription,
        ["id", "workflow_id", "step_id", "pointer_id", "event_name", "event_key", "as_of"],
    ),
    (ExecutionError, ["workflow_id", "pointer_id", "time", "message"]),
    (ScheduledCommand, ["name", "data", "execute_time"]),
]


@pytest.mark.parametrize(
    ("model", "fields"), MODEL_FIELDS, ids=lambda v: getattr(v, "__name__", "")
)
def test_models_are_attrs_classes_with_the_design_fields(model: type, fields: list[str]) -> None:
    """Each §3 model is an attrs class carrying every field DESIGN.md lists."""
    assert attrs.has(model)
    names = set(attrs.fields_dict(model))
    assert set(fields) <= names, set(fields) - names


def test_workflow_status_members() -> None:
    assert {m.name for m in WorkflowStatus} == {"RUNNABLE", "SUSPENDED", "COMPLETE", "TERMINATED"}


def test_pointer_status_members() -> None:
    assert {m.name for m in PointerStatus} == {
        "PENDING",
        "RUNNING",
        "COMPLETE",
        "SKIPPED",
        "SLEEPING",
        "WAITING_FOR_EVENT",
        "FAILED",
        "COMPENSATED",
        "CANCELLED",
        "PENDING_PREDECESSOR",
    }


def test_error_behavior_constructors() -> None:
    """retry(interval, max_retries=None), suspend(), terminate(), compensate()."""
    behaviors = [
        ErrorBehavior.retry(timedelta(seconds=5)),
        ErrorBehavior.retry(timedelta(seconds=5), max_retries=3),
        ErrorBehavior.retry(timedelta(seconds=5), max_retries=None),
        ErrorBehavior.suspend(),
        ErrorBehavior.terminate(),
        ErrorBehavior.compensate(),
    ]
    assert all(isinstance(b, ErrorBehavior) for b in behaviors)
    assert len({repr(b) for b in behaviors[3:]}) == 3


def test_execution_result_constructors() -> None:
    """next(), outcome, persist, sleep(duration, data), branch(values, data), wait_for_event."""
    results = [
        ExecutionResult.next(),
        ExecutionResult.outcome("x"),
        ExecutionResult.persist({"n": 1}),
        ExecutionResult.sleep(timedelta(seconds=1), {"n": 1}),
        ExecutionResult.branch([1, 2], {"n": 1}),
        ExecutionResult.wait_for_event("ev", "key", datetime.now(UTC)),
    ]
    assert all(isinstance(r, ExecutionResult) for r in results)


def test_lifecycle_event_types_exist() -> None:
    for cls in (
        WorkflowStarted,
        WorkflowCompleted,
        WorkflowTerminated,
        WorkflowSuspended,
        WorkflowResumed,
        WorkflowError,
        StepStarted,
        StepCompleted,
    ):
        assert isinstance(cls, type)


def test_build_returns_a_workflow_definition() -> None:
    definition = (
        WorkflowBuilder(Order)
        .start_with(lambda ctx: None)
        .name("only")
        .id("the-only")
        .build("built", 7)
    )
    assert isinstance(definition, WorkflowDefinition)
    assert definition.id == "built"
    assert definition.version == 7
    assert definition.data_type is Order
    steps = [s for s in definition.steps if s.name == "only"]
    assert len(steps) == 1
    assert steps[0].external_id == "the-only"


# --------------------------------------------------------------------------- §3 data round trips

RICH = Rich(
    amount=Decimal("12.345678901234567890"),
    when=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
    day=date(2024, 2, 29),
    span=timedelta(days=1, seconds=3, microseconds=7),
    uid=UUID("12345678-1234-5678-1234-567812345678"),
    color=Color.GREEN,
    address=Address(street="Main 1", zip_code="01234"),
    tags=["a", "b"],
    scores={"x": 1, "y": 2},
    amounts=[Decimal("0.1"), Decimal("0.2")],
)


async def test_attrs_data_round_trips_exactly(store: str) -> None:
    """Decimal, datetime, date, timedelta, UUID, Enum, nested attrs, lists, dicts: equal."""
    seen: list[Any] = []
    definition = (
        WorkflowBuilder(Rich)
        .start_with(lambda ctx: seen.append(ctx.workflow.data))
        .build("rich", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("rich", 1, RICH)
        done = await host.wait_for_workflow(wid, timeout=10)
        got = await host.get_workflow(wid)
    assert done.status is WorkflowStatus.COMPLETE
    for data in (got.data, seen[0]):
        assert isinstance(data, Rich)
        assert data == RICH
        assert isinstance(data.amount, Decimal)
        assert data.amount == Decimal("12.345678901234567890")
        assert isinstance(data.address, Address)
        assert data.color is Color.GREEN
        assert isinstance(data.uid, UUID)
        assert isinstance(data.span, timedelta)
        assert type(data.day) is date
        assert isinstance(data.when, datetime)
        assert all(isinstance(a, Decimal) for a in data.amounts)


async def test_dict_data_round_trips_exactly(store: str) -> None:
    data = {
        "amount": Decimal("1.10"),
        "when": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "day": date(2023, 12, 31),
        "span": timedelta(minutes=90),
        "uid": UUID("87654321-4321-8765-4321-876543218765"),
        "color": Color.RED,
        "address": Address(street="x", zip_code="y"),
        "list": [1, "two", Decimal("3.0")],
        "nested": {"a": {"b": [date(2020, 1, 1)]}},
        "naive": datetime(2024, 1, 2, 3, 4, 5),
    }
    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("dict-rt", 1)
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("dict-rt", 1, dict(data))
        await host.wait_for_workflow(wid, timeout=10)
        got = await host.get_workflow(wid)
    assert got.data == data
    assert isinstance(got.data["amount"], Decimal)
    assert str(got.data["amount"]) == "1.10"
    assert got.data["color"] is Color.RED
    assert isinstance(got.data["address"], Address)


async def test_unstorable_attrs_data_is_rejected_naming_the_field(store: str) -> None:
    definition = WorkflowBuilder(Holder).start_with(lambda ctx: None).build("holder", 1)
    async with open_host(store, definition) as host:
        with pytest.raises(WfeError, match="payload"):
            await host.start_workflow("holder", 1, Holder(name="n", payload=object()))


async def test_unstorable_dict_data_is_rejected_naming_the_key(store: str) -> None:
    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("holder-d", 1)
    async with open_host(store, definition) as host:
        with pytest.raises(WfeError, match="offending"):
            await host.start_workflow("holder-d", 1, {"fine": 1, "offending": threading.Lock()})
