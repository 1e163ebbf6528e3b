"""Events, delays and parallel branches waiting on events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs
import trio

from wfe.core import PointerStatus, StepExecutionContext, WorkflowBuilder, WorkflowStatus

from .conftest import HostFactory


@attrs.define
class Keys:
    key1: str = "k1"
    key2: str = "k2"
    value1: Any = None
    value2: Any = None


@attrs.define
class Box:
    got: list[Any] = attrs.Factory(list)


def two_waits() -> Any:
    return (
        WorkflowBuilder(Keys)
        .start_with(lambda ctx: None)
        .wait_for("event1", lambda d: d.key1)
        .output("value1", lambda step: step.event_data)
        .wait_for("event2", lambda d: d.key2)
        .output("value2", lambda step: step.event_data)
        .build("events", 1)
    )


async def wait_until_waiting(host: Any, wid: str, count: int = 1) -> None:
    with trio.fail_after(10):
        while True:
            inst = await host.get_workflow(wid)
            waiting = [
                p for p in inst.execution_pointers if p.status is PointerStatus.WAITING_FOR_EVENT
            ]
            if len(waiting) >= count:
                return
            await trio.sleep(0.02)


async def test_event_waits_keyed_by_data(host_factory: HostFactory) -> None:
    """Event: two waits keyed by data receive events published after subscribing."""
    async with host_factory(two_waits()) as host:
        wid = await host.start_workflow("events", 1, Keys("a", "b"))
        await wait_until_waiting(host, wid)
        await host.publish_event("event1", "a", "pass1")
        await host.publish_event("event2", "b", {"n": 2})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.value1 == "pass1"
    assert instance.data.value2 == {"n": 2}


async def test_event_published_before_wait_is_not_lost(host_factory: HostFactory) -> None:
    """An event published before the workflow reaches its wait_for is delivered to it."""
    async with host_factory(two_waits()) as host:
        await host.publish_event("event2", "early2", "second")
        await host.publish_event("event1", "early1", "first")
        wid = await host.start_workflow("events", 1, Keys("early1", "early2"))
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert (instance.data.value1, instance.data.value2) == ("first", "second")


async def test_other_keys_do_not_match(host_factory: HostFactory) -> None:
    """An event with another key stays pending and does not wake the workflow."""
    async with host_factory(two_waits()) as host:
        wid = await host.start_workflow("events", 1, Keys("x", "y"))
        await wait_until_waiting(host, wid)
        await host.publish_event("event1", "not-x", 1)
        await host.publish_event("event1", "x", "right")
        # Were "not-x" accepted, it would be the earliest eligible event, taken instead.
        with trio.fail_after(10):
            while (instance := await host.get_workflow(wid)).data.value1 is None:
                await trio.sleep(0.02)
        assert instance.status is WorkflowStatus.RUNNABLE
        assert instance.data.value1 == "right"


async def test_loop_around_wait_does_not_replay_events(host_factory: HostFactory) -> None:
    """A wait_for inside a loop takes each event once, earliest first (no replays)."""

    definition = (
        WorkflowBuilder(Box)
        .start_with(lambda ctx: None)
        .while_do(
            lambda d: len(d.got) < 3,
            lambda b: b.wait_for("tick", "k").output(
                lambda step, data: data.got.append(step.event_data)
            ),
        )
        .build("ticks", 1)
    )
    async with host_factory(definition) as host:
        await host.publish_event("tick", "k", 1)
        await host.publish_event("tick", "k", 2)
        wid = await host.start_workflow("ticks", 1, Box())
        # Each wait is stored before the host hands it a pending event: wait for both.
        with trio.fail_after(10):
            while len((instance := await host.get_workflow(wid)).data.got) < 2:
                await trio.sleep(0.02)
        assert instance.data.got == [1, 2]
        await host.publish_event("tick", "k", 3)
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.data.got == [1, 2, 3]


async def test_effective_date_ignores_older_events(host_factory: HostFactory) -> None:
    """With an effective date, only events at or after it are accepted."""
    async with host_factory() as host:
        now = host.clock.now()
        definition = (
            WorkflowBuilder(dict)
            .start_with(lambda ctx: None)
            .wait_for("e", "k", effective_date=lambda d: now)
            .output("v", lambda step: step.event_data)
            .build("effective", 1)
        )
        host.register(definition)
        await host.publish_event("e", "k", "old", effective_date=now - timedelta(minutes=1))
        wid = await host.start_workflow("effective", 1, {})
        await wait_until_waiting(host, wid)
        assert (await host.get_workflow(wid)).status is WorkflowStatus.RUNNABLE
        await host.publish_event("e", "k", "new")
        instance = await host.wait_for_workflow(wid, timeout=10)
    # Were "old" accepted, it would be the earliest eligible event, taken instead.
    assert instance.data == {"v": "new"}


async def test_parallel_join_waits_for_all_branches(host_factory: HostFactory) -> None:
    """Parallel: one branch waits for an event; the join waits for every branch."""
    order: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .parallel()
        .do(
            lambda b: b.start_with(lambda ctx: order.append("a1")).then(
                lambda c: order.append("a2")
            )
        )
        .do(
            lambda b: (
                b.start_with(lambda ctx: order.append("b1"))
                .wait_for("go", "1")
                .then(lambda ctx: order.append("b2"))
            )
        )
        .do(lambda b: b.start_with(lambda ctx: order.append("c1")))
        .join()
        .then(lambda ctx: order.append("joined"))
        .build("parallel-event", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("parallel-event", 1, {})
        await wait_until_waiting(host, wid)
        assert "joined" not in order
        await host.publish_event("go", "1")
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    # A join that did not wait for the waiting branch would come before its "b2".
    assert order[-1] == "joined"
    assert sorted(order[:-1]) == ["a1", "a2", "b1", "b2", "c1"]


async def test_delay_wakes_on_time_not_on_poll(host_factory: HostFactory) -> None:
    """Delay: a 300 ms delay wakes after ~300 ms, far sooner than the 1 s poll interval."""
    stamps: list[float] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: stamps.append(trio.current_time()))
        .delay(timedelta(milliseconds=300))
        .then(lambda ctx: stamps.append(trio.current_time()))
        .build("delay", 1)
    )

    def slow_poll(builder: Any) -> None:
        builder.poll_interval(timedelta(seconds=30))

    async with host_factory(definition, configure=slow_poll) as host:
        wid = await host.start_workflow("delay", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert 0.29 <= stamps[1] - stamps[0] < 1.5


async def test_long_delay_released_and_woken_by_timer(host_factory: HostFactory) -> None:
    """A delay longer than the hold window is persisted, released and woken by a timer."""
    ran: list[str] = []

    def step(ctx: StepExecutionContext) -> None:
        ran.append("after")

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .delay(timedelta(seconds=1.5))
        .then(step)
        .build("delay-long", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("delay-long", 1, {})
        with trio.fail_after(10):
            while True:
                sleeping = await host.get_workflow(wid)
                if any(p.status is PointerStatus.SLEEPING for p in sleeping.execution_pointers):
                    break
                await trio.sleep(0.02)
        assert sleeping.next_execution is not None
        assert ran == []
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert ran == ["after"]
    assert instance.status is WorkflowStatus.COMPLETE


async def test_future_dated_event_is_delivered_at_its_time(host_factory: HostFactory) -> None:
    """An event published with a future effective date reaches a waiting workflow only
    from that time on."""
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .wait_for("later", "k")
        .output("got", lambda step: step.event_data)
        .build("future-event", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("future-event", 1, {})
        await wait_until_waiting(host, wid)
        start = trio.current_time()
        await host.publish_event(
            "later", "k", 7, effective_date=host.clock.now() + timedelta(seconds=0.6)
        )
        instance = await host.wait_for_workflow(wid, timeout=10)
        elapsed = trio.current_time() - start
    assert instance.data == {"got": 7}
    # Not delivered before its effective date: the workflow cannot have finished earlier.
    assert 0.55 <= elapsed < 3
