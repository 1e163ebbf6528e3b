"""The pass's last checkpoint (``InstanceRun(write_last=...)``): the one after which no
step runs and none is runnable within the hold window. The host gives the lease up with
it, so after it the run takes no more input, starts no step and ends at once."""

from __future__ import annotations

from datetime import timedelta

import trio
import trio.lowlevel
from core_engine import Engine, RecordingPersistence
from trio.testing import MockClock

from wfe.core import Event, WorkflowBuilder, WorkflowDefinition, WorkflowStatus
from wfe.core.executor import Command, InstanceRun
from wfe.core.protocols import Checkpoint


class _Last:
    """A ``write_last`` that stores through the store and keeps what it wrote."""

    def __init__(self, store: RecordingPersistence) -> None:
        self.store = store
        self.written: list[WorkflowStatus] = []

    async def __call__(self, checkpoint: Checkpoint) -> None:
        await self.store.persist_checkpoint(checkpoint)
        self.written.append(checkpoint.instance.status)


async def _run(
    engine: Engine, store: RecordingPersistence, definition: WorkflowDefinition
) -> tuple[InstanceRun, _Last]:
    wid = await engine.start(definition, {})
    last = _Last(store)
    async with engine.lease(wid) as token:
        instance = await store.claim_workflow(wid, token)
        run = InstanceRun(engine.env, instance, definition, token, write_last=last)
        await run.run()
    return run, last


def _steps(n: int) -> WorkflowDefinition:
    builder = WorkflowBuilder(dict).start_with(lambda ctx: None)
    for _ in range(n - 1):
        builder = builder.then(lambda ctx: None)
    return builder.build(f"steps{n}", 1)


async def test_only_the_checkpoint_that_ends_the_workflow_is_the_last(
    engine: Engine, store: RecordingPersistence, autojump_clock: MockClock
) -> None:
    run, last = await _run(engine, store, _steps(3))
    assert len(store.checkpoints) == 3
    assert last.written == [WorkflowStatus.COMPLETE]
    assert run.wrote_last
    assert not run.accepting


async def test_a_wait_within_the_hold_window_does_not_end_the_pass(
    engine: Engine, store: RecordingPersistence, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .delay(timedelta(milliseconds=500))  # within the hold window: the pass waits
        .then(lambda ctx: None)
        .build("short-delay", 1)
    )
    _, last = await _run(engine, store, definition)
    assert store.checkpoints[-1].instance.status is WorkflowStatus.COMPLETE
    assert len(store.checkpoints) > 1
    assert last.written == [WorkflowStatus.COMPLETE]


async def test_a_parked_workflow_s_checkpoint_is_the_last_and_no_input_follows(
    engine: Engine, store: RecordingPersistence, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .wait_for("go", lambda data, ctx: "k")
        .then(lambda ctx: None)
        .build("parked", 1)
    )
    run, last = await _run(engine, store, definition)
    assert last.written == [WorkflowStatus.RUNNABLE]
    assert not run.accepting
    (sub,) = await store.get_subscriptions("go", "k", engine.clock.now())
    event = Event(name="go", key="k", time=engine.clock.now())
    # Refused: the caller goes through the store (and its lease) instead.
    assert not await run.deliver_event(sub, event, mark_processed=True)


async def test_a_suspend_while_the_pass_waits_ends_the_pass_at_once(
    engine: Engine, store: RecordingPersistence, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .delay(timedelta(milliseconds=900))
        .then(lambda ctx: None)
        .build("suspended", 1)
    )
    wid = await engine.start(definition, {})
    last = _Last(store)
    async with engine.lease(wid) as token:
        instance = await store.claim_workflow(wid, token)
        run = InstanceRun(engine.env, instance, definition, token, write_last=last)
        began = trio.current_time()
        ended = trio.Event()

        async def pass_() -> None:
            await run.run()
            ended.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pass_)
            while not store.checkpoints:  # the first step's, before the pass waits
                await trio.lowlevel.checkpoint()
            assert await run.apply(Command.SUSPEND)
            await ended.wait()
        # The suspend's checkpoint was the last (the lease went with it): the pass did
        # not sleep on to the delay's end.
        assert last.written == [WorkflowStatus.SUSPENDED]
        assert trio.current_time() - began < 0.9
