"""What a pass writes: one fenced checkpoint per change, completion decided before the
last write, and a store left in a state a fresh claim finishes whatever failed."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import trio
from core_engine import Engine, RecordingPersistence
from trio.testing import MockClock

from wfe.core import (
    ExecutionPointer,
    PointerStatus,
    ProviderError,
    StaleLeaseError,
    StepCompleted,
    StepExecutionContext,
    WorkflowBuilder,
    WorkflowDefinition,
    WorkflowInstance,
    WorkflowStatus,
)
from wfe.core.executor import InstanceRun
from wfe.core.primitives import CHILD_FINISHED_EVENT

STEPS = ("a", "b", "c", "d")


def recording_sequence(ran: list[str]) -> WorkflowDefinition:
    """Four steps in a row, each appending its name to ``ran`` when its body runs."""

    def step(name: str) -> Any:
        def body(ctx: StepExecutionContext) -> None:
            ran.append(name)

        return body

    builder = WorkflowBuilder(dict).start_with(step(STEPS[0])).name(STEPS[0])
    for name in STEPS[1:]:
        builder = builder.then(step(name)).name(name)
    return builder.build("four", 1)


async def test_each_finished_step_is_one_checkpoint_and_the_last_carries_complete(
    engine: Engine, store: RecordingPersistence, autojump_clock: MockClock
) -> None:
    wid = await engine.start(recording_sequence([]), {})
    await engine.run(wid)
    assert len(store.checkpoints) == len(STEPS)
    *earlier, last = store.checkpoints
    assert all(c.instance.status is WorkflowStatus.RUNNABLE for c in earlier)
    assert last.instance.status is WorkflowStatus.COMPLETE
    assert last.instance.complete_time is not None
    assert last.instance.next_execution is None
    [final_pointer] = last.pointers
    assert final_pointer.step_name == "d"
    assert final_pointer.status is PointerStatus.COMPLETE


async def test_a_checkpoint_carries_only_the_pointers_it_changed(
    engine: Engine, store: RecordingPersistence, autojump_clock: MockClock
) -> None:
    wid = await engine.start(recording_sequence([]), {})
    await engine.run(wid)
    # Each step: its own pointer (now complete) and the successor it created.
    assert [sorted(p.step_name or "" for p in c.pointers) for c in store.checkpoints] == [
        ["a", "b"],
        ["b", "c"],
        ["c", "d"],
        ["d"],
    ]


async def test_every_checkpoint_carries_the_claims_fencing_token(
    engine: Engine, store: RecordingPersistence, autojump_clock: MockClock
) -> None:
    wid = await engine.start(recording_sequence([]), {})
    await engine.run(wid)
    tokens = {c.fencing_token for c in store.checkpoints}
    assert len(tokens) == 1
    assert None not in tokens


async def test_a_sleeping_step_checkpoints_its_wake_time_as_next_execution(
    engine: Engine, store: RecordingPersistence, autojump_clock: MockClock
) -> None:
    start = engine.clock.now()
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .delay(timedelta(hours=5))
        .then(lambda ctx: None)
        .build("sleepy", 1)
    )
    wid = await engine.start(definition, {})
    await engine.run_pass(wid)
    stored = await store.get_workflow(wid)
    assert stored.next_execution == start + timedelta(hours=5)
    assert store.checkpoints[-1].instance.next_execution == start + timedelta(hours=5)


async def test_a_failing_step_writes_its_error_with_its_retry(
    engine: Engine, store: RecordingPersistence, autojump_clock: MockClock
) -> None:
    def boom(ctx: StepExecutionContext) -> None:
        raise RuntimeError("boom")

    wid = await engine.start(WorkflowBuilder(dict).start_with(boom).build("boom", 1), {})
    await engine.run_pass(wid)
    first = store.checkpoints[0]
    assert [e.message.split(" (at")[0] for e in first.errors] == ["step 'boom': RuntimeError: boom"]
    [pointer] = first.pointers
    assert pointer.status is PointerStatus.SLEEPING
    assert first.instance.next_execution == pointer.sleep_until


async def test_a_wait_opens_its_subscription_in_its_checkpoint_and_delivery_closes_it(
    engine: Engine, store: RecordingPersistence, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(dict).start_with(lambda ctx: None).wait_for("e", "k").build("sub", 1)
    )
    wid = await engine.start(definition, {})
    await engine.run(wid)
    opened = [s for c in store.checkpoints for s in c.opened_subscriptions]
    assert [(s.event_name, s.event_key, s.workflow_id) for s in opened] == [("e", "k", wid)]
    await engine.publish("e", "k")
    assert (await engine.run(wid)).status is WorkflowStatus.COMPLETE
    assert await store.get_subscriptions("e", "k", engine.clock.now()) == []


@pytest.mark.parametrize("fail_at", range(1, len(STEPS) + 1))
async def test_a_failed_checkpoint_leaves_a_store_a_fresh_claim_finishes(
    fail_at: int, autojump_clock: MockClock
) -> None:
    """Whichever checkpoint the store refuses, a fresh claim and run finish the workflow,
    and no step whose result was committed runs again (only the unwritten one repeats)."""
    ran: list[str] = []
    store = RecordingPersistence(fail_at=fail_at)
    engine = Engine(store)
    wid = await engine.start(recording_sequence(ran), {})
    with pytest.raises(ProviderError, match="injected failure"):
        await engine.run_pass(wid)
    committed = {
        p.step_name or ""
        for p in (await store.get_workflow(wid)).execution_pointers
        if p.status is PointerStatus.COMPLETE
    }
    assert committed == set(STEPS[: fail_at - 1])
    published = {e.step_name for e in engine.lifecycle if isinstance(e, StepCompleted)}
    assert published == committed  # nothing announced that the store does not hold
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    runs = Tally(ran)
    assert all(runs[name] == 1 for name in committed)
    assert runs[STEPS[fail_at - 1]] == 2
    assert sorted(runs) == sorted(STEPS)


async def refuse_each_checkpoint_in_turn(
    make: Callable[[list[str]], list[WorkflowDefinition]], expected: set[str]
) -> int:
    """Refuse the 1st, 2nd, ... checkpoint of a fresh run until a run needs fewer writes.

    ``make(ran)`` gives the definition to start (and any it starts as sub-workflows),
    whose named steps append their name (and loop item, if any) to ``ran``. After each
    refusal a fresh claim must finish the workflow, run every ``expected`` step, and run
    none whose completion was committed again. Returns how many refusals were exercised
    (trio schedules concurrent tasks in a varying order, so concurrent steps may or may
    not share a checkpoint).
    """
    fail_at = 0
    while True:
        fail_at += 1
        ran: list[str] = []
        store = RecordingPersistence(fail_at=fail_at)
        main, *others = make(ran)
        engine = Engine(store, *others)
        wid = await engine.start(main, {})
        try:
            await engine.run(wid)
        except ProviderError:
            pass
        else:
            assert store.attempts < fail_at, "a refused write went unnoticed"
            return fail_at - 1
        committed = set()
        for row in await store.list_workflows():
            for p in (await store.get_workflow(row.id)).execution_pointers:
                if p.status is PointerStatus.COMPLETE and p.step_name is not None:
                    committed.add(f"{p.step_name}{p.context_item or ''}")
        instance = await engine.run(wid)
        assert instance.status is WorkflowStatus.COMPLETE, (fail_at, ran)
        runs = Tally(ran)
        assert set(runs) == expected, (fail_at, ran)
        assert all(runs[name] == 1 for name in committed), (fail_at, ran, committed)


def named(ran: list[str], name: str) -> Any:
    def body(ctx: StepExecutionContext) -> None:
        ran.append(name)

    return body


def parallel_recording(ran: list[str]) -> WorkflowDefinition:
    """Three two-step branches in parallel between a first and a last step."""

    def branch(tag: str) -> Any:
        return lambda b: (
            b.start_with(named(ran, f"{tag}1"))
            .name(f"{tag}1")
            .then(named(ran, f"{tag}2"))
            .name(f"{tag}2")
        )

    return (
        WorkflowBuilder(dict)
        .start_with(named(ran, "first"))
        .name("first")
        .parallel()
        .do(branch("x"))
        .do(branch("y"))
        .do(branch("z"))
        .join()
        .then(named(ran, "last"))
        .name("last")
        .build("par-crash", 1)
    )


async def test_with_parallel_branches_any_failed_checkpoint_is_finished_by_a_fresh_claim(
    autojump_clock: MockClock,
) -> None:
    expected = {"first", "last", "x1", "x2", "y1", "y2", "z1", "z2"}
    refused = await refuse_each_checkpoint_in_turn(lambda ran: [parallel_recording(ran)], expected)
    assert refused >= 4


async def test_in_a_sequential_for_each_any_failed_checkpoint_is_finished_by_a_fresh_claim(
    autojump_clock: MockClock,
) -> None:
    def make(ran: list[str]) -> list[WorkflowDefinition]:
        return [
            WorkflowBuilder(dict)
            .start_with(named(ran, "first"))
            .name("first")
            .for_each(
                lambda data: [1, 2, 3],
                lambda b: b.start_with(lambda ctx: ran.append(f"item{ctx.item}")).name("item"),
                parallel=False,
            )
            .then(named(ran, "last"))
            .name("last")
            .build("each-crash", 1)
        ]

    expected = {"first", "item1", "item2", "item3", "last"}
    assert await refuse_each_checkpoint_in_turn(make, expected) >= 5


async def test_around_a_sub_workflow_any_failed_checkpoint_is_finished_by_a_fresh_claim(
    autojump_clock: MockClock,
) -> None:
    """Parent and child share the store: whichever of their writes is refused (the
    child's final one carries the notice to its parent), the parent still completes."""

    def make(ran: list[str]) -> list[WorkflowDefinition]:
        parent = (
            WorkflowBuilder(dict)
            .start_with(named(ran, "p1"))
            .name("p1")
            .sub_workflow("child", 1, data=lambda data: {})
            .then(named(ran, "p2"))
            .name("p2")
            .build("parent", 1)
        )
        child = (
            WorkflowBuilder(dict)
            .start_with(named(ran, "c1"))
            .name("c1")
            .then(named(ran, "c2"))
            .name("c2")
            .build("child", 1)
        )
        return [parent, child]

    assert await refuse_each_checkpoint_in_turn(make, {"p1", "p2", "c1", "c2"}) >= 5


async def test_a_finishing_child_stores_its_notice_to_the_parent_with_its_final_write(
    engine: Engine, store: RecordingPersistence, autojump_clock: MockClock
) -> None:
    engine.definitions[("child", 1)] = (
        WorkflowBuilder(dict).start_with(lambda ctx: None).build("child", 1)
    )
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .sub_workflow("child", 1, data=lambda data: {})
        .build("parent", 1)
    )
    wid = await engine.start(definition, {})
    assert (await engine.run(wid)).status is WorkflowStatus.COMPLETE
    [final] = [c for c in store.checkpoints if c.events]
    assert final.instance.definition_id == "child"
    assert final.instance.status is WorkflowStatus.COMPLETE
    assert [(e.name, e.key) for e in final.events] == [(CHILD_FINISHED_EVENT, final.instance.id)]


async def test_a_superseded_run_is_refused_and_stops_running_steps(
    engine: Engine, store: RecordingPersistence, autojump_clock: MockClock
) -> None:
    """A second claim with a higher token fences the first run: its next write raises
    StaleLeaseError and it starts no further step; the new holder finishes the work."""
    entered = trio.Event()
    release = trio.Event()
    ran: list[str] = []

    async def first(ctx: StepExecutionContext) -> None:
        ran.append("first")
        entered.set()
        await release.wait()

    definition = (
        WorkflowBuilder(dict)
        .start_with(first)
        .then(lambda ctx: ran.append("second"))
        .build("fenced", 1)
    )
    wid = await engine.start(definition, {})
    stale = InstanceRun(engine.env, await store.claim_workflow(wid, 1), definition, 1)
    async with trio.open_nursery() as nursery:

        async def old_holder() -> None:
            with pytest.raises(StaleLeaseError):
                await stale.run()

        nursery.start_soon(old_holder)
        await entered.wait()
        newer = await store.claim_workflow(wid, 2)
        release.set()
    assert ran == ["first"]
    assert store.checkpoints == []
    await InstanceRun(engine.env, newer, definition, 2).run()
    assert ran == ["first", "first", "second"]
    assert (await store.get_workflow(wid)).status is WorkflowStatus.COMPLETE


async def test_a_stale_token_cannot_claim_again(
    engine: Engine, store: RecordingPersistence, autojump_clock: MockClock
) -> None:
    wid = await engine.start(recording_sequence([]), {})
    await store.claim_workflow(wid, 5)
    with pytest.raises(StaleLeaseError):
        await store.claim_workflow(wid, 4)


async def test_a_runnable_instance_with_every_pointer_complete_is_listed_and_completed(
    engine: Engine, store: RecordingPersistence, autojump_clock: MockClock
) -> None:
    """A state written as if a crash had come between the last step's result and its
    COMPLETE: the store lists it as runnable, and one pass completes it."""
    ran: list[str] = []
    definition = recording_sequence(ran)
    engine.definitions[(definition.id, definition.version)] = definition
    now = engine.clock.now()
    pointers = [
        ExecutionPointer(
            step_id=i,
            step_name=name,
            status=PointerStatus.COMPLETE,
            active=False,
            start_time=now,
            end_time=now,
            sequence=i + 1,
            end_sequence=i + 1,
        )
        for i, name in enumerate(STEPS)
    ]
    stranded = WorkflowInstance(
        definition_id=definition.id,
        version=definition.version,
        data={},
        next_execution=None,
        create_time=now,
        fingerprint=definition.fingerprint,
        execution_pointers=pointers,
    )
    wid = await store.create_workflow(stranded)
    assert await store.get_runnable_instances(now) == [wid]
    await engine.run_pass(wid)
    instance = await store.get_workflow(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.complete_time is not None
    assert ran == []
    assert await store.get_runnable_instances(engine.clock.now()) == []
