"""Compensation and sagas (ports of workflow-core's compensation scenarios)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from wfe.core import (
    ErrorBehavior,
    PointerStatus,
    StepError,
    WorkflowBuilder,
    WorkflowStatus,
)

from .conftest import HostFactory


def raiser(ctx: Any) -> None:
    raise StepError("fail")


async def test_compensation_runs_and_successor_still_runs(host_factory: HostFactory) -> None:
    """Compensation: a failing step's compensation runs and its successor still runs."""
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: log.append("start"))
        .then(raiser)
        .compensate_with(lambda ctx: log.append("compensated"))
        .then(lambda ctx: log.append("after"))
        .build("comp", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("comp", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
        errors = await host.get_errors(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert log == ["start", "compensated", "after"]
    assert len(errors) == 1
    failed = [p for p in instance.execution_pointers if p.status is PointerStatus.COMPENSATED]
    assert len(failed) == 1


async def test_no_compensation_without_failure(host_factory: HostFactory) -> None:
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: log.append("a"))
        .compensate_with(lambda ctx: log.append("undo-a"))
        .then(lambda ctx: log.append("b"))
        .build("comp-ok", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("comp-ok", 1, {})
        await host.wait_for_workflow(wid, timeout=10)
    assert log == ["a", "b"]


async def test_compensation_sequence_runs_in_order(host_factory: HostFactory) -> None:
    """CompensationSequence: several compensating steps run one after another."""
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(raiser)
        .compensate_with_sequence(
            lambda b: (
                b.start_with(lambda ctx: log.append("undo1"))
                .then(lambda ctx: log.append("undo2"))
                .then(lambda ctx: log.append("undo3"))
            )
        )
        .then(lambda ctx: log.append("after"))
        .build("comp-seq", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("comp-seq", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert log == ["undo1", "undo2", "undo3", "after"]


def saga_definition(log: list[str], *, throw: bool) -> Any:
    def step2(ctx: Any) -> None:
        log.append("event2")
        if throw:
            raise StepError("step 2 failed")

    return (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .saga(
            lambda s: (
                s.start_with(lambda ctx: log.append("event1"))
                .compensate_with(lambda ctx: log.append("comp1"))
                .then(step2)
                .compensate_with(lambda ctx: log.append("comp2"))
                .then(lambda ctx: log.append("event3"))
                .compensate_with(lambda ctx: log.append("comp3"))
            )
        )
        .compensate_with(lambda ctx: log.append("comp4"))
        .then(lambda ctx: log.append("after"))
        .build(f"saga-{throw}", 1)
    )


async def test_saga_with_exception(host_factory: HostFactory) -> None:
    """Saga: the failing step and earlier steps compensate (newest first), then the
    saga's own compensation; the flow continues after the saga."""
    log: list[str] = []
    async with host_factory(saga_definition(log, throw=True)) as host:
        wid = await host.start_workflow("saga-True", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert log == ["event1", "event2", "comp2", "comp1", "comp4", "after"]


async def test_saga_without_exception(host_factory: HostFactory) -> None:
    log: list[str] = []
    async with host_factory(saga_definition(log, throw=False)) as host:
        wid = await host.start_workflow("saga-False", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert log == ["event1", "event2", "event3", "after"]


async def test_multistep_compensation_fires_in_reverse(host_factory: HostFactory) -> None:
    """MultistepCompensation: four steps in a saga, the last fails: 4, 3, 2, 1."""
    fired: list[int] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .saga(
            lambda s: (
                s.start_with(lambda ctx: None)
                .compensate_with(lambda ctx: fired.append(1))
                .then(lambda ctx: None)
                .compensate_with_sequence(lambda b: b.start_with(lambda ctx: fired.append(2)))
                .then(lambda ctx: None)
                .compensate_with(lambda ctx: fired.append(3))
                .then(raiser)
                .compensate_with(lambda ctx: fired.append(4))
            )
        )
        .build("multistep", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("multistep", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
        errors = await host.get_errors(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert len(errors) == 1
    assert fired == [4, 3, 2, 1]


async def test_retry_saga_compensates_each_attempt(host_factory: HostFactory) -> None:
    """RetrySaga: fails twice, succeeds the third time; compensations counted per attempt."""
    counts = {"event1": 0, "step2": 0, "step3": 0, "undo1": 0, "undo2": 0, "undo3": 0}

    def bump(name: str) -> Any:
        def step(ctx: Any) -> None:
            counts[name] += 1

        return step

    def step2(ctx: Any) -> None:
        counts["step2"] += 1
        if counts["step2"] < 3:
            raise StepError("not yet")

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .saga(
            lambda s: (
                s.start_with(bump("event1"))
                .compensate_with(bump("undo1"))
                .then(step2)
                .compensate_with(bump("undo2"))
                .then(bump("step3"))
                .compensate_with(bump("undo3"))
            )
        )
        .on_error(ErrorBehavior.retry(timedelta(milliseconds=50)))
        .then(lambda ctx: None)
        .build("retry-saga", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("retry-saga", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert counts == {"event1": 3, "step2": 3, "step3": 1, "undo1": 2, "undo2": 2, "undo3": 0}


async def test_failing_saga_terminates(host_factory: HostFactory) -> None:
    """FailingSaga: a saga with on_error(terminate) terminates the workflow."""
    log: list[str] = []

    def step2(ctx: Any) -> None:
        log.append("event2")
        raise StepError("boom")

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .saga(
            lambda s: (
                s.start_with(lambda ctx: log.append("event1"))
                .then(step2)
                .then(lambda ctx: log.append("event3"))
            )
        )
        .on_error(ErrorBehavior.terminate())
        .then(lambda ctx: log.append("after"))
        .build("failing-saga", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("failing-saga", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.TERMINATED
    assert log == ["event1", "event2"]


async def test_nested_saga_compensates_inner_then_outer(host_factory: HostFactory) -> None:
    """Inner siblings compensate first, then the outer saga's completed steps."""
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .saga(
            lambda outer: (
                outer.start_with(lambda ctx: log.append("o1"))
                .compensate_with(lambda ctx: log.append("undo-o1"))
                .saga(
                    lambda inner: (
                        inner.start_with(lambda ctx: log.append("i1"))
                        .compensate_with(lambda ctx: log.append("undo-i1"))
                        .then(raiser)
                    )
                )
            )
        )
        .compensate_with(lambda ctx: log.append("undo-outer"))
        .then(lambda ctx: log.append("after"))
        .build("nested-saga", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("nested-saga", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert log == ["o1", "i1", "undo-i1", "undo-o1", "undo-outer", "after"]
