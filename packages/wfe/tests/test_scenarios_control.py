"""Decide, when, goto, end_workflow, recur/schedule, sub-workflows, cancel conditions."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import attrs
import trio

from wfe.core import (
    ExecutionResult,
    PointerStatus,
    WorkflowBuilder,
    WorkflowCompleted,
    WorkflowNotFoundError,
    WorkflowStatus,
)

from .conftest import HostFactory


@attrs.define
class Counter:
    value: int = 0
    log: list[str] = attrs.Factory(list)


def decision_definition() -> Any:
    builder = WorkflowBuilder(Counter)
    plus = builder.create_branch()
    plus.start_with(lambda ctx: ctx.workflow.data.log.append("+"))
    minus = builder.create_branch()
    minus.start_with(lambda ctx: ctx.workflow.data.log.append("-")).then(
        lambda ctx: ctx.workflow.data.log.append("--")
    )
    return (
        builder.start_with(lambda ctx: None)
        .decide(lambda data: "+" if data.value > 0 else "-")
        .branch("+", plus)
        .branch("-", minus)
        .build("decision", 1)
    )


async def test_decision_plus_and_minus(host_factory: HostFactory) -> None:
    """Decision: the branch matching the decided value runs, the other does not."""
    async with host_factory(decision_definition()) as host:
        w1 = await host.start_workflow("decision", 1, Counter(value=5))
        w2 = await host.start_workflow("decision", 1, Counter(value=-5))
        i1 = await host.wait_for_workflow(w1, timeout=10)
        i2 = await host.wait_for_workflow(w2, timeout=10)
    assert i1.data.log == ["+"]
    assert i2.data.log == ["-", "--"]


async def test_when_runs_every_matching_case_then_continues(host_factory: HostFactory) -> None:
    """When: outcome 2 runs both cases matching 2, not the one matching 1; then the flow."""
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: ExecutionResult.outcome(2))
        .when(1)
        .do(lambda b: b.start_with(lambda ctx: log.append("case1")))
        .when(2)
        .do(lambda b: b.start_with(lambda ctx: log.append("case2")))
        .when(lambda data: 2)
        .do(lambda b: b.start_with(lambda ctx: log.append("case3")))
        .then(lambda ctx: log.append("after"))
        .build("when", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("when", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert sorted(log[:2]) == ["case2", "case3"]
    assert log[2:] == ["after"]


async def test_goto_reenters_attached_step(host_factory: HostFactory) -> None:
    """Goto/Attach: step1 runs 4 times, the if-block 3 times, then the workflow completes."""
    ticks = {"step1": 0, "step2": 0}

    def step1(ctx: Any) -> None:
        ticks["step1"] += 1

    def step2(ctx: Any) -> None:
        ticks["step2"] += 1

    definition = (
        WorkflowBuilder(dict)
        .start_with(step1)
        .id("step1")
        .if_do(lambda d: ticks["step1"] < 4, lambda b: b.start_with(step2).attach("step1"))
        .build("goto", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("goto", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert ticks == {"step1": 4, "step2": 3}


async def test_end_workflow_inside_endless_loop(host_factory: HostFactory) -> None:
    """EndStep: end_workflow inside an endless while completes the workflow, publishes
    WorkflowCompleted, and nothing after it runs."""
    log: list[int] = []

    def count(ctx: Any) -> None:
        ctx.workflow.data.value += 1
        log.append(ctx.workflow.data.value)

    definition = (
        WorkflowBuilder(Counter)
        .start_with(lambda ctx: None)
        .while_do(
            lambda d: True,
            lambda b: (
                b.start_with(count)
                .if_do(
                    lambda d: d.value >= 3,
                    lambda e: e.end_workflow().then(lambda c: log.append(-1)),
                )
                .then(lambda ctx: None)
            ),
        )
        .then(lambda ctx: log.append(-2))
        .build("endstep", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("endstep", 1, Counter())
        instance = await host.wait_for_workflow(wid, timeout=10)
        completed = [
            e
            async for e in _take(
                host.lifecycle_events(), lambda e: isinstance(e, WorkflowCompleted)
            )
        ]
    assert instance.status is WorkflowStatus.COMPLETE
    assert log == [1, 2, 3]
    assert completed[-1].workflow_instance_id == wid
    assert all(p.end_time is not None for p in instance.execution_pointers)


async def _take(events: Any, stop: Any) -> Any:
    async for event in events:
        yield event
        if stop(event):
            return


async def test_recur_runs_block_until_condition(host_factory: HostFactory) -> None:
    """recur(interval, until) runs its block every interval until `until` holds."""

    def tick(ctx: Any) -> None:
        ctx.workflow.data.value += 1

    definition = (
        WorkflowBuilder(Counter)
        .start_with(lambda ctx: None)
        .recur(timedelta(milliseconds=50), lambda d: d.value >= 3)
        .do(lambda b: b.start_with(tick))
        .then(lambda ctx: ctx.workflow.data.log.append("done"))
        .build("recur", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("recur", 1, Counter())
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.value >= 3
    assert instance.data.log == ["done"]


async def test_schedule_runs_block_once_after_interval(host_factory: HostFactory) -> None:
    stamps: list[float] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: stamps.append(trio.current_time()))
        .schedule(timedelta(milliseconds=200))
        .do(lambda b: b.start_with(lambda ctx: stamps.append(trio.current_time())))
        .build("schedule", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("schedule", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert len(stamps) == 2
    assert stamps[1] - stamps[0] >= 0.19


@attrs.define
class Parent:
    seed: int = 0
    child_status: Any = None
    child_result: Any = None
    child_id: Any = None


async def test_sub_workflow_exposes_child_status_and_data(host_factory: HostFactory) -> None:
    """A sub_workflow step waits for the child and exposes its id, status and data."""
    child = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: ctx.workflow.data.update(doubled=ctx.workflow.data["n"] * 2))
        .delay(timedelta(milliseconds=50))
        .build("child", 1)
    )
    parent = (
        WorkflowBuilder(Parent)
        .start_with(lambda ctx: None)
        .sub_workflow("child", 1, data=lambda d: {"n": d.seed})
        .output("child_status", lambda step: step.child_status)
        .output("child_result", lambda step: step.child_data)
        .output("child_id", lambda step: step.child_id)
        .build("parent", 1)
    )
    async with host_factory(child, parent) as host:
        wid = await host.start_workflow("parent", 1, Parent(seed=21))
        instance = await host.wait_for_workflow(wid, timeout=10)
        child_instance = await host.get_workflow(instance.data.child_id)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.child_status is WorkflowStatus.COMPLETE
    assert instance.data.child_result == {"n": 21, "doubled": 42}
    assert child_instance.status is WorkflowStatus.COMPLETE


async def test_sub_workflow_finishes_on_terminated_child(host_factory: HostFactory) -> None:
    """The parent's step finishes when the child is terminated, carrying that status."""
    child = WorkflowBuilder(dict).start_with(lambda ctx: None).wait_for("never", "x").build("c2", 1)
    parent = (
        WorkflowBuilder(Parent)
        .start_with(lambda ctx: None)
        .sub_workflow("c2")
        .output("child_status", lambda step: step.child_status)
        .output("child_id", lambda step: step.child_id)
        .build("p2", 1)
    )
    async with host_factory(child, parent) as host:
        wid = await host.start_workflow("p2", 1, Parent())
        with trio.fail_after(10):
            while True:
                inst = await host.get_workflow(wid)
                subs = [p for p in inst.execution_pointers if p.event_name]
                if subs:
                    break
                await trio.sleep(0.02)
        child_id = subs[0].event_key
        assert child_id is not None
        # The child exists (and is worth terminating) once it waits for its event.
        with trio.fail_after(10):
            while True:
                with contextlib.suppress(WorkflowNotFoundError):
                    child = await host.get_workflow(child_id)
                    if any(
                        p.status is PointerStatus.WAITING_FOR_EVENT
                        for p in child.execution_pointers
                    ):
                        break
                await trio.sleep(0.02)
        assert await host.terminate_workflow(child_id)
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.child_status is WorkflowStatus.TERMINATED


async def test_cancel_condition_cancels_wait(host_factory: HostFactory) -> None:
    """A wait_for with a cancel condition is cancelled when it holds; later events are ignored."""
    definition = (
        WorkflowBuilder(Counter)
        .start_with(lambda ctx: None)
        .parallel()
        .do(
            lambda b: b.start_with(lambda ctx: None).wait_for(
                "approve", "k", cancel_condition=lambda d: d.value > 0
            )
        )
        .do(
            lambda b: (
                b.start_with(lambda ctx: None)
                .delay(timedelta(milliseconds=100))
                .then(lambda ctx: setattr(ctx.workflow.data, "value", 1))
            )
        )
        .join()
        .then(lambda ctx: ctx.workflow.data.log.append("after"))
        .build("cancel", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("cancel", 1, Counter())
        instance = await host.wait_for_workflow(wid, timeout=10)
        await host.publish_event("approve", "k", "late")
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.log == ["after"]
    waits = [p for p in instance.execution_pointers if p.event_name == "approve"]
    assert waits[0].status is PointerStatus.CANCELLED
    assert waits[0].event_data is None
