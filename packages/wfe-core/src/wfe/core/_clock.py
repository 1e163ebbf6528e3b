"""The one clock the engine reads time through, so tests can run on virtual time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import attrs
import trio


@runtime_checkable
class Clock(Protocol):
    """Wall-clock time for timestamps and timers."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return at (or just after) ``when``."""
        ...


class SystemClock:
    """Real time: ``datetime.now(UTC)`` and ``trio.sleep``."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        await trio.sleep(max(delay, 0.0))


@attrs.define
class TrioClock:
    """Wall time derived from trio's clock: with ``trio.testing.MockClock`` (for example
    ``autojump_threshold=0``) delays, retries and schedules run in virtual time.

    ``start`` is the wall time at trio time 0.
    """

    start: datetime = attrs.field(factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))

    def now(self) -> datetime:
        from datetime import timedelta

        return self.start + timedelta(seconds=trio.current_time())

    async def sleep_until(self, when: datetime) -> None:
        await trio.sleep_until((when - self.start).total_seconds())
