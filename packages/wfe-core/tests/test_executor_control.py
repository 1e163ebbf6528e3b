"""Control commands (suspend, resume, terminate) and deferral, in and out of a pass."""

from __future__ import annotations

from datetime import timedelta

import trio
from core_engine import Engine
from core_models import Counter
from trio.testing import MockClock

from wfe.core import (
    PointerStatus,
    StepExecutionContext,
    WorkflowBuilder,
    WorkflowDefinition,
    WorkflowStatus,
    WorkflowTerminated,
)
from wfe.core.executor import Command, InstanceRun


def delayed() -> WorkflowDefinition:
    return (
        WorkflowBuilder(Counter)
        .start_with(lambda ctx: ctx.workflow.data.log.append("before"))
        .delay(timedelta(hours=1))
        .then(lambda ctx: ctx.workflow.data.log.append("after"))
        .build("delayed", 1)
    )


async def test_a_suspended_workflow_runs_nothing_until_resumed(
    engine: Engine, autojump_clock: MockClock
) -> None:
    wid = await engine.start(delayed(), Counter())
    await engine.run_pass(wid)
    assert await engine.control(wid, Command.SUSPEND)
    await engine.advance(timedelta(days=1))
    assert await engine.persistence.get_runnable_instances(engine.clock.now()) == []
    assert (await engine.run(wid)).data.log == ["before"]
    assert await engine.control(wid, Command.RESUME)
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.log == ["before", "after"]


async def test_commands_that_do_not_apply_return_false(
    engine: Engine, autojump_clock: MockClock
) -> None:
    wid = await engine.start(delayed(), Counter())
    assert not await engine.control(wid, Command.RESUME)  # RUNNABLE: nothing to resume
    await engine.run(wid)
    assert not await engine.control(wid, Command.SUSPEND)  # COMPLETE
    assert not await engine.control(wid, Command.TERMINATE)
    assert (await engine.persistence.get_workflow(wid)).status is WorkflowStatus.COMPLETE


async def test_terminate_cancels_open_pointers_and_closes_subscriptions(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(dict).start_with(lambda ctx: None).wait_for("e", "k").build("term", 1)
    )
    wid = await engine.start(definition, {})
    await engine.run(wid)
    assert await engine.control(wid, Command.TERMINATE)
    instance = await engine.persistence.get_workflow(wid)
    assert instance.status is WorkflowStatus.TERMINATED
    assert instance.execution_pointers[-1].status is PointerStatus.CANCELLED
    assert await engine.persistence.get_subscriptions("e", "k", engine.clock.now()) == []
    assert any(isinstance(e, WorkflowTerminated) for e in engine.lifecycle)


async def test_terminate_works_without_the_definition(
    engine: Engine, autojump_clock: MockClock
) -> None:
    wid = await engine.start(delayed(), Counter())
    await engine.run_pass(wid)
    engine.definitions.clear()
    assert await engine.control(wid, Command.TERMINATE)
    assert (await engine.persistence.get_workflow(wid)).status is WorkflowStatus.TERMINATED


async def test_suspend_during_a_pass_keeps_the_running_steps_result(
    engine: Engine, autojump_clock: MockClock
) -> None:
    """A step that finishes after its workflow was suspended records its result, and
    nothing after it starts until the workflow is resumed."""
    entered = trio.Event()
    release = trio.Event()

    async def slow(ctx: StepExecutionContext) -> None:
        entered.set()
        await release.wait()
        ctx.workflow.data.log.append("slow")

    definition = (
        WorkflowBuilder(Counter)
        .start_with(slow)
        .then(lambda ctx: ctx.workflow.data.log.append("next"))
        .build("suspend-mid", 1)
    )
    wid = await engine.start(definition, Counter())
    async with engine.lease(wid) as token:
        instance = await engine.persistence.claim_workflow(wid, token)
        run = InstanceRun(engine.env, instance, definition, token)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run.run)
            await entered.wait()
            assert await run.apply(Command.SUSPEND)
            release.set()
    stored = await engine.persistence.get_workflow(wid)
    assert stored.status is WorkflowStatus.SUSPENDED
    assert stored.data.log == ["slow"]
    assert stored.execution_pointers[0].status is PointerStatus.COMPLETE
    assert await engine.control(wid, Command.RESUME)
    assert (await engine.run(wid)).data.log == ["slow", "next"]


async def test_terminate_during_a_pass_cancels_the_running_step(
    engine: Engine, autojump_clock: MockClock
) -> None:
    entered = trio.Event()

    async def forever(ctx: StepExecutionContext) -> None:
        entered.set()
        await trio.sleep_forever()

    definition = WorkflowBuilder(dict).start_with(forever).then(lambda ctx: None).build("t", 1)
    wid = await engine.start(definition, {})
    async with engine.lease(wid) as token:
        instance = await engine.persistence.claim_workflow(wid, token)
        run = InstanceRun(engine.env, instance, definition, token)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run.run)
            await entered.wait()
            assert await run.apply(Command.TERMINATE)
    stored = await engine.persistence.get_workflow(wid)
    assert stored.status is WorkflowStatus.TERMINATED
    assert [p.status for p in stored.execution_pointers] == [PointerStatus.CANCELLED]


async def test_defer_records_an_error_and_makes_the_instance_due_later(
    engine: Engine, autojump_clock: MockClock
) -> None:
    wid = await engine.start(delayed(), Counter())
    until = engine.clock.now() + timedelta(minutes=10)
    async with engine.lease(wid) as token:
        instance = await engine.persistence.claim_workflow(wid, token)
        await InstanceRun(engine.env, instance, None, token).defer("definition missing", until)
    stored = await engine.persistence.get_workflow(wid)
    assert stored.next_execution == until
    assert [e.message for e in await engine.persistence.get_errors(wid)] == ["definition missing"]
    assert await engine.persistence.get_runnable_instances(engine.clock.now()) == []
    assert (await engine.run(wid)).status is WorkflowStatus.COMPLETE


async def test_an_event_delivered_while_suspended_is_taken_after_resume(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .wait_for("e", "k")
        .output("got", lambda step: step.event_data)
        .build("suspended-event", 1)
    )
    wid = await engine.start(definition, {})
    await engine.run(wid)
    assert await engine.control(wid, Command.SUSPEND)
    await engine.publish("e", "k", "while away")
    assert await engine.deliver_events() == 1
    suspended = await engine.run(wid)
    assert suspended.status is WorkflowStatus.SUSPENDED
    assert "got" not in suspended.data
    assert await engine.control(wid, Command.RESUME)
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data == {"got": "while away"}
