"""One task that wakes workflows when their sleep ends."""

from __future__ import annotations

import heapq
from collections.abc import Awaitable, Callable
from datetime import datetime

import trio

from wfe.core import Clock

from ._health import Health


class TimerWheel:
    """Calls ``fire(item_id)`` at the earliest time each item was scheduled for."""

    def __init__(
        self,
        clock: Clock,
        fire: Callable[[str], Awaitable[None]],
        health: Health | None = None,
        name: str = "timers",
    ) -> None:
        self._clock = clock
        self._fire = fire
        self._health = Health(clock) if health is None else health
        self._name = name
        self._heap: list[tuple[datetime, str]] = []
        self._due: dict[str, datetime] = {}
        self._changed = trio.Event()

    def schedule(self, item_id: str, when: datetime) -> None:
        current = self._due.get(item_id)
        if current is not None and current <= when:
            return
        self._due[item_id] = when
        heapq.heappush(self._heap, (when, item_id))
        self._changed.set()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            self._changed = trio.Event()
            now = self._clock.now()
            while self._heap and self._heap[0][0] <= now:
                when, item_id = heapq.heappop(self._heap)
                if self._due.get(item_id) == when:
                    del self._due[item_id]
                    try:
                        await self._fire(item_id)
                    except Exception as exc:
                        # A wake-up is a hint (the store keeps next_execution, and the
                        # poller finds due work): a store that is down for a while must
                        # not end the host's timers, and with them the host. Counted
                        # and logged once per streak; a lost store is re-raised.
                        self._health.failed(self._name, exc)
                    else:
                        self._health.succeeded(self._name)
            if not self._heap:
                await self._changed.wait()
                continue
            async with trio.open_nursery() as nursery:
                wake = self._heap[0][0]

                async def sleeper(
                    scope: trio.CancelScope = nursery.cancel_scope, wake: datetime = wake
                ) -> None:
                    await self._clock.sleep_until(wake)
                    scope.cancel()

                async def watcher(scope: trio.CancelScope = nursery.cancel_scope) -> None:
                    await self._changed.wait()
                    scope.cancel()

                nursery.start_soon(sleeper)
                nursery.start_soon(watcher)
