"""Providers with a change feed wake this host's waiters for changes made elsewhere."""

from __future__ import annotations

from collections.abc import Callable

import trio

from wfe.core import LifecycleEvent, WorkflowBuilder, WorkflowCompleted, WorkflowStarted
from wfe.core.memory import MemoryLockProvider
from wfe.core.protocols import WorkflowChangeFeed
from wfe.host import WorkflowHostBuilder


class Feed:
    """A publisher whose feed the test drives by hand."""

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0
        self.changed: Callable[[str], None] | None = None
        self.ready = trio.Event()

    async def publish(self, event: LifecycleEvent) -> None:
        return None

    async def watch_workflows(self, changed: Callable[[str], None]) -> None:
        self.started += 1
        self.changed = changed
        self.ready.set()
        try:
            await trio.sleep_forever()
        finally:
            self.cancelled += 1


def test_feed_is_a_change_feed() -> None:
    assert isinstance(Feed(), WorkflowChangeFeed)


async def test_each_distinct_feed_runs_once_for_the_host_and_stops_with_it() -> None:
    feed = Feed()
    builder = WorkflowHostBuilder().lifecycle_publisher(feed).lifecycle_publisher(feed)
    async with builder.build():
        await feed.ready.wait()
        assert feed.started == 1
    assert feed.cancelled == 1


class PublishingLocks(MemoryLockProvider):
    """A lock provider that also publishes lifecycle events (as wfe-valkey's does)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[LifecycleEvent] = []

    async def publish(self, event: LifecycleEvent) -> None:
        self.events.append(event)


async def test_lock_and_queue_providers_that_publish_get_lifecycle_events() -> None:
    locks = PublishingLocks()
    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("pub", 1)
    async with WorkflowHostBuilder().locks(locks).register(definition).build() as host:
        wid = await host.start_workflow("pub", 1, {})
        await host.wait_for_workflow(wid, timeout=30)
        with trio.fail_after(30):
            while not any(isinstance(e, WorkflowCompleted) for e in locks.events):
                await trio.sleep(0.01)
    assert isinstance(locks.events[0], WorkflowStarted)
    assert {e.workflow_id for e in locks.events} == {wid}


class PooledPublisher:
    """A publisher holding a resource, as wfe-valkey's does: usable only while entered."""

    def __init__(self) -> None:
        self.entered = 0
        self.exited = 0
        self.events: list[LifecycleEvent] = []

    async def __aenter__(self) -> PooledPublisher:
        self.entered += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.exited += 1

    async def publish(self, event: LifecycleEvent) -> None:
        assert self.entered > self.exited, "published to while not open"
        self.events.append(event)


async def test_a_publisher_that_is_a_resource_opens_and_closes_with_the_host_once() -> None:
    publisher = PooledPublisher()
    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("pooled", 1)
    builder = (
        WorkflowHostBuilder()
        .lifecycle_publisher(publisher)
        .lifecycle_publisher(publisher)
        .register(definition)
    )
    async with builder.build() as host:
        assert (publisher.entered, publisher.exited) == (1, 0)
        wid = await host.start_workflow("pooled", 1, {})
        await host.wait_for_workflow(wid, timeout=10)
        with trio.fail_after(10):
            while not any(isinstance(e, WorkflowCompleted) for e in publisher.events):
                await trio.sleep(0.01)
    assert (publisher.entered, publisher.exited) == (1, 1)
