"""A lifecycle event publisher that remembers every event, for tests and tools."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

import trio

from .._lifecycle import LifecycleEvent


class MemoryLifecycleEventPublisher:
    """Keeps published lifecycle events in order and lets any number of subscribers
    iterate them (from the first event, then live) until the publisher is closed."""

    def __init__(self) -> None:
        self._events: list[LifecycleEvent] = []
        self._changed = trio.Event()
        self._closed = False

    async def __aenter__(self) -> Self:
        await trio.lowlevel.checkpoint()
        self._closed = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await trio.lowlevel.checkpoint()
        self.close()

    @property
    def events(self) -> list[LifecycleEvent]:
        """A copy of every event published so far, in order."""
        return list(self._events)

    async def publish(self, event: LifecycleEvent) -> None:
        """Record ``event`` and wake subscribers."""
        await trio.lowlevel.checkpoint()
        self.publish_nowait(event)

    def publish_nowait(self, event: LifecycleEvent) -> None:
        """Record ``event`` and wake subscribers, without a checkpoint."""
        self._events.append(event)
        self._wake()

    def close(self) -> None:
        """End every subscription once it has yielded the events published so far."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def subscribe(self, *, replay: bool = True) -> AsyncIterator[LifecycleEvent]:
        """Iterate events: those already published (when ``replay``; otherwise from the
        moment of this call), then new ones as they are published, until :meth:`close`
        (or leaving ``async with``)."""
        return self._iterate(0 if replay else len(self._events))

    async def _iterate(self, position: int) -> AsyncIterator[LifecycleEvent]:
        while True:
            while position < len(self._events):
                event = self._events[position]
                position += 1
                yield event
            if self._closed:
                return
            await self._changed.wait()
