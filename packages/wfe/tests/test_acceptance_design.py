"""Black-box acceptance tests of DESIGN.md §3-§6, written from the design text alone.

Every public name of §3 (models), §4 (the builder) and §5 (the host) is used exactly as
DESIGN.md spells it, and every §6 sentence a test can observe is checked on a running
host. Stores: the in-memory store and ``sqlite:///<tmp>``.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import attrs
import pytest
import trio
import trio.testing

from wfe.core import (
    ErrorBehavior,
    Event,
    EventSubscription,
    ExecutionError,
    ExecutionPointer,
    ExecutionResult,
    PointerStatus,
    ScheduledCommand,
    StepBody,
    StepCompleted,
    StepExecutionContext,
    StepStarted,
    TrioClock,
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
from wfe.core.protocols import Page, SearchFilters
from wfe.host import BlockingWorkflowHost, WorkflowHost, WorkflowHostBuilder

# The data classes live in a sibling module so that they are importable by name
# (pytest's importlib mode does not put tests/ on sys.path).
sys.path.insert(0, str(Path(__file__).parent))
import trio.lowlevel
from acceptance_models import Address, Color, Counter, Holder, Order, Rich

# --------------------------------------------------------------------------- helpers


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store URL: the in-memory store and a SQLite file."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'acceptance.db'}"
    return "memory://"


@contextlib.asynccontextmanager
async def open_host(
    store_url: str,
    *definitions: Any,
    configure: Callable[[WorkflowHostBuilder], Any] | None = None,
) -> AsyncIterator[WorkflowHost]:
    """A host on ``store_url`` with ``definitions`` registered (short poll interval)."""
    builder = (
        WorkflowHostBuilder().persistence(store_url).poll_interval(timedelta(milliseconds=200))
    )
    for d in definitions:
        builder.register(d)
    if configure is not None:
        configure(builder)
    async with builder.build() as host:
        yield host


def recorder(log: list[str], name: str) -> Callable[[StepExecutionContext], None]:
    """A sync function step appending ``name`` to ``log``."""

    def step(ctx: StepExecutionContext) -> None:
        log.append(name)

    return step


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll ``check`` until it holds, failing after ``timeout`` seconds."""
    with trio.fail_after(timeout):
        while not await check():
            await trio.sleep(0.02)


async def until_waiting(host: WorkflowHost, wid: str, count: int = 1) -> WorkflowInstance:
    """Wait until ``count`` pointers of ``wid`` wait for an event; return the instance."""
    found: list[WorkflowInstance] = []

    async def check() -> bool:
        inst = await host.get_workflow(wid)
        found[:] = [inst]
        waiting = [
            p for p in inst.execution_pointers if p.status is PointerStatus.WAITING_FOR_EVENT
        ]
        return len(waiting) >= count

    await eventually(check)
    return found[0]


@contextlib.asynccontextmanager
async def collecting(host: WorkflowHost) -> AsyncIterator[list[Any]]:
    """Collect the host's lifecycle events into a list while the block runs."""
    seen: list[Any] = []

    async def consume() -> None:
        async for event in host.lifecycle_events():
            seen.append(event)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        await trio.lowlevel.checkpoint()
        yield seen
        await trio.sleep(0.2)
        nursery.cancel_scope.cancel()


def types_for(seen: list[Any], wid: str) -> list[type]:
    return [type(e) for e in seen if e.workflow_instance_id == wid]


def virtual_host(*definitions: Any, store_url: str = "memory://") -> Any:
    builder = (
        WorkflowHostBuilder()
        .persistence(store_url)
        .clock(TrioClock())
        .poll_interval(timedelta(minutes=5))
    )
    for d in definitions:
        builder.register(d)
    return builder.build()


class Boom(Exception):
    """A step failure."""


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


# --------------------------------------------------------------------------- §4 exact example


class Charge(StepBody):
    amount: float = 0.0

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult:
        return ExecutionResult.next()


def design_definition() -> WorkflowDefinition:
    """DESIGN.md §4's code example, verbatim."""
    return (
        WorkflowBuilder(Order)
        .start_with(Charge)
        .name("Charge")
        .input("amount", lambda data, ctx: data.total)
        .on_error(ErrorBehavior.retry(timedelta(seconds=5), max_retries=3))
        .wait_for("approved", lambda data, ctx: ctx.workflow.id)
        .output("approved", lambda step: step.event_data)
        .then(lambda ctx: print("done"))
        .end_workflow()
        .build("order", 1)
    )


async def test_design_section_4_and_5_example_runs(tmp_path: Path) -> None:
    """§4's definition on §5's host (SQLite store), with the "approved" event published."""
    definition = design_definition()
    async with (
        WorkflowHostBuilder()
        .persistence(f"sqlite:///{tmp_path / 'wfe.db'}")
        .register(definition)
        .build()
    ) as host:
        wid = await host.start_workflow("order", 1, Order(total=12.5), reference="A-17")
        assert isinstance(wid, str)
        await until_waiting(host, wid)
        event_id = await host.publish_event("approved", wid, True)
        assert isinstance(event_id, str)
        instance = await host.wait_for_workflow(wid, timeout=30)
    assert instance.status is WorkflowStatus.COMPLETE
    assert isinstance(instance.data, Order)
    assert instance.data.approved is True
    assert instance.data.total == 12.5
    assert instance.reference == "A-17"
    assert instance.complete_time is not None


async def test_design_example_event_published_before_the_wait_is_not_lost(store: str) -> None:
    """§5's sequence as written: publish right after start, without waiting for the wait."""
    async with open_host(store, design_definition()) as host:
        wid = await host.start_workflow("order", 1, Order(total=12.5), reference="A-17")
        await host.publish_event("approved", wid, True)
        instance = await host.wait_for_workflow(wid, timeout=30)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.approved is True


# --------------------------------------------------------------------------- §4 step kinds


class Recording(StepBody):
    """A StepBody subclass recording its input attribute."""

    amount: float = 0.0
    log: list[Any] = []  # noqa: RUF012 - class-level sink shared by the test

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult:
        Recording.log.append(self.amount)
        return ExecutionResult.next()


async def test_step_kinds_stepbody_sync_async_and_then_fn(store: str) -> None:
    """start_with/then take a StepBody subclass or a sync/async function; then_fn is explicit."""
    log: list[str] = []
    Recording.log = []

    def sync_none(ctx: StepExecutionContext) -> None:
        log.append("sync-none")

    def sync_result(ctx: StepExecutionContext) -> ExecutionResult:
        log.append("sync-result")
        return ExecutionResult.next()

    async def async_none(ctx: StepExecutionContext) -> None:
        await trio.lowlevel.checkpoint()
        log.append("async-none")

    async def async_result(ctx: StepExecutionContext) -> ExecutionResult:
        await trio.lowlevel.checkpoint()
        log.append("async-result")
        return ExecutionResult.next()

    definition = (
        WorkflowBuilder(dict)
        .start_with(sync_none)
        .then(Recording)
        .input("amount", lambda data, ctx: data["amount"])
        .then(sync_result)
        .then(async_none)
        .then(async_result)
        .then_fn(recorder(log, "then_fn"))
        .then_fn(async_none)
        .build("kinds", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("kinds", 1, {"amount": 4.5})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert log == [
        "sync-none",
        "sync-result",
        "async-none",
        "async-result",
        "then_fn",
        "async-none",
    ]
    assert Recording.log == [4.5]


async def test_start_with_a_stepbody_instance_of_a_subclass_named(store: str) -> None:
    """name(s) names the step: the pointer and StepStarted carry it."""
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .name("First")
        .then(lambda ctx: None)
        .name("Second")
        .build("named", 1)
    )
    async with open_host(store, definition) as host, collecting(host) as seen:
        wid = await host.start_workflow("named", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
        await eventually(
            lambda: _true(any(isinstance(e, WorkflowCompleted) for e in seen)), timeout=5
        )
    assert [p.step_name for p in inst.execution_pointers] == ["First", "Second"]
    started = [
        e.step_name for e in seen if isinstance(e, StepStarted) and e.workflow_instance_id == wid
    ]
    assert started == ["First", "Second"]


async def _true(value: bool) -> bool:
    return value


class Resumable(StepBody):
    """persist(data) then next: the second run sees ctx.persistence_data."""

    seen: list[Any] = []  # noqa: RUF012

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult:
        Resumable.seen.append(ctx.persistence_data)
        if ctx.persistence_data is None:
            return ExecutionResult.persist({"stage": 1})
        if ctx.persistence_data == {"stage": 1}:
            return ExecutionResult.sleep(timedelta(milliseconds=100), {"stage": 2})
        return ExecutionResult.next()


async def test_persist_and_sleep_results_feed_persistence_data(store: str) -> None:
    Resumable.seen = []
    definition = WorkflowBuilder(dict).start_with(Resumable).build("resumable", 1)
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("resumable", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert Resumable.seen == [None, {"stage": 1}, {"stage": 2}]


class Waiter(StepBody):
    """wait_for_event from a StepBody; the re-run sees the event on ctx.pointer."""

    got: list[Any] = []  # noqa: RUF012

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult:
        if not ctx.pointer.event_published:
            return ExecutionResult.wait_for_event("body-ev", "k1", datetime.now(UTC))
        Waiter.got.append(ctx.pointer.event_data)
        return ExecutionResult.next()


async def test_wait_for_event_result_from_a_step_body(store: str) -> None:
    Waiter.got = []
    definition = WorkflowBuilder(dict).start_with(Waiter).build("body-wait", 1)
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("body-wait", 1, {})
        await until_waiting(host, wid)
        await host.publish_event("body-ev", "k1", {"v": 1})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert Waiter.got == [{"v": 1}]


async def test_outcome_result_selects_when_branches(store: str) -> None:
    """Several when(value) form one switch on the step's outcome; every matching one runs."""
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: ExecutionResult.outcome(2))
        .when(1)
        .do(lambda b: b.start_with(recorder(log, "one")))
        .when(2)
        .do(lambda b: b.start_with(recorder(log, "two-a")))
        .when(2)
        .do(lambda b: b.start_with(recorder(log, "two-b")))
        .then(recorder(log, "after"))
        .build("when", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("when", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert sorted(log[:2]) == ["two-a", "two-b"]
    assert log[2:] == ["after"]


# --------------------------------------------------------------------------- §4 inputs/outputs


class Doubler(StepBody):
    value: int = 0
    result: int = 0

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult:
        self.result = self.value * 2
        return ExecutionResult.next()


@pytest.mark.parametrize("typed", [True, False], ids=["attrs", "dict"])
async def test_input_and_both_output_forms(store: str, typed: bool) -> None:
    """input(step_attr, fn(data, ctx)); output(data_attr, fn(step)); output(fn(step, data))."""

    def set_text(step: Any, data: Any) -> None:
        if typed:
            data.text = f"r={step.result}"
        else:
            data["text"] = f"r={step.result}"

    definition = (
        WorkflowBuilder(Counter if typed else dict)
        .start_with(Doubler)
        .input("value", lambda data, ctx: (data.n if typed else data["n"]) + 1)
        .output("value", lambda step: step.result)
        .output(set_text)
        .build("io", 1)
    )
    async with open_host(store, definition) as host:
        start = Counter(n=20) if typed else {"n": 20}
        wid = await host.start_workflow("io", 1, start)
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    if typed:
        assert isinstance(inst.data, Counter)
        assert (inst.data.value, inst.data.text) == (42, "r=42")
    else:
        assert inst.data["value"] == 42
        assert inst.data["text"] == "r=42"


async def test_mutating_ctx_workflow_data_is_saved(store: str) -> None:
    def bump(ctx: StepExecutionContext) -> None:
        ctx.workflow.data.n += 1
        ctx.workflow.data.seen.append(ctx.workflow.id)

    definition = WorkflowBuilder(Counter).start_with(bump).then(bump).build("mutate", 1)
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("mutate", 1, Counter())
        await host.wait_for_workflow(wid, timeout=10)
        inst = await host.get_workflow(wid)
    assert inst.data.n == 2
    assert inst.data.seen == [wid, wid]


# --------------------------------------------------------------------------- §4 control flow


async def test_attach_goes_to_the_step_with_that_external_id(store: str) -> None:
    """attach(external_id): after "c" the flow also goes to step "e"."""
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(recorder(log, "a"))
        .then(recorder(log, "c"))
        .attach("e")
        .then(recorder(log, "d"))
        .then(recorder(log, "e"))
        .id("e")
        .build("attach", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("attach", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert log[:2] == ["a", "c"]
    assert log.count("e") == 2
    assert log.count("d") == 1


@pytest.mark.parametrize("flag", [True, False])
async def test_if_do(store: str, flag: bool) -> None:
    log: list[str] = []
    definition = (
        WorkflowBuilder(Counter)
        .start_with(recorder(log, "start"))
        .if_do(lambda data, *_: data.flag, lambda b: b.start_with(recorder(log, "inside")))
        .then(recorder(log, "after"))
        .build("if", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("if", 1, Counter(flag=flag))
        await host.wait_for_workflow(wid, timeout=10)
    assert log == (["start", "inside", "after"] if flag else ["start", "after"])


async def test_while_do_loops_until_false(store: str) -> None:
    def inc(ctx: StepExecutionContext) -> None:
        ctx.workflow.data.n += 1

    definition = (
        WorkflowBuilder(Counter)
        .start_with(lambda ctx: None)
        .while_do(lambda data, *_: data.n < 3, lambda b: b.start_with(inc))
        .build("while", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("while", 1, Counter())
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert inst.data.n == 3


@pytest.mark.parametrize("parallel", [True, False])
async def test_for_each_exposes_ctx_item(store: str, parallel: bool) -> None:
    seen: list[Any] = []
    definition = (
        WorkflowBuilder(Counter)
        .start_with(lambda ctx: None)
        .for_each(
            lambda data, *_: data.items,
            lambda b: b.start_with(lambda ctx: seen.append(ctx.item)),
            parallel=parallel,
        )
        .then(lambda ctx: seen.append("after"))
        .build("foreach", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("foreach", 1, Counter(items=[3, 1, 2]))
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    if parallel:
        assert sorted(seen[:3]) == [1, 2, 3]
    else:
        assert seen[:3] == [3, 1, 2]
    assert seen[3:] == ["after"]


async def test_parallel_for_each_items_run_concurrently(store: str) -> None:
    """§6 Parallel is parallel: for-each items meet at a rendezvous only concurrency can reach."""
    arrived = 0
    all_here = trio.Event()

    async def meet(ctx: StepExecutionContext) -> None:
        nonlocal arrived
        arrived += 1
        if arrived == 3:
            all_here.set()
        with trio.fail_after(5):
            await all_here.wait()

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .for_each(lambda data, *_: data["items"], lambda b: b.start_with(meet), parallel=True)
        .build("pfe", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("pfe", 1, {"items": [1, 2, 3]})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE


async def test_parallel_branches_run_concurrently(store: str) -> None:
    """parallel().do(...).do(...).join(): branches rendezvous; the join waits for both."""
    log: list[str] = []
    a_ready, b_ready = trio.Event(), trio.Event()

    async def branch_a(ctx: StepExecutionContext) -> None:
        a_ready.set()
        with trio.fail_after(5):
            await b_ready.wait()
        log.append("a")

    async def branch_b(ctx: StepExecutionContext) -> None:
        b_ready.set()
        with trio.fail_after(5):
            await a_ready.wait()
        log.append("b")

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .parallel()
        .do(lambda b: b.start_with(branch_a))
        .do(lambda b: b.then(branch_b))
        .join()
        .then(recorder(log, "joined"))
        .build("par", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("par", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert sorted(log[:2]) == ["a", "b"]
    assert log[2:] == ["joined"]


@pytest.mark.parametrize(("choice", "expected"), [("x", ["X"]), ("y", ["Y", "Y2"])])
async def test_decide_branches(store: str, choice: str, expected: list[str]) -> None:
    """decide(fn(data, ctx)).branch(value, branch), branches from builder.create_branch()."""
    log: list[str] = []
    builder = WorkflowBuilder(dict)
    branch_x = builder.create_branch()
    branch_x.start_with(recorder(log, "X"))
    branch_y = builder.create_branch()
    branch_y.start_with(recorder(log, "Y")).then(recorder(log, "Y2"))
    definition = (
        builder.start_with(lambda ctx: None)
        .decide(lambda data, ctx: data["choice"])
        .branch("x", branch_x)
        .branch("y", branch_y)
        .build("decide", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("decide", 1, {"choice": choice})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert log == expected


def test_decide_branch_accepts_a_chained_create_branch() -> None:
    """The workflow-core idiom: branch = builder.create_branch().start_with(...).then(...)."""
    builder = WorkflowBuilder(dict)
    branch = builder.create_branch().start_with(lambda ctx: None).then(lambda ctx: None)
    definition = (
        builder.start_with(lambda ctx: None)
        .decide(lambda data, ctx: 1)
        .branch(1, branch)  # type: ignore[arg-type]
        .build("decide-chained", 1)
    )
    assert isinstance(definition, WorkflowDefinition)


@pytest.mark.parametrize("as_fn", [False, True], ids=["duration", "fn"])
async def test_delay(store: str, as_fn: bool) -> None:
    stamps: list[float] = []
    duration = timedelta(milliseconds=300)
    delay_arg: Any = (lambda data, ctx: duration) if as_fn else duration
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: stamps.append(time.monotonic()))
        .delay(delay_arg)
        .then(lambda ctx: stamps.append(time.monotonic()))
        .build("delay", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("delay", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert stamps[1] - stamps[0] >= 0.29


async def test_recur_until(autojump_clock: trio.testing.MockClock) -> None:
    """recur(interval, until).do(...) repeats the block every interval until `until` holds."""
    runs: list[float] = []

    def tick(ctx: StepExecutionContext) -> None:
        runs.append(trio.current_time())
        ctx.workflow.data["n"] += 1

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .recur(timedelta(hours=1), lambda data, *_: data["n"] >= 3)
        .do(lambda b: b.start_with(tick))
        .build("recur", 1)
    )
    async with virtual_host(definition) as host:
        wid = await host.start_workflow("recur", 1, {"n": 0})
        inst = await host.wait_for_workflow(wid, timeout=timedelta(days=1))
    assert inst.status is WorkflowStatus.COMPLETE
    assert len(runs) == 3
    assert all(b - a >= 3600 for a, b in itertools.pairwise(runs))


async def test_schedule_runs_block_after_interval(autojump_clock: trio.testing.MockClock) -> None:
    ran: list[float] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .schedule(timedelta(hours=2))
        .do(lambda b: b.start_with(lambda ctx: ran.append(trio.current_time())))
        .build("schedule", 1)
    )
    async with virtual_host(definition) as host:
        wid = await host.start_workflow("schedule", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=timedelta(days=1))
    assert inst.status is WorkflowStatus.COMPLETE
    assert len(ran) == 1
    assert ran[0] >= 7200


async def test_sub_workflow_exposes_child_id_status_data(store: str) -> None:
    def child_step(ctx: StepExecutionContext) -> None:
        ctx.workflow.data["doubled"] = ctx.workflow.data["n"] * 2

    child = WorkflowBuilder(dict).start_with(child_step).build("child", 1)
    other = WorkflowBuilder(dict).start_with(child_step).build("child", 2)

    def record(step: Any, data: Any) -> None:
        data["child_id"] = step.child_id
        data["child_status"] = step.child_status
        data["child_data"] = step.child_data

    parent = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .sub_workflow("child", version=1, data=lambda data, ctx: {"n": data["n"]})
        .output(record)
        .then(lambda ctx: None)
        .build("parent", 1)
    )
    async with open_host(store, child, other, parent) as host:
        wid = await host.start_workflow("parent", 1, {"n": 21})
        inst = await host.wait_for_workflow(wid, timeout=10)
        assert inst.status is WorkflowStatus.COMPLETE
        child_inst = await host.get_workflow(inst.data["child_id"])
    assert child_inst.definition_id == "child"
    assert child_inst.version == 1
    assert child_inst.status is WorkflowStatus.COMPLETE
    assert inst.data["child_status"] == WorkflowStatus.COMPLETE
    assert inst.data["child_data"]["doubled"] == 42


async def test_sub_workflow_without_version_uses_latest(store: str) -> None:
    v1 = WorkflowBuilder(dict).start_with(lambda ctx: None).build("kid", 1)
    v2 = WorkflowBuilder(dict).start_with(lambda ctx: None).build("kid", 2)
    parent = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .sub_workflow("kid", data=lambda data, ctx: {})
        .output("child_id", lambda step: step.child_id)
        .build("parent-latest", 1)
    )
    async with open_host(store, v1, v2, parent) as host:
        wid = await host.start_workflow("parent-latest", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
        kid = await host.get_workflow(inst.data["child_id"])
    assert kid.version == 2


async def test_sub_workflow_finishes_on_terminated_child(store: str) -> None:
    """§6: a sub-workflow step finishes on any terminal status of the child, with its data."""
    child_ids: list[str] = []

    def note(ctx: StepExecutionContext) -> None:
        child_ids.append(ctx.workflow.id)
        ctx.workflow.data["noted"] = True

    child = WorkflowBuilder(dict).start_with(note).wait_for("never", "k").build("tchild", 1)
    parent = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .sub_workflow("tchild", data=lambda data, ctx: {})
        .output("child_status", lambda step: step.child_status)
        .output("child_data", lambda step: step.child_data)
        .then(lambda ctx: None)
        .build("tparent", 1)
    )
    async with open_host(store, child, parent) as host:
        wid = await host.start_workflow("tparent", 1, {})
        await eventually(lambda: _true(bool(child_ids)))
        await until_waiting(host, child_ids[0])
        assert await host.terminate_workflow(child_ids[0]) is True
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert inst.data["child_status"] == WorkflowStatus.TERMINATED
    assert inst.data["child_data"] == {"noted": True}


async def test_end_workflow_completes_and_publishes_workflow_completed(store: str) -> None:
    """§6: end_workflow() completes the workflow (nothing later runs) + WorkflowCompleted."""
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(recorder(log, "a"))
        .if_do(lambda data, *_: True, lambda b: b.start_with(recorder(log, "b")).end_workflow())
        .then(recorder(log, "never"))
        .build("end", 1)
    )
    async with open_host(store, definition) as host, collecting(host) as seen:
        wid = await host.start_workflow("end", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
        await eventually(lambda: _true(WorkflowCompleted in types_for(seen, wid)))
    assert inst.status is WorkflowStatus.COMPLETE
    assert log == ["a", "b"]
    assert types_for(seen, wid).count(WorkflowCompleted) == 1


async def test_inside_do_the_first_verb_may_be_then(store: str) -> None:
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .if_do(lambda data, *_: True, lambda b: b.then(recorder(log, "x")).then(recorder(log, "y")))
        .build("first-then", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("first-then", 1, {})
        await host.wait_for_workflow(wid, timeout=10)
    assert log == ["x", "y"]


async def test_ctx_exposes_workflow_pointer_item(store: str) -> None:
    seen: dict[str, Any] = {}

    def look(ctx: StepExecutionContext) -> None:
        seen["workflow_id"] = ctx.workflow.id
        seen["data"] = ctx.workflow.data
        seen["pointer"] = ctx.pointer
        seen["item"] = ctx.item
        seen["persistence_data"] = ctx.persistence_data

    definition = WorkflowBuilder(dict).start_with(look).build("ctx", 1)
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("ctx", 1, {"a": 1})
        await host.wait_for_workflow(wid, timeout=10)
    assert seen["workflow_id"] == wid
    assert seen["data"] == {"a": 1}
    assert isinstance(seen["pointer"], ExecutionPointer)
    assert seen["item"] is None
    assert seen["persistence_data"] is None


# ---------------------------------------------------------------- §4/§6 wait_for and events


def wait_def(
    def_id: str,
    key: Any = "k",
    effective_date: Any = None,
    loops: int = 1,
) -> WorkflowDefinition:
    """Wait ``loops`` times for event "ev"/key, appending each event_data to data["got"]."""

    def keep(step: Any, data: Any) -> None:
        data["got"].append(step.event_data)

    return (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .while_do(
            lambda data, *_: len(data["got"]) < loops,
            lambda b: (
                b.start_with(lambda ctx: None)
                .wait_for("ev", key, effective_date=effective_date)
                .output(keep)
            ),
        )
        .build(def_id, 1)
    )


@pytest.mark.parametrize("key_form", ["str", "fn"])
async def test_wait_for_key_as_string_or_function(store: str, key_form: str) -> None:
    key: Any = "k" if key_form == "str" else (lambda data, ctx: data["key"])
    definition = wait_def("wk", key=key)
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("wk", 1, {"got": [], "key": "k"})
        await until_waiting(host, wid)
        await host.publish_event("ev", "other-key", "wrong")
        await host.publish_event("ev", "k", "right")
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.data["got"] == ["right"]


async def test_event_published_before_the_workflow_starts_is_delivered(store: str) -> None:
    async with open_host(store, wait_def("early")) as host:
        await host.publish_event("ev", "k", "early-bird")
        wid = await host.start_workflow("early", 1, {"got": []})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.data["got"] == ["early-bird"]


async def test_subscription_gets_the_earliest_eligible_event_and_no_replay(store: str) -> None:
    """Two pending events, a loop of waits: earliest first, then the second, none twice."""
    async with open_host(store, wait_def("loop3", loops=3)) as host:
        await host.publish_event("ev", "k", "first")
        await trio.sleep(0.01)
        await host.publish_event("ev", "k", "second")
        wid = await host.start_workflow("loop3", 1, {"got": []})
        inst = await until_waiting(host, wid)
        assert inst.data["got"] == ["first", "second"]
        await trio.sleep(0.3)
        assert (await host.get_workflow(wid)).status is WorkflowStatus.RUNNABLE
        await host.publish_event("ev", "k", "third")
        done = await host.wait_for_workflow(wid, timeout=10)
    assert done.data["got"] == ["first", "second", "third"]


async def test_earliest_by_effective_date_not_publish_order(store: str) -> None:
    now = datetime.now(UTC)
    async with open_host(store, wait_def("earliest")) as host:
        await host.publish_event("ev", "k", "later", effective_date=now - timedelta(minutes=1))
        await host.publish_event("ev", "k", "earlier", effective_date=now - timedelta(minutes=5))
        wid = await host.start_workflow("earliest", 1, {"got": []})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.data["got"] == ["earlier"]


async def test_loop_around_wait_for_does_not_reconsume(store: str) -> None:
    """Unlike the ancestors: one event, a loop of two waits — the second wait keeps waiting."""
    async with open_host(store, wait_def("noreplay", loops=2)) as host:
        wid = await host.start_workflow("noreplay", 1, {"got": []})
        await until_waiting(host, wid)
        await host.publish_event("ev", "k", 1)
        await eventually(lambda: _got_len(host, wid, 1))
        await until_waiting(host, wid)
        await trio.sleep(0.5)
        inst = await host.get_workflow(wid)
        assert inst.status is WorkflowStatus.RUNNABLE
        assert inst.data["got"] == [1]
        await host.publish_event("ev", "k", 2)
        done = await host.wait_for_workflow(wid, timeout=10)
    assert done.data["got"] == [1, 2]


async def _got_len(host: WorkflowHost, wid: str, n: int) -> bool:
    return len((await host.get_workflow(wid)).data["got"]) >= n


async def test_event_goes_to_every_matching_waiting_subscription(store: str) -> None:
    async with open_host(store, wait_def("fanout")) as host:
        w1 = await host.start_workflow("fanout", 1, {"got": []})
        w2 = await host.start_workflow("fanout", 1, {"got": []})
        await until_waiting(host, w1)
        await until_waiting(host, w2)
        await host.publish_event("ev", "k", "both")
        i1 = await host.wait_for_workflow(w1, timeout=10)
        i2 = await host.wait_for_workflow(w2, timeout=10)
    assert i1.data["got"] == ["both"]
    assert i2.data["got"] == ["both"]


async def test_wait_without_effective_date_accepts_old_pending_events(store: str) -> None:
    old = datetime(2001, 1, 1, tzinfo=UTC)
    async with open_host(store, wait_def("old")) as host:
        await host.publish_event("ev", "k", "ancient", effective_date=old)
        wid = await host.start_workflow("old", 1, {"got": []})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.data["got"] == ["ancient"]


@pytest.mark.parametrize("form", ["datetime", "fn"])
async def test_wait_with_effective_date_ignores_earlier_events(store: str, form: str) -> None:
    """Only events whose time is at or after the effective date are accepted."""
    cutoff = datetime.now(UTC) - timedelta(hours=1)
    effective: Any = cutoff if form == "datetime" else (lambda data, ctx: cutoff)
    async with open_host(store, wait_def("eff", effective_date=effective)) as host:
        await host.publish_event("ev", "k", "too-old", effective_date=cutoff - timedelta(hours=1))
        wid = await host.start_workflow("eff", 1, {"got": []})
        await until_waiting(host, wid)
        await trio.sleep(0.4)
        assert (await host.get_workflow(wid)).data["got"] == []
        await host.publish_event("ev", "k", "fresh")
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.data["got"] == ["fresh"]


async def test_wait_for_cancel_condition_cancels_and_ignores_later_events(store: str) -> None:
    """§4/§6: wait_for(..., cancel_condition=fn(data)); a cancelled wait ignores later events."""
    log: list[str] = []

    async def stop_later(ctx: StepExecutionContext) -> None:
        await trio.sleep(0.3)
        ctx.workflow.data["stop"] = True

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .parallel()
        .do(
            lambda b: (
                b.start_with(lambda ctx: None)
                .wait_for("cancel-ev", "k", cancel_condition=lambda data: data["stop"])
                .output("event", lambda step: step.event_data)
            )
        )
        .do(lambda b: b.start_with(stop_later))
        .join()
        .then(recorder(log, "after"))
        .build("wcancel", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("wcancel", 1, {"stop": False, "event": None})
        inst = await host.wait_for_workflow(wid, timeout=10)
        assert inst.status is WorkflowStatus.COMPLETE
        assert PointerStatus.CANCELLED in {p.status for p in inst.execution_pointers}
        await host.publish_event("cancel-ev", "k", "late")
        await trio.sleep(0.4)
        after = await host.get_workflow(wid)
    assert after.data["event"] is None
    assert after.status is WorkflowStatus.COMPLETE
    assert log == ["after"]


@pytest.mark.parametrize("proceed", [False, True])
async def test_cancel_condition_verb_with_proceed(store: str, proceed: bool) -> None:
    """cancel_condition(fn(data), proceed=...): step cancelled; proceed says if the flow goes on."""
    log: list[str] = []

    async def stop_later(ctx: StepExecutionContext) -> None:
        await trio.sleep(0.3)
        ctx.workflow.data["stop"] = True

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .parallel()
        .do(
            lambda b: (
                b.start_with(lambda ctx: None)
                .wait_for("never-sent", "k")
                .cancel_condition(lambda data: data["stop"], proceed=proceed)
                .then(recorder(log, "after-wait"))
            )
        )
        .do(lambda b: b.start_with(stop_later))
        .join()
        .build(f"ccond-{proceed}", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow(f"ccond-{proceed}", 1, {"stop": False})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert PointerStatus.CANCELLED in {p.status for p in inst.execution_pointers}
    assert log == (["after-wait"] if proceed else [])


async def test_cancel_condition_true_before_the_step_skips_it(store: str) -> None:
    """Cancel conditions are evaluated before every step: a step already cancelled never runs."""
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: ctx.workflow.data.update(stop=True))
        .then(recorder(log, "cancelled-step"))
        .cancel_condition(lambda data: data["stop"])
        .build("ccond-before", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("ccond-before", 1, {"stop": False})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert log == []


# --------------------------------------------------------------------------- §3/§6 errors


def failing_def(
    def_id: str, fails: int, behavior: ErrorBehavior | None, attempts: list[float]
) -> WorkflowDefinition:
    """A step failing its first ``fails`` runs (``-1``: always)."""

    def flaky(ctx: StepExecutionContext) -> None:
        attempts.append(trio.current_time())
        if fails < 0 or len(attempts) <= fails:
            raise Boom(f"attempt {len(attempts)} failed")

    b = WorkflowBuilder(dict).start_with(flaky).name("Flaky")
    if behavior is not None:
        b = b.on_error(behavior)
    return b.then(lambda ctx: None).build(def_id, 1)


@pytest.mark.parametrize("n", [0, 1, 3])
async def test_retry_max_retries_n_means_n_plus_one_attempts(store: str, n: int) -> None:
    """max_retries=N: N retries after the first failure, then FAILED pointer, SUSPENDED workflow."""
    attempts: list[float] = []
    behavior = ErrorBehavior.retry(timedelta(milliseconds=50), max_retries=n)
    async with (
        open_host(store, failing_def("retry-n", -1, behavior, attempts)) as host,
        collecting(host) as seen,
    ):
        wid = await host.start_workflow("retry-n", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
        await trio.sleep(0.3)
        errors = await host.get_errors(wid)
        await eventually(lambda: _true(WorkflowSuspended in types_for(seen, wid)))
    assert len(attempts) == n + 1
    assert inst.status is WorkflowStatus.SUSPENDED
    flaky = [p for p in inst.execution_pointers if p.step_name == "Flaky"]
    assert flaky[-1].status is PointerStatus.FAILED
    assert len(errors) == n + 1
    assert all(isinstance(e, ExecutionError) for e in errors)
    assert all(e.workflow_id == wid for e in errors)
    assert any("failed" in e.message for e in errors)
    assert types_for(seen, wid).count(WorkflowError) == n + 1


async def test_retry_without_limit_keeps_retrying(autojump_clock: trio.testing.MockClock) -> None:
    """max_retries=None: no limit (here 25 failures, then success)."""
    attempts: list[float] = []
    behavior = ErrorBehavior.retry(timedelta(minutes=10))
    async with virtual_host(failing_def("unlimited", 25, behavior, attempts)) as host:
        wid = await host.start_workflow("unlimited", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=timedelta(days=2))
    assert inst.status is WorkflowStatus.COMPLETE
    assert len(attempts) == 26
    assert all(b - a >= 600 for a, b in itertools.pairwise(attempts))


async def test_default_error_behavior_retries_every_60s_three_times(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """§6: the default behaviour retries every 60 s, 3 times (4 attempts), then suspends."""
    attempts: list[float] = []
    async with virtual_host(failing_def("default-err", -1, None, attempts)) as host:
        wid = await host.start_workflow("default-err", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=timedelta(hours=1))
    assert inst.status is WorkflowStatus.SUSPENDED
    assert len(attempts) == 4
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert all(60 <= g < 120 for g in gaps), gaps


async def test_exhausted_workflow_can_be_resumed_after_a_fix(store: str) -> None:
    attempts: list[float] = []
    broken = {"yes": True}

    def flaky(ctx: StepExecutionContext) -> None:
        attempts.append(0)
        if broken["yes"]:
            raise Boom("still broken")

    definition = (
        WorkflowBuilder(dict)
        .start_with(flaky)
        .on_error(ErrorBehavior.retry(timedelta(milliseconds=20), max_retries=1))
        .build("fixme", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("fixme", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
        assert inst.status is WorkflowStatus.SUSPENDED
        broken["yes"] = False
        assert await host.resume_workflow(wid) is True
        done = await host.wait_for_workflow(wid, timeout=10)
    assert done.status is WorkflowStatus.COMPLETE
    assert len(attempts) == 3


async def test_suspend_behavior(store: str) -> None:
    attempts: list[float] = []
    async with open_host(store, failing_def("susp", 1, ErrorBehavior.suspend(), attempts)) as host:
        wid = await host.start_workflow("susp", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
        assert inst.status is WorkflowStatus.SUSPENDED
        assert len(attempts) == 1
        assert await host.resume_workflow(wid) is True
        done = await host.wait_for_workflow(wid, timeout=10)
    assert done.status is WorkflowStatus.COMPLETE
    assert len(attempts) == 2


async def test_terminate_behavior(store: str) -> None:
    attempts: list[float] = []
    async with (
        open_host(store, failing_def("term", -1, ErrorBehavior.terminate(), attempts)) as host,
        collecting(host) as seen,
    ):
        wid = await host.start_workflow("term", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
        await eventually(lambda: _true(WorkflowTerminated in types_for(seen, wid)))
    assert inst.status is WorkflowStatus.TERMINATED
    assert len(attempts) == 1
    assert WorkflowError in types_for(seen, wid)


async def test_definition_default_error_behavior_is_used(store: str) -> None:
    """A definition's default_error_behavior applies to steps without their own."""
    attempts: list[float] = []
    definition = failing_def("defdefault", -1, None, attempts)
    definition = attrs.evolve(definition, default_error_behavior=ErrorBehavior.terminate())
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("defdefault", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.TERMINATED
    assert len(attempts) == 1


# --------------------------------------------------------------------------- §6 compensation


def failing_step(ctx: StepExecutionContext) -> None:
    raise Boom("saga step failed")


async def test_saga_compensates_in_reverse_completion_order(store: str) -> None:
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .saga(
            lambda b: (
                b.start_with(recorder(log, "do1"))
                .compensate_with(recorder(log, "undo1"))
                .then(recorder(log, "do2"))
                .compensate_with(recorder(log, "undo2"))
                .then(recorder(log, "do3"))
                .compensate_with(recorder(log, "undo3"))
                .then(failing_step)
            )
        )
        .build("saga", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("saga", 1, {})
        await host.wait_for_workflow(wid, timeout=10)
        inst = await host.get_workflow(wid)
    assert log == ["do1", "do2", "do3", "undo3", "undo2", "undo1"]
    assert PointerStatus.COMPENSATED in {p.status for p in inst.execution_pointers}


async def test_saga_compensation_order_follows_completion_not_definition(store: str) -> None:
    """Parallel branches in a saga: the branch that completed last is compensated first."""
    log: list[str] = []

    async def slow(ctx: StepExecutionContext) -> None:
        await trio.sleep(0.3)
        log.append("slow")

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .saga(
            lambda b: (
                b.start_with(lambda ctx: None)
                .parallel()
                .do(lambda p: p.start_with(slow).compensate_with(recorder(log, "undo-slow")))
                .do(
                    lambda p: p.start_with(recorder(log, "fast")).compensate_with(
                        recorder(log, "undo-fast")
                    )
                )
                .join()
                .then(failing_step)
            )
        )
        .build("saga-par", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("saga-par", 1, {})
        await host.wait_for_workflow(wid, timeout=10)
    assert log == ["fast", "slow", "undo-slow", "undo-fast"]


async def test_saga_without_its_own_compensation_ends_the_flow(store: str) -> None:
    """As in workflow-core, the flow continues after a compensated saga only when the saga
    has its own compensate_with; without it the compensations run and the workflow ends
    (COMPLETE, with the failure recorded as an error)."""
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .saga(
            lambda b: (
                b.start_with(recorder(log, "do"))
                .compensate_with(recorder(log, "undo"))
                .then(failing_step)
            )
        )
        .then(recorder(log, "after-saga"))
        .build("saga-after", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("saga-after", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
        errors = await host.get_errors(wid)
    assert inst.status is WorkflowStatus.COMPLETE
    assert log == ["do", "undo"]
    assert len(errors) == 1


async def test_compensate_with_sequence_and_compensate_behavior(store: str) -> None:
    """compensate_with_sequence runs a sequence; ErrorBehavior.compensate() starts it."""
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(failing_step)
        .on_error(ErrorBehavior.compensate())
        .compensate_with_sequence(
            lambda b: b.start_with(recorder(log, "c1")).then(recorder(log, "c2"))
        )
        .build("cseq", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("cseq", 1, {})
        await host.wait_for_workflow(wid, timeout=10)
    assert log == ["c1", "c2"]


# --------------------------------------------------------------------------- naive datetimes

# Naive datetimes are read as local time (as datetime.now() gives them) and work.


async def test_publish_event_with_a_naive_effective_date() -> None:
    async with open_host("memory://", wait_def("naive-pub")) as host:
        wid = await host.start_workflow("naive-pub", 1, {"got": []})
        await until_waiting(host, wid)
        try:
            await host.publish_event("ev", "k", "naive", effective_date=datetime.now())
        except WfeError:
            return  # a clear rejection is acceptable
        inst = await host.wait_for_workflow(wid, timeout=3)
    assert inst.data["got"] == ["naive"]


async def test_wait_for_with_a_naive_effective_date() -> None:
    cutoff = datetime.now() - timedelta(hours=1)
    async with open_host("memory://", wait_def("naive-wait", effective_date=cutoff)) as host:
        wid = await host.start_workflow("naive-wait", 1, {"got": []})
        await until_waiting(host, wid)
        await host.publish_event("ev", "k", "fresh")
        inst = await host.wait_for_workflow(wid, timeout=3)
    assert inst.data["got"] == ["fresh"]


class NaiveWaiter(StepBody):
    async def run(self, ctx: StepExecutionContext) -> ExecutionResult:
        if not ctx.pointer.event_published:
            return ExecutionResult.wait_for_event("naive-ev", "k", datetime.now())
        return ExecutionResult.next()


async def test_wait_for_event_result_with_a_naive_as_of() -> None:
    definition = WorkflowBuilder(dict).start_with(NaiveWaiter).build("naive-body", 1)
    async with open_host("memory://", definition) as host:
        wid = await host.start_workflow("naive-body", 1, {})
        await until_waiting(host, wid)
        await host.publish_event("naive-ev", "k", None)
        inst = await host.wait_for_workflow(wid, timeout=3)
    assert inst.status is WorkflowStatus.COMPLETE


class AnyTimeWaiter(StepBody):
    """wait_for_event without as_of, like a wait_for without effective_date."""

    got: list[Any] = []  # noqa: RUF012

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult:
        if not ctx.pointer.event_published:
            return ExecutionResult.wait_for_event("any-ev", "k1")
        AnyTimeWaiter.got.append(ctx.pointer.event_data)
        return ExecutionResult.next()


async def test_wait_for_event_result_without_as_of_accepts_pending_events() -> None:
    AnyTimeWaiter.got = []
    definition = WorkflowBuilder(dict).start_with(AnyTimeWaiter).build("body-wait-2", 1)
    async with open_host("memory://", definition) as host:
        await host.publish_event("any-ev", "k1", "pending")
        wid = await host.start_workflow("body-wait-2", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=5)
    assert AnyTimeWaiter.got == ["pending"]
    assert inst.status is WorkflowStatus.COMPLETE


async def test_wait_for_event_result_as_of_excludes_earlier_events() -> None:
    """A subscription's as_of must be at or before the event's time."""
    Waiter.got = []
    definition = WorkflowBuilder(dict).start_with(Waiter).build("body-wait-3", 1)
    async with open_host("memory://", definition) as host:
        await host.publish_event("body-ev", "k1", "before-as-of")
        wid = await host.start_workflow("body-wait-3", 1, {})
        await until_waiting(host, wid)
        await trio.sleep(0.3)
        assert Waiter.got == []
        await host.publish_event("body-ev", "k1", "after-as-of")
        await host.wait_for_workflow(wid, timeout=5)
    assert Waiter.got == ["after-as-of"]


# --------------------------------------------------------------------------- §5 host


async def test_host_methods_take_the_design_keyword_names(store: str) -> None:
    """The keyword names of start_workflow, publish_event and ErrorBehavior.retry."""
    async with open_host(store, wait_def("kw")) as host:
        wid = await host.start_workflow(
            definition_id="kw", version=1, data={"got": []}, reference="kw-ref"
        )
        await until_waiting(host, wid)
        await host.publish_event(
            name="ev", key="k", data="by-keyword", effective_date=datetime.now(UTC)
        )
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.data["got"] == ["by-keyword"]
    assert inst.reference == "kw-ref"
    assert ErrorBehavior.retry(interval=timedelta(seconds=1), max_retries=2) == (
        ErrorBehavior.retry(timedelta(seconds=1), 2)
    )


async def test_control_methods_return_false_when_nothing_changes(store: str) -> None:
    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("done", 1)
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("done", 1, {})
        await host.wait_for_workflow(wid, timeout=10)
        assert await host.terminate_workflow(wid) is False
        assert await host.suspend_workflow(wid) is False
        assert await host.resume_workflow(wid) is False
        assert (await host.get_workflow(wid)).status is WorkflowStatus.COMPLETE


async def test_for_each_is_parallel_by_default(store: str) -> None:
    arrived = 0
    all_here = trio.Event()

    async def meet(ctx: StepExecutionContext) -> None:
        nonlocal arrived
        arrived += 1
        if arrived == 2:
            all_here.set()
        with trio.fail_after(5):
            await all_here.wait()

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .for_each(lambda data, *_: data["items"], lambda b: b.start_with(meet))
        .build("pfe-default", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("pfe-default", 1, {"items": ["a", "b"]})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE


async def test_start_workflow_defaults_and_reference(store: str) -> None:
    """version=None starts the latest registered version; data=None; reference stored."""
    v1 = WorkflowBuilder(dict).start_with(lambda ctx: None).build("ver", 1)
    v2 = WorkflowBuilder(dict).start_with(lambda ctx: None).build("ver", 2)
    async with open_host(store, v1, v2) as host:
        wid = await host.start_workflow("ver", reference="R-1")
        inst = await host.wait_for_workflow(wid, timeout=10)
        wid1 = await host.start_workflow("ver", 1, {"x": 1})
        inst1 = await host.wait_for_workflow(wid1, timeout=10)
    assert inst.version == 2
    assert inst.reference == "R-1"
    assert inst.definition_id == "ver"
    assert inst1.version == 1
    assert inst.id == wid
    assert inst.create_time <= inst.complete_time  # type: ignore[operator]


async def test_register_on_the_host(store: str) -> None:
    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("late", 1)
    async with open_host(store) as host:
        host.register(definition)
        wid = await host.start_workflow("late", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE


async def test_start_unknown_definition_raises(store: str) -> None:
    async with open_host(store) as host:
        with pytest.raises(WfeError, match="nope"):
            await host.start_workflow("nope", 1, {})


async def test_suspend_resume_terminate(store: str) -> None:
    async with open_host(store, wait_def("control")) as host, collecting(host) as seen:
        wid = await host.start_workflow("control", 1, {"got": []})
        await until_waiting(host, wid)
        assert await host.suspend_workflow(wid) is True
        assert (await host.get_workflow(wid)).status is WorkflowStatus.SUSPENDED
        assert await host.resume_workflow(wid) is True
        assert (await host.get_workflow(wid)).status is WorkflowStatus.RUNNABLE
        assert await host.terminate_workflow(wid) is True
        inst = await host.wait_for_workflow(wid, timeout=10)
        assert inst.status is WorkflowStatus.TERMINATED
        assert await host.resume_workflow(wid) is False
        await eventually(lambda: _true(WorkflowTerminated in types_for(seen, wid)))
    kinds = types_for(seen, wid)
    assert (
        kinds.index(WorkflowSuspended)
        < kinds.index(WorkflowResumed)
        < kinds.index(WorkflowTerminated)
    )


async def test_suspended_workflow_does_not_consume_events_until_resumed(store: str) -> None:
    async with open_host(store, wait_def("susp-ev")) as host:
        wid = await host.start_workflow("susp-ev", 1, {"got": []})
        await until_waiting(host, wid)
        await host.suspend_workflow(wid)
        await host.publish_event("ev", "k", "while-suspended")
        await trio.sleep(0.5)
        inst = await host.get_workflow(wid)
        assert inst.status is WorkflowStatus.SUSPENDED
        await host.resume_workflow(wid)
        done = await host.wait_for_workflow(wid, timeout=10)
    assert done.status is WorkflowStatus.COMPLETE
    assert done.data["got"] == ["while-suspended"]


async def test_wait_for_workflow_times_out_while_runnable(store: str) -> None:
    async with open_host(store, wait_def("forever")) as host:
        wid = await host.start_workflow("forever", 1, {"got": []})
        start = time.monotonic()
        with pytest.raises(Exception):  # noqa: B017 - DESIGN.md names no type
            await host.wait_for_workflow(wid, timeout=0.3)
        assert time.monotonic() - start < 3


async def test_wait_for_workflow_accepts_timedelta(store: str) -> None:
    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("td", 1)
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("td", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=timedelta(seconds=5))
    assert inst.status is WorkflowStatus.COMPLETE


async def test_get_workflow_of_unknown_id_raises(store: str) -> None:
    async with open_host(store) as host:
        with pytest.raises(WfeError):
            await host.get_workflow(str(uuid4()))


async def test_lifecycle_events_of_a_run(store: str) -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .name("s1")
        .then(lambda ctx: None)
        .name("s2")
        .build("life", 1)
    )
    async with open_host(store, definition) as host, collecting(host) as seen:
        wid = await host.start_workflow("life", 1, {}, reference="ref-life")
        await host.wait_for_workflow(wid, timeout=10)
        await eventually(lambda: _true(WorkflowCompleted in types_for(seen, wid)))
    kinds = types_for(seen, wid)
    assert kinds == [
        WorkflowStarted,
        StepStarted,
        StepCompleted,
        StepStarted,
        StepCompleted,
        WorkflowCompleted,
    ]
    started = next(e for e in seen if isinstance(e, WorkflowStarted))
    assert started.definition_id == "life"
    assert started.version == 1
    assert started.reference == "ref-life"


async def test_search_by_terms_filters_and_paging(store: str) -> None:
    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("searchable", 1)
    async with open_host(store, definition) as host:
        ids = [
            await host.start_workflow("searchable", 1, {"city": "Zanzibar"}, reference=f"REF-{i}")
            for i in range(3)
        ]
        for wid in ids:
            await host.wait_for_workflow(wid, timeout=10)

        async def indexed() -> bool:
            page = await host.search("", SearchFilters(status=WorkflowStatus.COMPLETE), 0, 10)
            return page.total == 3

        await eventually(indexed)
        page = await host.search("REF-1", None, 0, 10)
        assert isinstance(page, Page)
        assert [r.id for r in page.items] == [ids[1]]
        by_data = await host.search("zanzibar", None, 0, 10)
        assert by_data.total == 3
        paged = await host.search("", SearchFilters(definition_id="searchable"), 1, 1)
        assert paged.total == 3
        assert len(paged.items) == 1
        kw = await host.search(terms="", filters=SearchFilters(reference="REF-2"), skip=0, take=5)
        assert [r.id for r in kw.items] == [ids[2]]


async def test_max_concurrent_workflows_bounds_concurrency(store: str) -> None:
    running = 0
    peak = 0

    async def busy(ctx: StepExecutionContext) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(0.2)
        running -= 1

    definition = WorkflowBuilder(dict).start_with(busy).build("busy", 1)
    async with open_host(
        store, definition, configure=lambda b: b.max_concurrent_workflows(1)
    ) as host:
        ids = [await host.start_workflow("busy", 1, {}) for _ in range(3)]
        for wid in ids:
            await host.wait_for_workflow(wid, timeout=10)
    assert peak == 1


async def test_workflows_run_concurrently_by_default(store: str) -> None:
    running = 0
    peak = 0

    async def busy(ctx: StepExecutionContext) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(0.3)
        running -= 1

    definition = WorkflowBuilder(dict).start_with(busy).build("busy2", 1)
    async with open_host(store, definition) as host:
        ids = [await host.start_workflow("busy2", 1, {}) for _ in range(3)]
        for wid in ids:
            await host.wait_for_workflow(wid, timeout=10)
    assert peak >= 2


async def test_step_middleware_wraps_every_step(store: str) -> None:
    log: list[str] = []

    async def outer(ctx: Any, body: Any, next: Callable[[], Awaitable[Any]]) -> Any:
        log.append("outer>")
        result = await next()
        log.append("<outer")
        return result

    async def inner(ctx: Any, body: Any, next: Callable[[], Awaitable[Any]]) -> Any:
        log.append("inner>")
        result = await next()
        log.append("<inner")
        return result

    definition = WorkflowBuilder(dict).start_with(recorder(log, "body")).build("smw", 1)

    def configure(b: WorkflowHostBuilder) -> None:
        b.use_step_middleware(outer)
        b.use_step_middleware(inner)

    async with open_host(store, definition, configure=configure) as host:
        wid = await host.start_workflow("smw", 1, {})
        await host.wait_for_workflow(wid, timeout=10)
    assert log == ["outer>", "inner>", "body", "<inner", "<outer"]


async def test_workflow_middleware_phases(store: str) -> None:
    """use_workflow_middleware(phase, fn) and its decorator form use_workflow_middleware(phase)."""
    log: list[str] = []
    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("wmw", 1)

    def configure(b: WorkflowHostBuilder) -> None:
        def pre(instance: WorkflowInstance) -> None:
            instance.data["pre"] = True
            log.append("pre")

        b.use_workflow_middleware("pre", pre)

        async def post(instance: WorkflowInstance) -> None:
            log.append(f"post:{instance.status.name}")

        decorate = b.use_workflow_middleware("post")  # the decorator form
        decorate(post)

    async with open_host(store, definition, configure=configure) as host:
        wid = await host.start_workflow("wmw", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
        await eventually(lambda: _true(len(log) == 2))
    assert inst.data == {"pre": True}
    assert log == ["pre", "post:COMPLETE"]


async def test_clock_and_poll_interval_run_long_delays_on_virtual_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    definition = (
        WorkflowBuilder(dict).start_with(lambda ctx: None).delay(timedelta(days=3)).build("long", 1)
    )
    async with (
        WorkflowHostBuilder()
        .clock(TrioClock())
        .poll_interval(timedelta(seconds=30))
        .register(definition)
        .build()
    ) as host:
        wid = await host.start_workflow("long", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=timedelta(days=4))
    assert inst.status is WorkflowStatus.COMPLETE
    assert trio.current_time() >= 3 * 86_400


def test_blocking_workflow_host() -> None:
    """BlockingWorkflowHost runs a host on its own thread with the same methods, blocking."""
    definition = wait_def("blocking")
    with BlockingWorkflowHost(
        WorkflowHostBuilder().register(definition).poll_interval(timedelta(milliseconds=200))
    ) as host:
        wid = host.start_workflow("blocking", 1, {"got": []})
        deadline = time.monotonic() + 5
        while not any(
            p.status is PointerStatus.WAITING_FOR_EVENT
            for p in host.get_workflow(wid).execution_pointers
        ):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert isinstance(host.publish_event("ev", "k", "sync"), str)
        inst = host.wait_for_workflow(wid, timeout=10)
        assert host.get_errors(wid) == []
    assert inst.status is WorkflowStatus.COMPLETE
    assert inst.data["got"] == ["sync"]


# ---------------------------------------------------- §6 store, restarts, missing definitions


async def test_workflow_survives_host_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'restart.db'}"
    async with open_host(url, wait_def("restart")) as host:
        wid = await host.start_workflow("restart", 1, {"got": []})
        await until_waiting(host, wid)
    async with open_host(url, wait_def("restart")) as host:
        await host.publish_event("ev", "k", "after-restart")
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert inst.data["got"] == ["after-restart"]


async def test_delay_survives_host_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'delay.db'}"
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .delay(timedelta(milliseconds=500))
        .then(lambda ctx: None)
        .build("delay-restart", 1)
    )
    async with open_host(url, definition) as host:
        wid = await host.start_workflow("delay-restart", 1, {})
        await eventually(lambda: _pointer_in(host, wid, PointerStatus.SLEEPING))
    async with open_host(url, definition) as host:
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE


async def _pointer_in(host: WorkflowHost, wid: str, status: PointerStatus) -> bool:
    inst = await host.get_workflow(wid)
    return any(p.status is status for p in inst.execution_pointers)


async def test_missing_definition_is_an_error_with_backoff_not_a_spin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing.db'}"
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .delay(timedelta(milliseconds=300))
        .then(lambda ctx: None)
        .build("vanishing", 1)
    )
    async with open_host(url, definition) as host:
        wid = await host.start_workflow("vanishing", 1, {})
        await eventually(lambda: _pointer_in(host, wid, PointerStatus.SLEEPING))
    async with open_host(url) as host:
        await eventually(lambda: _has_errors(host, wid))
        await trio.sleep(2)
        errors = await host.get_errors(wid)
        assert (await host.get_workflow(wid)).status is WorkflowStatus.RUNNABLE
    assert errors
    assert any("vanishing" in e.message for e in errors)
    assert len(errors) <= 8, f"{len(errors)} errors in ~2 s: spinning, not backing off"
    async with open_host(url, definition) as host:
        inst = await host.wait_for_workflow(wid, timeout=60)
    assert inst.status is WorkflowStatus.COMPLETE


async def _has_errors(host: WorkflowHost, wid: str) -> bool:
    return bool(await host.get_errors(wid))


async def test_definition_drift_is_reported_not_run(tmp_path: Path) -> None:
    """An instance started under one step graph is not run with another under the same id/version"""
    url = f"sqlite:///{tmp_path / 'drift.db'}"
    log: list[str] = []
    original = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .wait_for("go", "k")
        .then(recorder(log, "original"))
        .build("drift", 1)
    )
    changed = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .delay(timedelta(milliseconds=1))
        .then(recorder(log, "changed"))
        .then(recorder(log, "changed-2"))
        .build("drift", 1)
    )
    async with open_host(url, original) as host:
        wid = await host.start_workflow("drift", 1, {})
        await until_waiting(host, wid)
    async with open_host(url, changed) as host:
        await host.publish_event("go", "k", None)
        await eventually(lambda: _has_errors(host, wid))
        errors = await host.get_errors(wid)
    assert log == []
    assert errors
    assert any("drift" in e.message for e in errors)
