"""The built-in primitives on virtual time: delay, schedule, recur and sub_workflow."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs
import trio
from core_engine import Engine
from core_models import Counter
from trio.testing import MockClock

from wfe.core import (
    ErrorBehavior,
    StepExecutionContext,
    WorkflowBuilder,
    WorkflowDefinition,
    WorkflowStatus,
)


def stamp(times: list[float]) -> Any:
    def step(ctx: StepExecutionContext) -> None:
        times.append(trio.current_time())

    return step


async def test_a_three_day_delay_passes_instantly_in_virtual_time(
    engine: Engine, autojump_clock: MockClock
) -> None:
    times: list[float] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(stamp(times))
        .delay(timedelta(days=3))
        .then(stamp(times))
        .build("delay", 1)
    )
    wid = await engine.start(definition, {})
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert times[1] - times[0] == 3 * 86_400
    assert instance.complete_time is not None
    assert instance.complete_time - instance.create_time == timedelta(days=3)


async def test_delay_duration_can_come_from_the_data(
    engine: Engine, autojump_clock: MockClock
) -> None:
    times: list[float] = []
    definition = (
        WorkflowBuilder(Counter)
        .start_with(stamp(times))
        .delay(lambda data: timedelta(minutes=data.n))
        .then(stamp(times))
        .build("delay-fn", 1)
    )
    wid = await engine.start(definition, Counter(n=90))
    await engine.run(wid)
    assert times[1] - times[0] == 90 * 60


async def test_a_zero_delay_continues_at_once(engine: Engine, autojump_clock: MockClock) -> None:
    times: list[float] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(stamp(times))
        .delay(timedelta(0))
        .then(stamp(times))
        .build("delay-0", 1)
    )
    wid = await engine.start(definition, {})
    await engine.run(wid)
    assert times[1] == times[0]


async def test_a_short_delay_is_slept_within_the_holding_pass(
    engine: Engine, autojump_clock: MockClock
) -> None:
    """A wake within the hold window is awaited in the pass, without a new claim."""
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .delay(timedelta(milliseconds=500))
        .then(lambda ctx: None)
        .build("short", 1)
    )
    wid = await engine.start(definition, {})
    await engine.run_pass(wid)
    assert (await engine.persistence.get_workflow(wid)).status is WorkflowStatus.COMPLETE


async def test_a_long_delay_ends_the_pass_and_leaves_a_due_time(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .delay(timedelta(hours=1))
        .then(lambda ctx: None)
        .build("long", 1)
    )
    wid = await engine.start(definition, {})
    start = engine.clock.now()
    await engine.run_pass(wid)
    stored = await engine.persistence.get_workflow(wid)
    assert stored.status is WorkflowStatus.RUNNABLE
    assert stored.next_execution == start + timedelta(hours=1)
    assert await engine.persistence.get_runnable_instances(engine.clock.now()) == []
    await engine.advance(timedelta(hours=1))
    assert await engine.persistence.get_runnable_instances(engine.clock.now()) == [wid]


async def test_schedule_runs_its_block_once_after_the_interval(
    engine: Engine, autojump_clock: MockClock
) -> None:
    times: list[float] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(stamp(times))
        .schedule(timedelta(hours=6))
        .do(lambda b: b.start_with(stamp(times)))
        .then(stamp(times))
        .build("schedule", 1)
    )
    wid = await engine.start(definition, {})
    assert (await engine.run(wid)).status is WorkflowStatus.COMPLETE
    assert times == [0.0, 6 * 3600.0, 6 * 3600.0]


async def test_recur_runs_its_block_every_interval_until_the_condition(
    engine: Engine, autojump_clock: MockClock
) -> None:
    times: list[float] = []

    def tick(ctx: StepExecutionContext) -> None:
        times.append(trio.current_time())
        ctx.workflow.data.n += 1

    definition = (
        WorkflowBuilder(Counter)
        .start_with(lambda ctx: None)
        .recur(timedelta(hours=1), lambda data: data.n >= 3)
        .do(lambda b: b.start_with(tick))
        .then(lambda ctx: ctx.workflow.data.log.append("after"))
        .build("recur", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.n == 3
    assert instance.data.log == ["after"]
    assert times == [0.0, 3600.0, 7200.0]


def child_definition() -> WorkflowDefinition:
    return (
        WorkflowBuilder(Counter)
        .start_with(lambda ctx: setattr(ctx.workflow.data, "n", ctx.workflow.data.n * 10))
        .delay(timedelta(hours=2))
        .build("child", 1)
    )


async def test_sub_workflow_waits_for_the_child_and_exposes_its_outcome(
    engine: Engine, autojump_clock: MockClock
) -> None:
    engine.definitions[("child", 1)] = child_definition()
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .sub_workflow("child", data=lambda data: Counter(n=data["n"]))
        .output(
            lambda step, data: data.update(
                child=step.child_id, status=step.child_status.value, n=step.child_data.n
            )
        )
        .build("parent", 1)
    )
    wid = await engine.start(definition, {"n": 4})
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data["status"] == "COMPLETE"
    assert instance.data["n"] == 40
    child = await engine.persistence.get_workflow(instance.data["child"])
    assert child.status is WorkflowStatus.COMPLETE
    assert instance.complete_time is not None
    assert child.complete_time is not None
    assert instance.complete_time >= child.complete_time


async def test_sub_workflow_finishes_on_a_terminated_child(
    engine: Engine, autojump_clock: MockClock
) -> None:
    def boom(ctx: StepExecutionContext) -> None:
        raise RuntimeError("child failed")

    engine.definitions[("doomed", 1)] = (
        WorkflowBuilder(dict)
        .start_with(boom)
        .on_error(ErrorBehavior.terminate())
        .build("doomed", 1)
    )
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .sub_workflow("doomed", 1, data=lambda data: {})
        .output("child_status", lambda step: step.child_status.value)
        .build("parent-doomed", 1)
    )
    wid = await engine.start(definition, {})
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data == {"child_status": "TERMINATED"}


async def test_sub_workflow_without_a_host_fails_saying_so(
    engine: Engine, autojump_clock: MockClock
) -> None:
    engine.env = attrs.evolve(engine.env, services=None)
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .sub_workflow("child")
        .on_error(ErrorBehavior.suspend())
        .build("orphan", 1)
    )
    wid = await engine.start(definition, {})
    assert (await engine.run(wid)).status is WorkflowStatus.SUSPENDED
    [error] = await engine.persistence.get_errors(wid)
    assert "sub_workflow needs a host" in error.message
