"""Expiring leases with fencing tokens on Valkey/Redis.

Keys (under the provider's prefix): ``lock:<resource>`` holds the current lease's owner
token with a millisecond TTL (``SET NX PX``); ``fence:<resource>`` holds the last fencing
token issued for the resource. Each operation is one Lua script, so acquiring, counting
and setting the TTL are one atomic step on the server.

Fencing tokens come from the server's clock: a new token is the larger of the server's
time in microseconds and the resource's last token plus one. They grow strictly per
resource while ``fence:<resource>`` lives (the lease TTL plus ten minutes after the last
acquire or renew), and stay above every earlier token after that key has expired — and
after a restart that lost every key — as long as the server's clock does not step back.
So a store that has recorded a token never refuses the next holder's claim because the
lock server forgot its counter. Tokens are ~1.8e15: stores keep them as 64-bit integers.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from wfe.core import ConfigurationError, ProviderError
from wfe.core.protocols import Lease

from ._base import ValkeyProvider
from ._connection import is_connection_error, log

_FENCE_RETENTION_MS = 600_000

_ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return false
end
local now = redis.call('TIME')
local token = tonumber(now[1]) * 1000000 + tonumber(now[2])
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if last >= token then
  token = last + 1
end
redis.call('SET', KEYS[2], string.format('%.0f', token), 'PX', ARGV[2] + ARGV[3])
return {token, now[1], now[2]}
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2] + ARGV[3])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class ValkeyLockProvider(ValkeyProvider):
    """A :class:`~wfe.core.protocols.DistributedLockProvider` on Valkey or Redis.

    ``ValkeyLockProvider("valkey://host:6379/0?prefix=app:")``; keywords: ``prefix``
    (default ``wfe:``), ``pool_size`` (connections and worker threads, default 16),
    ``socket_timeout``, ``socket_connect_timeout``, ``cluster`` and the ``ssl_*`` TLS
    options (see :mod:`wfe.valkey`). It also carries the cross-host
    change feed (see :mod:`wfe.valkey`), so a host configured with it wakes waiters
    for workflows that other hosts finish.
    """

    async def _opened(self) -> None:
        self._acquire = self._server.register_script(_ACQUIRE)
        self._renew = self._server.register_script(_RENEW)
        self._release = self._server.register_script(_RELEASE)

    def _keys(self, resource: str) -> list[str]:
        if not isinstance(resource, str) or not resource:
            raise ConfigurationError(
                f"a lock resource must be a non-empty string, got {resource!r}"
            )
        return [self.key("lock", resource), self.key("fence", resource)]

    async def acquire(self, resource: str, ttl: timedelta) -> Lease | None:
        """A lease on ``resource`` for ``ttl``, or ``None`` while another live lease
        holds it. Never waits for the holder."""
        ttl_ms = _ttl_ms(ttl)
        keys = self._keys(resource)
        owner = secrets.token_hex(16)
        reply: Any = await self._server.run(
            lambda _c: self._acquire(keys=keys, args=[owner, ttl_ms, _FENCE_RETENTION_MS]),
            f"acquiring the lock {resource!r}",
        )
        if not reply:
            return None
        token, seconds, micros = (int(x) for x in reply)
        now = datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=micros)
        return Lease(
            resource=resource, owner=owner, fencing_token=token, ttl=ttl, expires_at=now + ttl
        )

    async def renew(self, lease: Lease) -> bool:
        """Extend a still-held lease by its ``ttl``; ``False`` (and no change) when it
        expired, was released or was taken over, or the server cannot be reached."""
        keys = self._keys(lease.resource)
        ttl_ms = _ttl_ms(lease.ttl)
        try:
            reply = await self._server.run(
                lambda _c: self._renew(keys=keys, args=[lease.owner, ttl_ms, _FENCE_RETENTION_MS]),
                f"renewing the lock {lease.resource!r}",
            )
        except ProviderError as exc:
            if exc.__cause__ is None or not is_connection_error(exc.__cause__):
                raise
            # Unreachable: the lease cannot be shown to be held, so it counts as lost
            # (the holder stops writing; the store fences it anyway).
            log.debug("%s", exc)
            return False
        return bool(reply)

    async def release(self, lease: Lease) -> None:
        """Give the lease up; harmless when it is no longer held by its owner."""
        keys = self._keys(lease.resource)
        await self._server.run(
            lambda _c: self._release(keys=keys[:1], args=[lease.owner]),
            f"releasing the lock {lease.resource!r}",
        )


def _ttl_ms(ttl: timedelta) -> int:
    if not isinstance(ttl, timedelta) or ttl < timedelta(milliseconds=1):
        raise ConfigurationError(f"lease ttl must be a timedelta of at least 1 ms, got {ttl!r}")
    return ttl // timedelta(milliseconds=1)
