"""In-process fan-out of lifecycle events, with a bounded replay history."""

from __future__ import annotations

from collections import deque

import trio

from wfe.core import LifecycleEvent


class LifecycleHub:
    """Keeps the last ``history`` events and wakes every iterator on each new one."""

    def __init__(self, history: int = 10_000) -> None:
        self._events: deque[LifecycleEvent] = deque(maxlen=history)
        self._count = 0
        self._changed = trio.Event()
        self._closed = False

    def publish(self, event: LifecycleEvent) -> None:
        self._events.append(event)
        self._count += 1
        self._changed.set()
        self._changed = trio.Event()

    def close(self) -> None:
        self._closed = True
        self._changed.set()

    def iterate(self, replay: bool = True) -> LifecycleIterator:
        """An iterator over events (from the kept history with ``replay``), then live."""
        start = self._count - len(self._events) if replay else self._count
        return LifecycleIterator(self, start)


class LifecycleIterator:
    """Async iterator over a hub's events; ends when the hub closes. Breaking out of
    ``async for`` early is fine (it holds no resources)."""

    def __init__(self, hub: LifecycleHub, position: int) -> None:
        self._hub = hub
        self._position = position

    def __aiter__(self) -> LifecycleIterator:
        return self

    async def __anext__(self) -> LifecycleEvent:
        hub = self._hub
        while True:
            first = hub._count - len(hub._events)
            self._position = max(self._position, first)
            if self._position < hub._count:
                event = hub._events[self._position - first]
                self._position += 1
                await trio.lowlevel.checkpoint()
                return event
            if hub._closed:
                raise StopAsyncIteration
            await hub._changed.wait()
