"""Failing steps on virtual time: retries, suspend, terminate, and recorded errors."""

from __future__ import annotations

import itertools
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
    WorkflowError,
    WorkflowResumed,
    WorkflowStatus,
    WorkflowSuspended,
    WorkflowTerminated,
)
from wfe.core.executor import Command


def failing(attempts: list[float], *, succeed_on: int | None = None) -> Any:
    """A step that records the virtual time of each attempt and raises, except on
    attempt ``succeed_on`` (1-based)."""

    def step(ctx: StepExecutionContext) -> None:
        attempts.append(trio.current_time())
        if len(attempts) != succeed_on:
            raise StepError(f"attempt {len(attempts)} failed")

    return step


async def test_retry_max_n_makes_n_plus_one_attempts_then_fails_and_suspends(
    engine: Engine, autojump_clock: MockClock
) -> None:
    attempts: list[float] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(failing(attempts))
        .name("Flaky")
        .on_error(ErrorBehavior.retry(timedelta(hours=1), max_retries=3))
        .build("retry", 1)
    )
    wid = await engine.start(definition, {})
    instance = await engine.run(wid)
    assert len(attempts) == 4
    assert instance.status is WorkflowStatus.SUSPENDED
    [pointer] = instance.execution_pointers
    assert pointer.status is PointerStatus.FAILED
    assert pointer.end_time is None  # left open: a resume runs it again


async def test_retries_wait_their_interval_in_virtual_time(
    engine: Engine, autojump_clock: MockClock
) -> None:
    """Day-long retry intervals pass instantly, and exactly a day apart."""
    attempts: list[float] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(failing(attempts, succeed_on=3))
        .on_error(ErrorBehavior.retry(timedelta(days=1), max_retries=5))
        .build("retry-days", 1)
    )
    wid = await engine.start(definition, {})
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert [b - a for a, b in itertools.pairwise(attempts)] == [86_400.0, 86_400.0]


async def test_retry_zero_fails_after_the_first_attempt(
    engine: Engine, autojump_clock: MockClock
) -> None:
    attempts: list[float] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(failing(attempts))
        .on_error(ErrorBehavior.retry(timedelta(seconds=5), max_retries=0))
        .build("retry-0", 1)
    )
    wid = await engine.start(definition, {})
    assert (await engine.run(wid)).status is WorkflowStatus.SUSPENDED
    assert len(attempts) == 1


async def test_default_behaviour_retries_every_minute_three_times(
    engine: Engine, autojump_clock: MockClock
) -> None:
    attempts: list[float] = []
    definition = WorkflowBuilder(dict).start_with(failing(attempts)).build("default", 1)
    wid = await engine.start(definition, {})
    assert (await engine.run(wid)).status is WorkflowStatus.SUSPENDED
    assert [b - a for a, b in itertools.pairwise(attempts)] == [60.0, 60.0, 60.0]


async def test_definition_default_error_behavior_applies_to_steps_without_one(
    engine: Engine, autojump_clock: MockClock
) -> None:
    attempts: list[float] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(failing(attempts))
        .build("def-default", 1, default_error_behavior=ErrorBehavior.terminate())
    )
    wid = await engine.start(definition, {})
    assert (await engine.run(wid)).status is WorkflowStatus.TERMINATED
    assert len(attempts) == 1


async def test_resume_after_exhausted_retries_runs_the_failed_step_again(
    engine: Engine, autojump_clock: MockClock
) -> None:
    attempts: list[float] = []
    definition = (
        WorkflowBuilder(Counter)
        .start_with(failing(attempts, succeed_on=3))
        .on_error(ErrorBehavior.retry(timedelta(minutes=1), max_retries=1))
        .then(lambda ctx: ctx.workflow.data.log.append("after"))
        .build("resume", 1)
    )
    wid = await engine.start(definition, Counter())
    assert (await engine.run(wid)).status is WorkflowStatus.SUSPENDED
    assert len(attempts) == 2
    assert await engine.control(wid, Command.RESUME)
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert len(attempts) == 3
    assert instance.data.log == ["after"]
    assert sum(isinstance(e, WorkflowResumed) for e in engine.lifecycle) == 1


async def test_suspend_behaviour_suspends_at_the_first_failure(
    engine: Engine, autojump_clock: MockClock
) -> None:
    attempts: list[float] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(failing(attempts))
        .on_error(ErrorBehavior.suspend())
        .build("suspend", 1)
    )
    wid = await engine.start(definition, {})
    assert (await engine.run(wid)).status is WorkflowStatus.SUSPENDED
    assert len(attempts) == 1
    assert any(isinstance(e, WorkflowSuspended) for e in engine.lifecycle)


async def test_terminate_behaviour_ends_the_workflow_and_skips_the_rest(
    engine: Engine, autojump_clock: MockClock
) -> None:
    later: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(failing([]))
        .on_error(ErrorBehavior.terminate())
        .then(lambda ctx: later.append("ran"))
        .build("terminate", 1)
    )
    wid = await engine.start(definition, {})
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.TERMINATED
    assert instance.execution_pointers[0].status is PointerStatus.FAILED
    assert later == []
    assert any(isinstance(e, WorkflowTerminated) for e in engine.lifecycle)


async def test_every_failure_is_an_execution_error_and_a_workflow_error_event(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(failing([]))
        .name("Charge")
        .on_error(ErrorBehavior.retry(timedelta(seconds=1), max_retries=2))
        .build("errors", 1)
    )
    wid = await engine.start(definition, {})
    instance = await engine.run(wid)
    errors = await engine.persistence.get_errors(wid)
    assert [e.message for e in errors] == [
        "step 'Charge': attempt 1 failed",
        "step 'Charge': attempt 2 failed",
        "step 'Charge': attempt 3 failed",
    ]
    pointer_id = instance.execution_pointers[0].id
    assert {e.pointer_id for e in errors} == {pointer_id}
    events = [e for e in engine.lifecycle if isinstance(e, WorkflowError)]
    assert [e.message for e in events] == [e.message for e in errors]


async def test_unexpected_exception_message_names_type_and_location(
    engine: Engine, autojump_clock: MockClock
) -> None:
    def broken(ctx: StepExecutionContext) -> None:
        raise KeyError("missing")

    definition = (
        WorkflowBuilder(dict)
        .start_with(broken)
        .name("Broken")
        .on_error(ErrorBehavior.suspend())
        .build("broken", 1)
    )
    wid = await engine.start(definition, {})
    await engine.run(wid)
    [error] = await engine.persistence.get_errors(wid)
    assert error.message.startswith("step 'Broken': KeyError: 'missing' (at ")
    assert "test_executor_errors.py" in error.message


async def test_step_returning_a_wrong_type_fails_with_a_clear_error(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: 42)
        .on_error(ErrorBehavior.suspend())
        .build("wrong-type", 1)
    )
    wid = await engine.start(definition, {})
    assert (await engine.run(wid)).status is WorkflowStatus.SUSPENDED
    [error] = await engine.persistence.get_errors(wid)
    assert "returned int; expected ExecutionResult or None" in error.message


async def test_step_leaving_unstorable_data_fails_and_the_data_rolls_back(
    engine: Engine, autojump_clock: MockClock
) -> None:
    def poison(ctx: StepExecutionContext) -> None:
        ctx.workflow.data["bad"] = object()

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: ctx.workflow.data.update(good=1))
        .then(poison)
        .on_error(ErrorBehavior.suspend())
        .build("unstorable", 1)
    )
    wid = await engine.start(definition, {})
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.SUSPENDED
    assert instance.data == {"good": 1}
    [error] = await engine.persistence.get_errors(wid)
    assert "data.bad" in error.message


async def test_a_failure_then_success_continues_the_flow(
    engine: Engine, autojump_clock: MockClock
) -> None:
    attempts: list[float] = []
    definition = (
        WorkflowBuilder(Counter)
        .start_with(failing(attempts, succeed_on=2))
        .on_error(ErrorBehavior.retry(timedelta(seconds=30)))
        .then(lambda ctx: ctx.workflow.data.log.append("next"))
        .build("recover", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.log == ["next"]
    assert instance.execution_pointers[0].retry_count == 1


async def test_an_input_that_raises_fails_the_step_like_its_body_would(
    engine: Engine, autojump_clock: MockClock
) -> None:
    ran: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: ran.append("body"))
        .name("Needs input")
        .input("value", lambda data: data["missing"])
        .on_error(ErrorBehavior.suspend())
        .build("bad-input", 1)
    )
    wid = await engine.start(definition, {})
    assert (await engine.run(wid)).status is WorkflowStatus.SUSPENDED
    assert ran == []
    [error] = await engine.persistence.get_errors(wid)
    assert error.message.startswith("step 'Needs input': KeyError: 'missing'")


async def test_a_retrying_branch_does_not_hold_up_its_sibling(
    engine: Engine, autojump_clock: MockClock
) -> None:
    attempts: list[float] = []
    definition = (
        WorkflowBuilder(Counter)
        .start_with(lambda ctx: None)
        .parallel()
        .do(
            lambda b: b.start_with(failing(attempts, succeed_on=3)).on_error(
                ErrorBehavior.retry(timedelta(minutes=5))
            )
        )
        .do(
            lambda b: (
                b.start_with(lambda ctx: ctx.workflow.data.log.append(f"one@{trio.current_time()}"))
                .delay(timedelta(minutes=1))
                .then(lambda ctx: ctx.workflow.data.log.append(f"two@{trio.current_time()}"))
            )
        )
        .join()
        .then(lambda ctx: ctx.workflow.data.log.append(f"end@{trio.current_time()}"))
        .build("retry-branch", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert attempts == [0.0, 300.0, 600.0]
    assert instance.data.log == ["one@0.0", "two@60.0", "end@600.0"]


async def test_resume_gives_the_failed_step_a_fresh_set_of_retries(
    engine: Engine, autojump_clock: MockClock
) -> None:
    attempts: list[float] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(failing(attempts))
        .on_error(ErrorBehavior.retry(timedelta(seconds=10), max_retries=2))
        .build("fresh-retries", 1)
    )
    wid = await engine.start(definition, {})
    await engine.run(wid)
    assert await engine.control(wid, Command.RESUME)
    assert (await engine.run(wid)).status is WorkflowStatus.SUSPENDED
    assert len(attempts) == 6
