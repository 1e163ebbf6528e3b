"""Expiring leases with fencing tokens in a SQLite table, shared by every process on the file."""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
from collections.abc import Callable
from datetime import timedelta

import trio

from wfe.core import ConfigurationError
from wfe.core.protocols import Lease

from . import _codec as c
from ._base import SqliteProvider, open_database
from ._database import Database, lease_us, wall_us


class SqliteLockProvider(SqliteProvider):
    """Exclusive leases on named resources, stored in the ``locks`` table.

    Expiry uses wall-clock time written in the row, so processes sharing the file agree
    on it. Each resource's row keeps its token counter after release, so fencing tokens
    grow strictly with every acquisition, across processes and restarts.
    """

    _owner: str

    def __init__(
        self,
        url: str = "sqlite://:memory:",
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 5.0,
        create_parents: bool = False,
    ) -> None:
        self._share(
            open_database(
                url,
                synchronous=synchronous,
                busy_timeout=busy_timeout,
                create_parents=create_parents,
            )
        )

    def _share(self, db: Database) -> None:
        super()._share(db)
        # Names this provider in lease rows (useful when inspecting the file).
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    async def acquire(self, resource: str, ttl: timedelta) -> Lease | None:
        """A lease on ``resource`` for ``ttl``, or ``None`` while another live lease
        holds it. Never waits for the holder."""
        take = self.taker(resource, ttl)
        return await self._db.write(take)

    def taker(self, resource: str, ttl: timedelta) -> Callable[[sqlite3.Connection], Lease | None]:
        """The write that :meth:`acquire` runs, for another write of the same database
        to run in its own transaction (a workflow created with its lease)."""
        ttl_us = _ttl_us(ttl)
        owner = self._owner

        def run(conn: sqlite3.Connection) -> Lease | None:
            now = lease_us()
            row = conn.execute(
                "SELECT owner, token, expires_at FROM locks WHERE resource = ?", (resource,)
            ).fetchone()
            if row is not None and row[0] is not None and row[2] > now:
                return None
            token = 1 if row is None else row[1] + 1
            expires = now + ttl_us
            conn.execute(
                "INSERT INTO locks (resource, owner, token, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (resource) DO UPDATE SET owner = excluded.owner, "
                "token = excluded.token, expires_at = excluded.expires_at",
                (resource, owner, token, expires),
            )
            return Lease(
                resource=resource,
                owner=owner,
                fencing_token=token,
                ttl=ttl,
                expires_at=c.from_us(wall_us() + ttl_us),
            )

        return run

    async def renew(self, lease: Lease) -> bool:
        """Extend a still-held lease by its ``ttl``; ``False`` (and no change) when it
        expired, was released or was taken over."""
        ttl_us = _ttl_us(lease.ttl)

        def run(conn: sqlite3.Connection) -> bool:
            now = lease_us()
            cur = conn.execute(
                "UPDATE locks SET expires_at = ? WHERE resource = ? AND owner = ? "
                "AND token = ? AND expires_at > ?",
                (now + ttl_us, lease.resource, lease.owner, lease.fencing_token, now),
            )
            return cur.rowcount == 1

        return await self._db.write(run)

    async def release(self, lease: Lease) -> None:
        """Give the lease up; harmless when it is no longer held by its owner.

        Posted to the writer thread, not waited for (see :meth:`Database.post`): this
        process's next acquire comes after it; other processes see it a moment later
        (until then they get ``None`` and retry, as for a held lease), and if a crash
        loses it the lease simply expires. Fencing never depends on a release."""
        await trio.lowlevel.checkpoint()
        self._db.post(lambda conn: self.give_up(conn, lease))

    @staticmethod
    def give_up(conn: sqlite3.Connection, lease: Lease) -> None:
        """The write of :meth:`release`, inside another write's transaction."""
        conn.execute(
            "UPDATE locks SET owner = NULL, expires_at = 0 "
            "WHERE resource = ? AND owner = ? AND token = ?",
            (lease.resource, lease.owner, lease.fencing_token),
        )


def _ttl_us(ttl: timedelta) -> int:
    if not isinstance(ttl, timedelta) or ttl <= timedelta(0):
        raise ConfigurationError(f"lease ttl must be a positive timedelta, got {ttl!r}")
    return ttl // timedelta(microseconds=1)
