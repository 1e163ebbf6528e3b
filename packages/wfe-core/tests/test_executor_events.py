"""wait_for and events: pending events, earliest eligible first, no replay, effective
dates, cancelled waits, and delivery into a held run."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest
import trio
from core_engine import Engine, RecordingPersistence
from trio.testing import MockClock

from wfe.core import (
    EventSubscription,
    PointerStatus,
    ProviderError,
    StepExecutionContext,
    WorkflowBuilder,
    WorkflowDefinition,
    WorkflowStatus,
)
from wfe.core.executor import EVERY_EVENT, InstanceRun
from wfe.core.protocols import EventDelivery


def approval(key: Any = "k") -> WorkflowDefinition:
    return (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .wait_for("approved", key)
        .output("answer", lambda step: step.event_data)
        .build("approval", 1)
    )


async def test_wait_for_parks_until_the_event_and_outputs_its_data(
    engine: Engine, autojump_clock: MockClock
) -> None:
    wid = await engine.start(approval(), {})
    parked = await engine.run(wid)
    assert parked.status is WorkflowStatus.RUNNABLE
    assert parked.next_execution is None
    assert parked.execution_pointers[-1].status is PointerStatus.WAITING_FOR_EVENT
    await engine.publish("approved", "k", {"ok": True})
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data == {"answer": {"ok": True}}


async def test_event_published_before_the_wait_is_not_lost(
    engine: Engine, autojump_clock: MockClock
) -> None:
    await engine.publish("approved", "k", "early")
    wid = await engine.start(approval(), {})
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data == {"answer": "early"}


async def test_key_from_a_function_of_the_context(
    engine: Engine, autojump_clock: MockClock
) -> None:
    wid = await engine.start(approval(lambda data, ctx: f"order-{ctx.workflow.id}"), {})
    await engine.run(wid)
    await engine.publish("approved", "order-other", "not mine")
    assert (await engine.run(wid)).status is WorkflowStatus.RUNNABLE
    await engine.publish("approved", f"order-{wid}", "mine")
    assert (await engine.run(wid)).data == {"answer": "mine"}


async def test_an_event_with_another_name_or_key_is_not_delivered(
    engine: Engine, autojump_clock: MockClock
) -> None:
    wid = await engine.start(approval(), {})
    await engine.run(wid)
    await engine.publish("approved", "other", 1)
    await engine.publish("rejected", "k", 2)
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.RUNNABLE
    assert len(await engine.persistence.get_pending_events("approved", "other", EVERY_EVENT)) == 1


async def test_subscription_takes_the_earliest_pending_event(
    engine: Engine, autojump_clock: MockClock
) -> None:
    await engine.publish("approved", "k", "first")
    await engine.advance(timedelta(minutes=1))
    await engine.publish("approved", "k", "second")
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .wait_for("approved", "k")
        .output("one", lambda step: step.event_data)
        .wait_for("approved", "k")
        .output("two", lambda step: step.event_data)
        .build("two-waits", 1)
    )
    wid = await engine.start(definition, {})
    instance = await engine.run(wid)
    assert instance.data == {"one": "first", "two": "second"}


async def test_a_loop_around_wait_for_does_not_replay_a_delivered_event(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .while_do(
            lambda data: len(data["got"]) < 3,
            lambda b: (
                b.start_with(lambda ctx: None)
                .wait_for("tick", "k")
                .output(lambda step, data: data["got"].append(step.event_data))
            ),
        )
        .build("loop-wait", 1)
    )
    wid = await engine.start(definition, {"got": []})
    await engine.publish("tick", "k", 1)
    parked = await engine.run(wid)
    assert parked.data == {"got": [1]}
    assert parked.status is WorkflowStatus.RUNNABLE
    await engine.publish("tick", "k", 2)
    assert (await engine.run(wid)).data == {"got": [1, 2]}
    await engine.publish("tick", "k", 3)
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data == {"got": [1, 2, 3]}


async def test_effective_date_ignores_events_published_before_it(
    engine: Engine, autojump_clock: MockClock
) -> None:
    start = engine.clock.now()
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .wait_for("price", "k", effective_date=lambda data: start + timedelta(hours=1))
        .output("price", lambda step: step.event_data)
        .build("effective", 1)
    )
    await engine.publish("price", "k", "stale")
    wid = await engine.start(definition, {})
    assert (await engine.run(wid)).status is WorkflowStatus.RUNNABLE
    await engine.advance(timedelta(hours=2))
    await engine.publish("price", "k", "fresh")
    instance = await engine.run(wid)
    assert instance.data == {"price": "fresh"}
    [stale] = await engine.persistence.get_pending_events("price", "k", EVERY_EVENT)
    assert stale.data == "stale"


async def test_an_event_dated_in_the_future_is_delivered_from_that_time_on(
    engine: Engine, autojump_clock: MockClock
) -> None:
    wid = await engine.start(approval(), {})
    await engine.run(wid)
    await engine.publish(
        "approved", "k", "later", effective_date=engine.clock.now() + timedelta(days=1)
    )
    assert (await engine.run(wid)).status is WorkflowStatus.RUNNABLE
    await engine.advance(timedelta(days=1))
    assert (await engine.run(wid)).data == {"answer": "later"}


async def test_one_event_reaches_every_waiting_workflow(
    engine: Engine, autojump_clock: MockClock
) -> None:
    first = await engine.start(approval(), {})
    second = await engine.start(approval(), {})
    await engine.run(first)
    await engine.run(second)
    event_id = await engine.publish("approved", "k", "all")
    assert (await engine.run(first)).data == {"answer": "all"}
    assert (await engine.run(second)).data == {"answer": "all"}
    assert (await engine.persistence.get_event(event_id)).processed


async def test_a_cancelled_wait_ignores_later_events(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .parallel()
        .do(
            lambda b: (
                b.start_with(lambda ctx: None)
                .wait_for("go", "k", cancel_condition=lambda data: data.get("stop", False))
                .name("Wait")
                .output("got", lambda step: step.event_data)
            )
        )
        .do(lambda b: b.start_with(lambda ctx: ctx.workflow.data.update(stop=True)))
        .join()
        .build("cancel-wait", 1)
    )
    wid = await engine.start(definition, {})
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    wait = next(p for p in instance.execution_pointers if p.step_name == "Wait")
    assert wait.status is PointerStatus.CANCELLED
    assert await engine.persistence.get_subscriptions("go", "k", engine.clock.now()) == []
    event_id = await engine.publish("go", "k", "too late")
    assert await engine.deliver_events() == 0
    assert not (await engine.persistence.get_event(event_id)).processed
    assert "got" not in (await engine.persistence.get_workflow(wid)).data


async def test_store_delivery_to_a_closed_subscription_changes_nothing(
    engine: Engine, autojump_clock: MockClock
) -> None:
    wid = await engine.start(approval(), {})
    await engine.run(wid)
    [sub] = await engine.persistence.get_subscriptions("approved", "k", engine.clock.now())
    first = await engine.publish("approved", "k", 1)
    second = await engine.publish("approved", "k", 2)

    def delivery(event_id: str) -> EventDelivery:
        return EventDelivery(
            event_id=event_id,
            subscription_id=sub.id,
            workflow_id=wid,
            pointer_id=sub.pointer_id,
            time=engine.clock.now(),
        )

    assert await engine.persistence.deliver_event(delivery(first))
    assert not await engine.persistence.deliver_event(delivery(second))
    assert not (await engine.persistence.get_event(second)).processed
    assert (await engine.run(wid)).data == {"answer": 1}


async def test_event_delivered_to_a_held_run_continues_in_the_same_pass(
    engine: Engine, autojump_clock: MockClock
) -> None:
    """While a run holds the instance (another branch is still busy), ``deliver_event``
    hands the event to it directly: the waiting branch finishes within that pass."""
    busy = trio.Event()
    release = trio.Event()

    async def slow(ctx: StepExecutionContext) -> None:
        busy.set()
        await release.wait()

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .parallel()
        .do(
            lambda b: (
                b.start_with(lambda ctx: None)
                .wait_for("go", "k")
                .output("got", lambda step: step.event_data)
            )
        )
        .do(lambda b: b.start_with(slow))
        .join()
        .build("held", 1)
    )
    opened: list[EventSubscription] = []
    subscribed = trio.Event()

    async def on_subscribed(subs: list[EventSubscription], found: Mapping[str, str] | None) -> None:
        opened.extend(subs)
        subscribed.set()

    env = attrs.evolve(engine.env, on_subscribed=on_subscribed)
    wid = await engine.start(definition, {})
    store = engine.persistence
    async with engine.lease(wid) as token:
        instance = await store.claim_workflow(wid, token)
        run = InstanceRun(env, instance, definition, token)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run.run)
            await busy.wait()
            await subscribed.wait()  # the wait's checkpoint is stored
            event_id = await engine.publish("go", "k", "direct")
            event = await store.get_event(event_id)
            assert await run.deliver_event(opened[0], event, mark_processed=True)
            release.set()
    assert run.instance.status is WorkflowStatus.COMPLETE
    stored = await store.get_workflow(wid)
    assert stored.status is WorkflowStatus.COMPLETE
    assert stored.data == {"got": "direct"}
    assert (await store.get_event(event_id)).processed


async def test_an_event_dated_exactly_at_the_effective_date_is_taken(
    engine: Engine, autojump_clock: MockClock
) -> None:
    at = engine.clock.now() + timedelta(hours=1)
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .wait_for("e", "k", effective_date=at)
        .output("got", lambda step: step.event_data)
        .build("boundary", 1)
    )
    wid = await engine.start(definition, {})
    await engine.run(wid)
    await engine.publish("e", "k", "too early", effective_date=at - timedelta(microseconds=1))
    await engine.publish("e", "k", "exact", effective_date=at)
    await engine.advance(timedelta(hours=2))
    assert (await engine.run(wid)).data == {"got": "exact"}


async def test_two_waits_of_one_workflow_both_receive_one_event_exactly(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .parallel()
        .do(lambda b: b.start_with(lambda ctx: None).wait_for("e", "k").output("a", _event_data))
        .do(lambda b: b.start_with(lambda ctx: None).wait_for("e", "k").output("b", _event_data))
        .join()
        .build("two-waiters", 1)
    )
    wid = await engine.start(definition, {})
    await engine.run(wid)
    event_id = await engine.publish("e", "k", Decimal("1.10"))
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data == {"a": Decimal("1.10"), "b": Decimal("1.10")}
    assert str(instance.data["a"]) == "1.10"
    assert (await engine.persistence.get_event(event_id)).processed


def _event_data(step: Any) -> Any:
    return step.event_data


async def test_a_held_delivery_whose_write_fails_is_delivered_again(
    engine: Engine, store: RecordingPersistence, autojump_clock: MockClock
) -> None:
    definition = approval()
    wid = await engine.start(definition, {})
    await engine.run(wid)
    event_id = await engine.publish("approved", "k", 7)
    [sub] = await store.get_subscriptions("approved", "k", engine.clock.now())
    async with engine.lease(wid) as token:
        run = InstanceRun(engine.env, await store.claim_workflow(wid, token), definition, token)
        store.fail_at = store.attempts + 1
        with pytest.raises(ProviderError):
            await run.deliver_event(sub, await store.get_event(event_id), mark_processed=True)
    assert not (await store.get_event(event_id)).processed
    assert len(await store.get_subscriptions("approved", "k", engine.clock.now())) == 1
    assert (await engine.run(wid)).data == {"answer": 7}


async def test_a_delivery_wakes_a_run_sleeping_in_its_hold_window(
    engine: Engine, autojump_clock: MockClock
) -> None:
    """The run sleeps towards a wake within its hold window; an event delivered then is
    taken at once, not after the sleep."""
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .parallel()
        .do(
            lambda b: (
                b.start_with(lambda ctx: None)
                .wait_for("e", "k")
                .output(lambda step, data: data.update(at=trio.current_time()))
            )
        )
        .do(lambda b: b.start_with(lambda ctx: None).delay(timedelta(milliseconds=900)))
        .join()
        .build("hold-sleep", 1)
    )
    opened: list[EventSubscription] = []
    subscribed = trio.Event()

    async def on_subscribed(subs: list[EventSubscription], found: Mapping[str, str] | None) -> None:
        opened.extend(subs)
        subscribed.set()

    env = attrs.evolve(engine.env, on_subscribed=on_subscribed)
    wid = await engine.start(definition, {})
    async with engine.lease(wid) as token:
        run = InstanceRun(
            env, await engine.persistence.claim_workflow(wid, token), definition, token
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run.run)
            await subscribed.wait()
            await trio.sleep(0.1)  # virtual time: the run now sleeps towards 0.9
            event = await engine.persistence.get_event(await engine.publish("e", "k"))
            assert await run.deliver_event(opened[0], event, mark_processed=True)
    assert run.instance.status is WorkflowStatus.COMPLETE
    assert run.instance.data == {"at": 0.1}
