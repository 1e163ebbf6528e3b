"""Expiring leases with fencing tokens in a PostgreSQL table, shared by every host.

Why a table and not advisory locks: an advisory lock lives as long as the session that
took it, so a host paused past its lease (SIGSTOP, a step blocking its event loop) would
keep its lock, and nobody could take the instance over; holding one session per leased
instance would also cost a connection each. A lease row has an expiry on the server's
clock (so hosts need not agree on time) and a token counter that only grows, which the
store's fence compares. Acquire, renew and release are each one statement (one round
trip).
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta
from typing import Any

from wfe.core import ConfigurationError
from wfe.core.protocols import Lease

from . import _codec as c
from ._base import PostgresProvider, open_database
from ._database import ASYNC_COMMIT, Conn, Database

# The server's clock in microseconds since the epoch.
NOW_US = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"


def _acquire(resource: str, owner: str, ttl: str) -> str:
    """The acquire statement with these placeholders for its three parameters."""
    return (
        "INSERT INTO {s}.locks AS l (resource, owner, token, expires_at) "
        f"VALUES ({resource}, {owner}, 1, {NOW_US} + {ttl}) "
        "ON CONFLICT (resource) DO UPDATE SET owner = excluded.owner, token = l.token + 1, "
        "expires_at = excluded.expires_at "
        f"WHERE l.owner IS NULL OR l.expires_at <= {NOW_US} "
        "RETURNING token, expires_at"
    )


# Takes the lease unless a live one holds it: one row (token, expires_at), or none.
# Parameters: resource, owner, ttl (see acquire_params); also run as one part of a
# statement that stores a new workflow with its lease.
ACQUIRE = _acquire("%s", "%s", "%s")
# ... with named parameters (see acquire_keys), as one part of a delivery's statement.
ACQUIRE_NAMED = _acquire("%(lr)s", "%(lo)s", "%(lttl)s")
_RENEW = (
    f"UPDATE {{s}}.locks SET expires_at = {NOW_US} + %(ttl)s WHERE resource = %(r)s "
    f"AND owner = %(o)s AND token = %(t)s AND expires_at > {NOW_US} RETURNING expires_at"
)
# A release lost in a server crash leaves the lease to expire on its own (latency, never
# safety: the token counter is not touched, and the next acquisition's durable commit
# flushes the release with it), so it does not wait for the disk.
_RELEASE = (
    "UPDATE {s}.locks SET owner = NULL, expires_at = 0 "
    f"WHERE resource = %(r)s AND owner = %(o)s AND token = %(t)s AND {ASYNC_COMMIT}"
)


class PostgresLockProvider(PostgresProvider):
    """Exclusive leases on named resources, in the ``locks`` table of the schema.

    Expiry uses the database server's clock. Each resource's row keeps its token
    counter after release, so fencing tokens grow strictly with every acquisition,
    across hosts and restarts.
    """

    _owner: str

    def __init__(
        self,
        url: str = "postgresql://postgres@127.0.0.1:5432/postgres",
        *,
        schema: str | None = None,
        pool_size: int = 8,
        connect_timeout: float = 10.0,
        **options: Any,
    ) -> None:
        self._share(
            open_database(
                url,
                schema=schema,
                pool_size=pool_size,
                connect_timeout=connect_timeout,
                **options,
            )
        )

    def _share(self, db: Database) -> None:
        super()._share(db)
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._acquire = db.q(ACQUIRE)
        self._renew = db.q(_RENEW)
        self._release = db.q(_RELEASE)

    async def acquire(self, resource: str, ttl: timedelta) -> Lease | None:
        """A lease on ``resource`` for ``ttl``, or ``None`` while another live lease
        holds it. Never waits for the holder."""
        params = self.acquire_params(resource, ttl)

        def run(conn: Conn) -> tuple[int, int] | None:
            return conn.execute(self._acquire, params).fetchone()

        return self.lease_of(resource, ttl, await self._db.run(run))

    def acquire_params(self, resource: str, ttl: timedelta) -> tuple[str | None, str, int]:
        """The parameters of :data:`ACQUIRE` for this provider's lease on
        ``resource`` (checked: bad values raise ``ConfigurationError``)."""
        return (c.text(resource, "the lock resource"), self._owner, _ttl_us(ttl))

    def acquire_keys(self, resource: str, ttl: timedelta) -> dict[str, Any]:
        """The named parameters of :data:`ACQUIRE_NAMED` (as :meth:`acquire_params`)."""
        r, o, t = self.acquire_params(resource, ttl)
        return {"lr": r, "lo": o, "lttl": t}

    def lease_of(self, resource: str, ttl: timedelta, row: Any) -> Lease | None:
        """The lease that a ``(token, expires_at)`` row of the acquire statement gives;
        ``None`` for no row (a live lease holds ``resource``)."""
        if row is None:
            return None
        return Lease(
            resource=resource,
            owner=self._owner,
            fencing_token=row[0],
            ttl=ttl,
            expires_at=c.from_us(row[1]),
        )

    async def renew(self, lease: Lease) -> bool:
        """Extend a still-held lease by its ``ttl``; ``False`` (and no change) when it
        expired, was released or was taken over."""
        params = {
            "r": lease.resource,
            "o": lease.owner,
            "t": lease.fencing_token,
            "ttl": _ttl_us(lease.ttl),
        }
        row = await self._db.run(
            lambda conn: conn.execute(self._renew, params).fetchone(), idempotent=True
        )
        return row is not None

    async def release(self, lease: Lease) -> None:
        """Give the lease up; harmless when it is no longer held by its owner."""
        params = {"r": lease.resource, "o": lease.owner, "t": lease.fencing_token}
        await self._db.run(lambda conn: conn.execute(self._release, params), idempotent=True)


def _ttl_us(ttl: timedelta) -> int:
    if not isinstance(ttl, timedelta) or ttl <= timedelta(0):
        raise ConfigurationError(f"lease ttl must be a positive timedelta, got {ttl!r}")
    return ttl // timedelta(microseconds=1)
