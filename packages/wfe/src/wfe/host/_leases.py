"""Renewing the leases of this host's runs, all from one task.

A run holds its workflow's lease for as long as its pass lasts; most passes last
milliseconds, a long step minutes. A renewal task per run cost a task, a nursery and a
cancellation every pass (~9 % of a short workflow's CPU); one keeper task renews every
held lease when it is due instead, each renewal in a task of its own only when it is
due (every third of the lease's ttl), so a slow store delays no other renewal.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from wfe.core.protocols import DistributedLockProvider, Lease

from ._health import Health

log = logging.getLogger("wfe.host")

INDEX_RUNNING_AFTER = 0.2
"""Seconds after an eager start at which a workflow whose pass still runs is indexed
(it is indexed when its pass ends anyway)."""


class Hold:
    """Until when this host surely holds a lease, by the trio clock: measured from
    before each acquire or renew call, so it never outlasts the lease in the store. A
    host paused past it (SIGSTOP, a step blocking the loop) starts no further step."""

    def __init__(self, until: float) -> None:
        self.until = until

    def held(self) -> bool:
        return trio.current_time() < self.until


class _Held:
    """One run's lease as the keeper sees it."""

    __slots__ = ("busy", "due", "hold", "index", "lease", "scope")

    def __init__(
        self, lease: Lease, hold: Hold, scope: trio.CancelScope, due: float, index: str | None
    ) -> None:
        self.lease = lease
        self.hold = hold
        self.scope = scope
        self.due = due  # trio time of the next renewal (or index request)
        self.index = index  # a workflow id to index at ``due``, before any renewal
        self.busy = False  # a renewal of it is in flight


class LeaseKeeper:
    """Renews the leases registered with :meth:`keep` until they are dropped; a lease
    that cannot be renewed cancels its run's scope (another host may hold it)."""

    def __init__(
        self,
        locks: Callable[[], DistributedLockProvider],
        health: Health,
        request_index: Callable[[str], Awaitable[None]],
    ) -> None:
        self._locks = locks
        self._health = health
        self._request_index = request_index
        self._held: set[_Held] = set()
        self._wake = trio.Event()
        self._next = float("inf")

    def keep(
        self, lease: Lease, hold: Hold, scope: trio.CancelScope, index: str | None = None
    ) -> _Held:
        """Renew ``lease`` (asked for when ``hold`` began) while its run lasts;
        ``index``: a workflow to index if the run still lasts a moment from now."""
        now = trio.current_time()
        due = now + (min(INDEX_RUNNING_AFTER, _interval(lease)) if index else _interval(lease))
        held = _Held(lease, hold, scope, due, index)
        self._held.add(held)
        if due < self._next:
            self._wake.set()
        return held

    def drop(self, held: _Held) -> None:
        """The run has ended: stop renewing (its lease is released by the caller)."""
        self._held.discard(held)

    async def serve(self) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                now = trio.current_time()
                upcoming = float("inf")
                for held in list(self._held):
                    if held.busy:
                        continue
                    if held.due <= now:
                        held.busy = True
                        nursery.start_soon(self._renew, held)
                    elif held.due < upcoming:
                        upcoming = held.due
                self._next = upcoming
                self._wake = trio.Event()
                with trio.move_on_at(upcoming):
                    await self._wake.wait()

    async def _renew(self, held: _Held) -> None:
        try:
            if held.index is not None:
                workflow_id, held.index = held.index, None
                try:
                    await self._request_index(workflow_id)
                except Exception as exc:
                    self._health.work_failed(
                        "indexing workflows", exc, f"indexing workflow {workflow_id}"
                    )
                held.due = trio.current_time() + max(
                    _interval(held.lease) - INDEX_RUNNING_AFTER, 0.0
                )
                return
            await self._renew_once(held)
        finally:
            held.busy = False
            if held.due < self._next:
                self._wake.set()

    async def _renew_once(self, held: _Held) -> None:
        lease = held.lease
        interval = _interval(lease)
        asked = trio.current_time()
        try:
            renewed = await self._locks().renew(lease)
        except Exception as exc:
            # Unknown whether it was renewed: keep trying while the lease surely
            # lasts; past that, another host may hold it, so stop the run.
            retry = min(self._health.failed("renewing leases", exc), interval)
            if not held.hold.held():
                log.warning("could not renew the lease on %s; stopping its run", lease.resource)
                self._stop(held)
                return
            held.due = trio.current_time() + retry
            return
        self._health.succeeded("renewing leases")
        if not renewed:
            log.warning("lost the lease on %s; stopping its run", lease.resource)
            self._stop(held)
            return
        held.hold.until = asked + lease.ttl.total_seconds()
        held.due = asked + interval

    def _stop(self, held: _Held) -> None:
        # A lease dropped meanwhile (its run ended, or gave it up) stops nothing.
        if held in self._held:
            self._held.discard(held)
            held.scope.cancel()


def _interval(lease: Lease) -> float:
    return max(lease.ttl.total_seconds() / 3, 0.01)
