"""In-memory work queues: FIFO per kind, coalescing, redelivery of un-acked items."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from .._errors import ConfigurationError
from .._models import new_id
from ..protocols import QueueItem, QueueKind
from ._base import InProcess


@attrs.define
class _InFlight:
    kind: QueueKind
    item_id: str
    deadline: float  # time.monotonic()


def _check_timeout(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(
            f"visibility_timeout must be a positive number of seconds, got {value!r}"
        )
    return float(value)


@attrs.define
class QueueState:
    """The shared state of every queue provider over one store."""

    visibility_timeout: float = attrs.field(default=30.0, converter=_check_timeout)
    waiting: dict[QueueKind, deque[str]] = attrs.field(factory=dict)
    waiting_ids: dict[QueueKind, set[str]] = attrs.field(factory=dict)
    in_flight: dict[str, _InFlight] = attrs.field(factory=dict)
    changed: trio.Event = attrs.field(factory=trio.Event)

    def push(self, kind: QueueKind, item_id: str, *, front: bool = False) -> None:
        ids = self.waiting_ids.setdefault(kind, set())
        if item_id in ids:
            return  # already waiting: one delivery covers both
        ids.add(item_id)
        queue = self.waiting.setdefault(kind, deque())
        if front:
            queue.appendleft(item_id)
        else:
            queue.append(item_id)
        self.changed.set()

    def redeliver_expired(self) -> float:
        """Put expired in-flight items back (at the front); returns the next deadline."""
        now = time.monotonic()
        next_deadline = math.inf
        expired = []
        for receipt, flight in self.in_flight.items():
            if flight.deadline <= now:
                expired.append(receipt)
            else:
                next_deadline = min(next_deadline, flight.deadline)
        for receipt in reversed(expired):
            flight = self.in_flight.pop(receipt)
            self.push(flight.kind, flight.item_id, front=True)
        return next_deadline

    def pop(self, kind: QueueKind) -> QueueItem | None:
        queue = self.waiting.get(kind)
        if not queue:
            return None
        item_id = queue.popleft()
        self.waiting_ids[kind].discard(item_id)
        receipt = new_id()
        deadline = time.monotonic() + self.visibility_timeout
        self.in_flight[receipt] = _InFlight(kind, item_id, deadline)
        return QueueItem(kind=kind, item_id=item_id, receipt=receipt)

    def wait_event(self) -> trio.Event:
        if self.changed.is_set():
            self.changed = trio.Event()
        return self.changed


class MemoryQueueProvider(InProcess):
    """A :class:`~wfe.core.protocols.QueueProvider` for one process.

    ``dequeue`` wakes as soon as an item is enqueued. An item not acked within
    ``visibility_timeout`` seconds (real time) is delivered again.
    """

    def __init__(self, *, visibility_timeout: float = 30.0) -> None:
        self._state = QueueState(visibility_timeout=visibility_timeout)

    @classmethod
    def sharing(cls, state: QueueState) -> MemoryQueueProvider:
        """A provider over existing queue state."""
        provider = cls(visibility_timeout=state.visibility_timeout)
        provider._state = state
        return provider

    @classmethod
    def from_url(cls, url: str = "memory://", **options: Any) -> MemoryQueueProvider:
        """Entry-point factory for the ``memory`` scheme (the URL carries nothing)."""
        return cls(**options)

    @property
    def visibility_timeout(self) -> float:
        """Seconds an item may stay un-acked before it is delivered again."""
        return self._state.visibility_timeout

    async def enqueue(self, kind: QueueKind, item_id: str) -> None:
        """Add ``item_id`` to the ``kind`` queue (coalesced if already waiting)."""
        await trio.lowlevel.checkpoint()
        self._state.push(QueueKind(kind), item_id)

    async def enqueue_many(self, kind: QueueKind, item_ids: Sequence[str]) -> None:
        """Add every id of ``item_ids`` to the ``kind`` queue, in order."""
        await trio.lowlevel.checkpoint()
        for item_id in item_ids:
            self._state.push(QueueKind(kind), item_id)

    async def dequeue(self, kind: QueueKind, timeout: float) -> QueueItem | None:
        """The next item of ``kind``, waiting up to ``timeout`` seconds; ``None`` if empty."""
        items = await self.dequeue_many(kind, 1, timeout)
        return items[0] if items else None

    async def dequeue_many(self, kind: QueueKind, limit: int, timeout: float) -> list[QueueItem]:
        """Up to ``limit`` items of ``kind``, waiting up to ``timeout`` seconds for the
        first; empty if none came."""
        kind = QueueKind(kind)
        if not limit >= 1:
            raise ConfigurationError(f"dequeue_many limit must be at least 1, got {limit!r}")
        await trio.lowlevel.checkpoint()
        deadline = trio.current_time() + max(timeout, 0.0)
        while True:
            next_redelivery = self._state.redeliver_expired()
            items: list[QueueItem] = []
            while len(items) < limit:
                item = self._state.pop(kind)
                if item is None:
                    break
                items.append(item)
            if items:
                return items
            remaining = deadline - trio.current_time()
            if remaining <= 0:
                return []
            wait = min(remaining, max(next_redelivery - time.monotonic(), 0.0))
            changed = self._state.wait_event()
            with trio.move_on_after(wait):
                await changed.wait()

    async def ack(self, item: QueueItem) -> None:
        """Confirm ``item`` was handled; unknown or repeated receipts are ignored."""
        await self.ack_many([item])

    async def ack_many(self, items: Sequence[QueueItem]) -> None:
        """:meth:`ack` of every item of ``items``."""
        await trio.lowlevel.checkpoint()
        for item in items:
            self._state.in_flight.pop(item.receipt, None)
