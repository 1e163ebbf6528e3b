"""Black-box acceptance tests of DESIGN.md, written from the design text alone.

§4: the design's exact example, the step kinds, and step inputs/outputs.
Stores: the in-memory store and ``sqlite:///<tmp>``.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from wfe.core import (
    ErrorBehavior,
    ExecutionResult,
    StepBody,
    StepExecutionContext,
    StepStarted,
    WorkflowBuilder,
    WorkflowCompleted,
    WorkflowDefinition,
    WorkflowStatus,
)
from wfe.host import WorkflowHostBuilder

# The helpers and data classes live in sibling modules so that they are importable by name
# (pytest's importlib mode does not put tests/ on sys.path).
sys.path.insert(0, str(Path(__file__).parent))
import trio.lowlevel
from acceptance_models import Counter, Order
from acceptance_support import (
    Waiter,
    _true,
    collecting,
    eventually,
    open_host,
    recorder,
    store_fixture,  # noqa: F401  (the ``store`` fixture)
    until_waiting,
)

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
