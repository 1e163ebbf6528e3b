"""Providers with a change feed wake this host's waiters for changes made elsewhere."""

from __future__ import annotations

from collections.abc import Callable

import trio

from wfe.core import LifecycleEvent
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
