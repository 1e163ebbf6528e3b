"""Sagas, compensate_with and cancel conditions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import trio
from core_engine import Engine
from core_models import Counter
from trio.testing import MockClock

from wfe.core import (
    ErrorBehavior,
    PointerStatus,
    StepError,
    StepExecutionContext,
    WorkflowBuilder,
    WorkflowStatus,
)
from wfe.core.executor import Command


def note(name: str) -> Any:
    def step(ctx: StepExecutionContext) -> None:
        ctx.workflow.data.log.append(name)

    step.__name__ = name
    return step


def fail(name: str) -> Any:
    def step(ctx: StepExecutionContext) -> None:
        ctx.workflow.data.log.append(name)
        raise StepError(f"{name} failed")

    step.__name__ = name
    return step


async def test_saga_compensates_completed_steps_in_reverse_completion_order(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(Counter)
        .saga(
            lambda b: (
                b.start_with(note("book-hotel"))
                .compensate_with(note("cancel-hotel"))
                .then(note("book-car"))
                .compensate_with(note("cancel-car"))
                .then(note("book-flight"))
                .compensate_with(note("cancel-flight"))
                .then(fail("pay"))
            )
        )
        .build("saga", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.data.log == [
        "book-hotel",
        "book-car",
        "book-flight",
        "pay",
        "cancel-flight",
        "cancel-car",
        "cancel-hotel",
    ]
    assert instance.status is WorkflowStatus.COMPLETE
    compensated = [p for p in instance.execution_pointers if p.status is PointerStatus.COMPENSATED]
    assert len(compensated) == 3


async def test_parallel_steps_in_a_saga_are_compensated_by_completion_order(
    engine: Engine, autojump_clock: MockClock
) -> None:
    """Order comes from completion, not from the definition: the step that finished
    last is undone first."""
    first_done = trio.Event()

    async def slow(ctx: StepExecutionContext) -> None:
        await first_done.wait()
        ctx.workflow.data.log.append("slow")

    def fast(ctx: StepExecutionContext) -> None:
        ctx.workflow.data.log.append("fast")
        first_done.set()

    definition = (
        WorkflowBuilder(Counter)
        .saga(
            lambda b: (
                b.start_with(note("start"))
                .parallel()
                .do(lambda p: p.start_with(slow).compensate_with(note("undo-slow")))
                .do(lambda p: p.start_with(fast).compensate_with(note("undo-fast")))
                .join()
                .then(fail("boom"))
            )
        )
        .build("saga-par", 1)
    )
    wid = await engine.start(definition, Counter())
    log = (await engine.run(wid)).data.log
    assert log == ["start", "fast", "slow", "boom", "undo-slow", "undo-fast"]


async def test_after_a_compensated_saga_the_workflow_continues(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(Counter)
        .saga(lambda b: b.start_with(note("do")).compensate_with(note("undo")).then(fail("x")))
        .compensate_with(note("saga-undone"))
        .then(note("next"))
        .build("saga-continue", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.log == ["do", "x", "undo", "saga-undone", "next"]


async def test_saga_with_retry_runs_again_after_compensating(
    engine: Engine, autojump_clock: MockClock
) -> None:
    attempts: list[int] = []

    def flaky(ctx: StepExecutionContext) -> None:
        attempts.append(1)
        ctx.workflow.data.log.append(f"try-{len(attempts)}")
        if len(attempts) < 2:
            raise StepError("not yet")

    definition = (
        WorkflowBuilder(Counter)
        .saga(lambda b: b.start_with(note("do")).compensate_with(note("undo")).then(flaky))
        .on_error(ErrorBehavior.retry(timedelta(hours=1), max_retries=2))
        .then(note("done"))
        .build("saga-retry", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.log == ["do", "try-1", "undo", "do", "try-2", "done"]


async def test_saga_with_terminate_ends_the_workflow_after_compensating(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(Counter)
        .saga(lambda b: b.start_with(note("do")).compensate_with(note("undo")).then(fail("x")))
        .on_error(ErrorBehavior.terminate())
        .then(note("never"))
        .build("saga-terminate", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.TERMINATED
    assert instance.data.log == ["do", "x", "undo"]


async def test_compensate_with_on_a_lone_step_runs_it_and_continues(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(Counter)
        .start_with(fail("charge"))
        .compensate_with(note("refund"))
        .then(note("notify"))
        .build("lone", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.log == ["charge", "refund", "notify"]
    assert instance.execution_pointers[0].status is PointerStatus.COMPENSATED


async def test_compensate_with_sequence_runs_its_steps_in_order(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(Counter)
        .saga(
            lambda b: (
                b.start_with(note("do"))
                .compensate_with_sequence(
                    lambda c: c.start_with(note("undo-1")).then(note("undo-2"))
                )
                .then(fail("x"))
            )
        )
        .build("comp-seq", 1)
    )
    wid = await engine.start(definition, Counter())
    assert (await engine.run(wid)).data.log == ["do", "x", "undo-1", "undo-2"]


async def test_cancel_condition_cancels_a_waiting_step_and_ends_the_flow(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(Counter)
        .start_with(lambda ctx: setattr(ctx.workflow.data, "flag", True))
        .delay(timedelta(days=30))
        .name("Wait a month")
        .cancel_condition(lambda data: data.flag)
        .then(note("never"))
        .build("cancel", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.log == []
    statuses = {p.step_name: p.status for p in instance.execution_pointers}
    assert statuses["Wait a month"] is PointerStatus.CANCELLED
    assert instance.complete_time == instance.create_time  # no month passed


async def test_cancel_condition_with_proceed_continues_after_the_step(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(Counter)
        .start_with(lambda ctx: setattr(ctx.workflow.data, "flag", True))
        .wait_for("never-sent", "k")
        .cancel_condition(lambda data: data.flag, proceed=True)
        .then(note("after"))
        .build("cancel-proceed", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.log == ["after"]


async def test_cancel_condition_cancels_a_container_and_everything_inside(
    engine: Engine, autojump_clock: MockClock
) -> None:
    """A condition turned true by one parallel branch cancels the other, with its steps."""
    definition = (
        WorkflowBuilder(Counter)
        .start_with(note("start"))
        .parallel()
        .do(
            lambda b: b.start_with(note("loop-start")).while_do(
                lambda data: True, lambda w: w.start_with(note("tick")).delay(timedelta(hours=1))
            )
        )
        .do(
            lambda b: (
                b.start_with(lambda ctx: None)
                .delay(timedelta(hours=3))
                .then(lambda ctx: setattr(ctx.workflow.data, "flag", True))
            )
        )
        .join()
        .cancel_condition(lambda data: data.flag, proceed=True)
        .then(note("end"))
        .build("cancel-tree", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.log[-1] == "end"
    assert 3 <= instance.data.log.count("tick") <= 4
    assert all(p.end_time is not None for p in instance.execution_pointers)


async def test_a_step_whose_cancel_condition_already_holds_never_runs(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(Counter)
        .start_with(lambda ctx: setattr(ctx.workflow.data, "flag", True))
        .then(note("guarded"))
        .cancel_condition(lambda data: data.flag, proceed=True)
        .then(note("after"))
        .build("cancel-before", 1)
    )
    wid = await engine.start(definition, Counter())
    assert (await engine.run(wid)).data.log == ["after"]


async def test_saga_with_suspend_waits_for_resume_then_runs_again(
    engine: Engine, autojump_clock: MockClock
) -> None:
    attempts: list[int] = []

    def flaky(ctx: StepExecutionContext) -> None:
        attempts.append(1)
        ctx.workflow.data.log.append(f"try-{len(attempts)}")
        if len(attempts) < 2:
            raise StepError("not yet")

    definition = (
        WorkflowBuilder(Counter)
        .saga(lambda b: b.start_with(note("do")).compensate_with(note("undo")).then(flaky))
        .on_error(ErrorBehavior.suspend())
        .then(note("end"))
        .build("saga-suspend", 1)
    )
    wid = await engine.start(definition, Counter())
    suspended = await engine.run(wid)
    assert suspended.status is WorkflowStatus.SUSPENDED
    assert suspended.data.log == ["do", "try-1", "undo"]
    assert await engine.control(wid, Command.RESUME)
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.log == ["do", "try-1", "undo", "do", "try-2", "end"]


async def test_cancel_condition_on_an_endless_while_stops_it_and_proceeds(
    engine: Engine, autojump_clock: MockClock
) -> None:
    def bump(ctx: StepExecutionContext) -> None:
        ctx.workflow.data.n += 1

    definition = (
        WorkflowBuilder(Counter)
        .start_with(lambda ctx: None)
        .while_do(lambda data: True, lambda b: b.start_with(bump).delay(timedelta(minutes=10)))
        .cancel_condition(lambda data: data.n >= 3, proceed=True)
        .then(note("end"))
        .build("endless", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.n == 3
    assert instance.data.log == ["end"]


def failing_saga(b: Any) -> Any:
    """A saga that books, fails and undoes the booking: it has no handler of its own."""
    return b.saga(
        lambda s: s.start_with(note("book")).compensate_with(note("unbook")).then(fail("pay"))
    )


async def test_an_unhandled_saga_failure_inside_an_if_ends_the_flow_there(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(Counter)
        .start_with(note("start"))
        .if_do(
            lambda d: True,
            lambda b: failing_saga(b.start_with(note("in-if"))).then(note("after-saga")),
        )
        .then(note("after-if"))
        .build("saga-in-if", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    # The same as at the top level: compensated, and nothing after the saga runs.
    assert instance.data.log == ["start", "in-if", "book", "pay", "unbook"]
    assert instance.status is WorkflowStatus.COMPLETE


async def test_an_unhandled_saga_failure_inside_a_while_does_not_loop_forever(
    engine: Engine, autojump_clock: MockClock
) -> None:
    def count(ctx: StepExecutionContext) -> None:
        ctx.workflow.data.n += 1

    definition = (
        WorkflowBuilder(Counter)
        .while_do(lambda d: d.n < 3, lambda b: failing_saga(b.start_with(note("body"))).then(count))
        .then(note("after-while"))
        .build("saga-in-while", 1)
    )
    wid = await engine.start(definition, Counter())
    with trio.fail_after(60):
        instance = await engine.run(wid)
    assert instance.data.log == ["body", "book", "pay", "unbook"]
    assert instance.data.n == 0
    assert instance.status is WorkflowStatus.COMPLETE


async def test_an_unhandled_saga_failure_cancels_its_parallel_siblings(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(Counter)
        .start_with(note("start"))
        .parallel()
        .do(lambda b: failing_saga(b.start_with(note("left"))))
        .do(lambda b: b.start_with(note("right")).wait_for("never", "k").then(note("right-after")))
        .join()
        .then(note("after-parallel"))
        .build("saga-in-parallel", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert "after-parallel" not in instance.data.log
    assert "right-after" not in instance.data.log
    assert instance.data.log[-1] == "unbook"
    assert instance.status is WorkflowStatus.COMPLETE
    waiting = [
        p for p in instance.execution_pointers if p.status is PointerStatus.WAITING_FOR_EVENT
    ]
    assert waiting == []


async def test_a_handled_inner_saga_failure_still_continues_its_container(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(Counter)
        .if_do(
            lambda d: True,
            lambda b: (
                failing_saga(b.start_with(note("in-if")))
                .compensate_with(note("saga-undone"))
                .then(note("after-saga"))
            ),
        )
        .then(note("after-if"))
        .build("handled-saga-in-if", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.data.log == [
        "in-if",
        "book",
        "pay",
        "unbook",
        "saga-undone",
        "after-saga",
        "after-if",
    ]
