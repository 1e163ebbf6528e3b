"""In-memory leases with fencing tokens; expiry measured on real (monotonic) time."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import attrs
import trio

from .._models import new_id, utcnow
from ..protocols import Lease
from ._base import InProcess


@attrs.define
class _Held:
    owner: str
    fencing_token: int
    expires: float  # time.monotonic()


@attrs.define
class LockTable:
    """The shared state of every lock provider over one store."""

    held: dict[str, _Held] = attrs.field(factory=dict)
    tokens: dict[str, int] = attrs.field(factory=dict)

    def current(self, resource: str) -> _Held | None:
        """The live holder of ``resource`` (expired holders are forgotten)."""
        held = self.held.get(resource)
        if held is not None and held.expires <= time.monotonic():
            del self.held[resource]
            return None
        return held

    def holds(self, lease: Lease) -> _Held | None:
        """The live entry of ``lease`` if it still holds its resource."""
        held = self.current(lease.resource)
        if held is None or held.owner != lease.owner:
            return None
        if held.fencing_token != lease.fencing_token:
            return None
        return held


class MemoryLockProvider(InProcess):
    """A :class:`~wfe.core.protocols.DistributedLockProvider` for one process.

    Leases expire on ``time.monotonic()`` (real time, independent of trio's clock), and
    each acquisition of a resource gets a fencing token greater than any before it.
    ``owner`` names this provider in its leases (default: a fresh random id).
    """

    def __init__(self, *, owner: str | None = None) -> None:
        self._table = LockTable()
        self.owner = owner or new_id()

    @classmethod
    def sharing(cls, table: LockTable, *, owner: str | None = None) -> MemoryLockProvider:
        """A provider (with its own owner id) over an existing lock table."""
        provider = cls(owner=owner)
        provider._table = table
        return provider

    @classmethod
    def from_url(cls, url: str = "memory://", **options: Any) -> MemoryLockProvider:
        """Entry-point factory for the ``memory`` scheme (the URL carries nothing)."""
        return cls(**options)

    async def acquire(self, resource: str, ttl: timedelta) -> Lease | None:
        """A lease on ``resource`` for ``ttl``, or ``None`` if a live lease holds it."""
        await trio.lowlevel.checkpoint()
        if self._table.current(resource) is not None:
            return None
        token = self._table.tokens.get(resource, 0) + 1
        self._table.tokens[resource] = token
        seconds = ttl.total_seconds()
        self._table.held[resource] = _Held(self.owner, token, time.monotonic() + seconds)
        return Lease(
            resource=resource,
            owner=self.owner,
            fencing_token=token,
            ttl=ttl,
            expires_at=utcnow() + ttl,
        )

    async def renew(self, lease: Lease) -> bool:
        """Extend a still-held lease by its ttl; ``False`` if it is no longer held."""
        await trio.lowlevel.checkpoint()
        held = self._table.holds(lease)
        if held is None:
            return False
        held.expires = time.monotonic() + lease.ttl.total_seconds()
        return True

    async def release(self, lease: Lease) -> None:
        """Give the resource up if ``lease`` still holds it; otherwise do nothing."""
        await trio.lowlevel.checkpoint()
        if self._table.holds(lease) is not None:
            del self._table.held[lease.resource]
