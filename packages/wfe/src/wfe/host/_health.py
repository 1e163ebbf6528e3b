"""How a running host reports failing store calls, and how its loops retry them.

A store that fails for a while (a full disk, a database restarting) must not end the
host: each background loop (queue consumers, the poller, timers, indexing, lease
renewal) retries a failing call with capped exponential backoff, logs the first
failure of a streak and its recovery (with the count: not one line per retry), and
counts it in :meth:`WorkflowHost.statistics`. Only :class:`~wfe.core.StoreLostError`
(the store is no longer the one opened) is fatal: it stops the host.
"""

from __future__ import annotations

import logging
from datetime import datetime

import attrs
import trio

from wfe.core import Clock, ProviderError, StoreLostError

log = logging.getLogger("wfe.host")

BACKOFF_FIRST = 0.05
"""Seconds before the first retry of a failing loop; doubled per failure."""
BACKOFF_MAX = 2.0
"""The longest wait between retries: a store that comes back is used within it."""
QUIET = 5.0
"""Seconds without a new failure after which a loop is no longer reported failing: a
loop that runs only now and then (lease renewal) may not call again to end its streak."""


@attrs.frozen(kw_only=True)
class HostStatistics:
    """A snapshot of a running host's health (see :meth:`WorkflowHost.statistics`)."""

    running_workflows: int
    """Instances this host is running now."""
    failing: dict[str, int]
    """The background loops failing now (their latest call failed, within the last few
    seconds), each with its failures in a row."""
    store_errors: int
    """Failed store calls of the background loops since the host started."""
    last_error: str | None
    """The latest of them: which loop, and the error's message."""
    last_error_time: datetime | None
    """When it happened (by the host's clock)."""

    @property
    def healthy(self) -> bool:
        """Whether no loop is failing now."""
        return not self.failing


def lost_store(exc: BaseException) -> StoreLostError | None:
    """The :class:`StoreLostError` that ``exc`` is or holds (in exception groups)."""
    if isinstance(exc, StoreLostError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        group, _ = exc.split(StoreLostError)
        found: BaseException | None = group
        while isinstance(found, BaseExceptionGroup):
            found = found.exceptions[0]
        return found if isinstance(found, StoreLostError) else None
    return None


def store_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is (or holds only) provider errors: the store failing, not a bug."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(ProviderError)[1] is None
    return isinstance(exc, ProviderError)


class Health:
    """The failure streaks of one host's loops."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._streaks: dict[str, int] = {}
        self._last: dict[str, float] = {}  # trio time of each loop's latest failure
        self.store_errors = 0
        self.last_error: str | None = None
        self.last_error_time: datetime | None = None

    def failed(self, loop: str, exc: BaseException) -> float:
        """Record a failure of ``loop``; returns the seconds to wait before retrying.
        Re-raises :class:`StoreLostError`: nothing can be retried then."""
        lost = lost_store(exc)
        if lost is not None:
            raise lost
        count = self._streaks.get(loop, 0) + 1
        self._streaks[loop] = count
        self._last[loop] = trio.current_time()
        self.store_errors += 1
        while isinstance(exc, BaseExceptionGroup):  # a run's nursery: say what failed
            exc = exc.exceptions[0]
        self.last_error = f"{loop}: {exc}"
        self.last_error_time = self._clock.now()
        if count == 1:
            log.warning(
                "%s failed: %s; retrying with backoff (logged again when it recovers)", loop, exc
            )
        return min(BACKOFF_FIRST * 2.0 ** (count - 1), BACKOFF_MAX)

    def work_failed(self, loop: str, exc: BaseException, what: str) -> None:
        """One piece of work (a queue item, a run) failed: a lost store is re-raised
        (fatal: the host stops with it); the store failing for a while counts in
        ``loop``'s streak (logged once per streak, not once per item); anything else
        is logged with its traceback as ``what`` failed. Either way the store still
        holds the work, and the poller offers it again."""
        lost = lost_store(exc)
        if lost is not None:
            raise lost from None
        if store_failure(exc):
            self.failed(loop, exc)
        else:
            log.error("%s failed", what, exc_info=exc)

    def succeeded(self, loop: str) -> None:
        """``loop``'s call worked: end its failure streak, if any."""
        if self._streaks:
            count = self._streaks.pop(loop, 0)
            if count:
                log.warning("%s works again after %d failed attempt(s)", loop, count)

    def snapshot(self, running: int) -> HostStatistics:
        since = trio.current_time() - QUIET
        return HostStatistics(
            running_workflows=running,
            failing={k: n for k, n in self._streaks.items() if self._last[k] > since},
            store_errors=self.store_errors,
            last_error=self.last_error,
            last_error_time=self.last_error_time,
        )
