"""In-process fan-out of lifecycle events, with a bounded replay history."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator

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

    async def iterate(self, replay: bool = True) -> AsyncIterator[LifecycleEvent]:
        position = self._count - len(self._events) if replay else self._count
        while True:
            first = self._count - len(self._events)
            position = max(position, first)
            while position < self._count:
                yield self._events[position - (self._count - len(self._events))]
                position += 1
            if self._closed:
                return
            await self._changed.wait()
