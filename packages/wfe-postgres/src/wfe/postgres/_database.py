"""One PostgreSQL database (one schema) shared by the persistence, lock, queue and search
providers: a small pool of psycopg connections.

Every provider call runs its whole work on one pooled connection, usually one statement,
on the trio thread: the connections are :class:`~._inline.InlineConnection`, whose waits
for the server are trio awaits, so no call pays a thread hop (130-190 µs against a round
trip of ~90 µs here: TECH-NOTES.md) and other tasks run while a statement is in flight.
Only connecting (which may block for the whole connect timeout) and migrations go to a
worker thread. Connections are in autocommit mode, so a single statement
is its own transaction and costs one round trip; multi-statement transactions use
psycopg's pipeline so ``BEGIN`` and ``COMMIT`` travel with the statements. A statement
whose loss in a server crash costs latency, never correctness, carries
:data:`ASYNC_COMMIT` itself, so it commits without waiting for the disk in that same
round trip.

Connections found dead (terminated backend, restarted server) are replaced. A pooled
connection is checked before use without a round trip (an idle connection has nothing
to read unless the server sent it a FATAL goodbye), so a write is retried on a fresh
connection only when it cannot have reached the server; a connection lost while a write
was in flight is reported as a :class:`ProviderError` (the host re-reads the store).
"""

from __future__ import annotations

import contextlib
import logging
import select
import threading
from collections.abc import Callable
from typing import TypeVar

import psycopg
import psycopg.errors
import sqlalchemy.exc
import trio
from psycopg.types.string import TextLoader
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from wfe.core import ConfigurationError, ProviderError, WfeError, redact_url

from ._inline import InlineConnection, run_inline
from ._listener import Listener
from ._schema import migrate
from ._settings import Settings

T = TypeVar("T")
# A condition for the WHERE clause of a statement that may commit without waiting for
# the WAL to reach disk: an uncorrelated subquery, so the server evaluates it once per
# statement, and ``is_local`` confines the setting to the statement's own (implicit)
# transaction, whose commit reads it. Measured here: ~30 µs per single-row write against
# ~230-300 µs durable, and ~140 µs for the BEGIN / SET LOCAL / write / COMMIT pipeline it
# replaces (two round trips and four statements).
ASYNC_COMMIT = "(SELECT set_config('synchronous_commit', 'off', true)) = 'off'"
Conn = InlineConnection
log = logging.getLogger("wfe.postgres")


def _loaders(conn: Conn) -> None:
    # json columns come back as the codec's text, for wfe.core.serialization.loads.
    conn.adapters.register_loader("json", TextLoader)
    conn.adapters.register_loader("jsonb", TextLoader)


def describe_failure(settings: Settings, exc: BaseException) -> str:
    """Why a connection failed, in words naming host and database, never the password."""
    reason = str(exc).strip() or type(exc).__name__
    reason = " ".join(line.strip() for line in reason.splitlines() if line.strip())
    reason = redact_url(reason, settings.conninfo)
    hint = ""
    sqlstate = getattr(exc, "sqlstate", None)
    lowered = reason.lower()
    if sqlstate == "3D000" or ("does not exist" in lowered and "database" in lowered):
        hint = f" (create it: createdb -h {settings.host} -p {settings.port} {settings.database})"
    elif sqlstate == "28P01" or "password authentication failed" in lowered:
        hint = " (check the user name and password in the URL)"
    elif sqlstate == "42501" or "permission denied" in lowered:
        hint = (
            f" (the user needs CREATE on database {settings.database!r}, or an existing "
            f"schema {settings.schema!r} it may use)"
        )
    elif "is the server running" in lowered:
        pass  # libpq asked it already
    elif "connection refused" in lowered or "timeout" in lowered or "could not" in lowered:
        hint = " (is the server running and reachable from here?)"
    return f"PostgreSQL store, {settings.label}: {reason}{hint}"


class Database:
    """A reference-counted pool: opened (connected and migrated) by the first provider
    entered, closed when the last one leaves. Also carries the LISTEN/NOTIFY listener."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.label = settings.label
        self.schema = settings.schema
        self._users = 0
        self._open_lock = trio.Lock()
        self._idle: list[Conn] = []
        self._all: set[Conn] = set()
        self._pool_lock = threading.Lock()
        self._closed = True
        self.limiter = trio.CapacityLimiter(settings.pool_size)
        self.listener = Listener(self)

    def q(self, sql: str) -> str:
        """``sql`` with ``{s}`` replaced by the quoted schema (validated identifier)."""
        return sql.replace("{s}", f'"{self.schema}"')

    # -- lifecycle --------------------------------------------------------------------

    async def acquire(self) -> None:
        async with self._open_lock:
            if self._users == 0:
                await trio.to_thread.run_sync(self._open)
                self._closed = False
                self.listener.start()
            self._users += 1

    async def release(self) -> None:
        async with self._open_lock:
            if self._users == 0:
                return
            self._users -= 1
            if self._users == 0:
                self._closed = True
                with trio.CancelScope(shield=True):
                    await self.listener.stop()
                    await trio.to_thread.run_sync(self._close_all)

    def connect(self) -> Conn:
        """A new connection (autocommit, json as text); ProviderError if it fails."""
        try:
            conn = InlineConnection.connect(self.settings.conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise ProviderError(describe_failure(self.settings, exc)) from None
        _loaders(conn)
        return conn

    def _open(self) -> None:
        settings = self.settings
        try:
            first = InlineConnection.connect(settings.conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise ConfigurationError(describe_failure(settings, exc)) from None
        _loaders(first)
        try:
            self.run_migrations()
        except BaseException:
            first.close()
            raise
        with self._pool_lock:
            self._idle.append(first)
            self._all.add(first)

    def run_migrations(self) -> None:
        settings = self.settings
        engine = create_engine(
            "postgresql+psycopg://",
            creator=lambda: psycopg.connect(settings.conninfo),
            poolclass=NullPool,
        )
        try:
            with engine.begin() as conn:
                migrate(conn, settings.schema, settings.label)
        except WfeError:
            raise
        except sqlalchemy.exc.SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc
            raise ConfigurationError(describe_failure(settings, cause)) from None
        finally:
            engine.dispose()

    def _close_all(self) -> None:
        with self._pool_lock:
            conns, self._idle, self._all = list(self._all), [], set()
        for conn in conns:
            conn.close()

    # -- the pool ---------------------------------------------------------------------

    def _take_idle(self) -> Conn | None:
        """An idle connection that looks alive, or ``None`` (then connect a new one)."""
        if self._closed:
            raise ProviderError(f"PostgreSQL store, {self.label}, is not open: use `async with`")
        while True:
            with self._pool_lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None or _looks_alive(conn):
                return conn
            self._discard(conn)

    def _connect_pooled(self) -> Conn:
        """In a worker thread: a new connection for the pool; :class:`_Retry` if it
        cannot be made (nothing was sent, so the work may go on elsewhere)."""
        try:
            conn = self.connect()
        except ProviderError as exc:
            if self._closed:
                raise
            raise _Retry(str(exc)) from exc
        with self._pool_lock:
            self._all.add(conn)
        return conn

    async def _give_back(self, conn: Conn) -> None:
        if conn.broken or conn.closed or self._closed:
            self._discard(conn)
            return
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            try:
                await run_inline(lambda c: c.rollback(), conn)
            except psycopg.Error:
                self._discard(conn)
                return
        with self._pool_lock:
            self._idle.append(conn)

    def _discard(self, conn: Conn) -> None:
        with self._pool_lock:
            self._all.discard(conn)
        with contextlib.suppress(psycopg.Error):  # closing a dead socket
            conn.close()

    async def _attempt(self, fn: Callable[[Conn], T], idempotent: bool) -> T:
        """``fn`` on a pooled connection. Raises :class:`_Retry` when the work can
        safely be tried again on a new connection: the connection could not be made
        (nothing was sent), or it was lost under idempotent work."""
        conn = self._take_idle()
        if conn is None:
            conn = await trio.to_thread.run_sync(self._connect_pooled)
        # A statement in flight is never abandoned (the connection would be left
        # mid-protocol): cancellation is seen by the caller's next checkpoint.
        with trio.CancelScope(shield=True):
            try:
                result = await run_inline(fn, conn)
            except psycopg.Error as exc:
                lost = conn.broken or conn.closed
                await self._give_back(conn)
                if lost and idempotent:
                    raise _Retry(str(self.error(exc))) from exc
                raise self.error(exc, lost=lost) from exc
            except BaseException:
                # fn's own error (the connection is fine), or the wait failed and
                # run_inline closed the connection mid-protocol (then it is discarded).
                await self._give_back(conn)
                raise
            await self._give_back(conn)
        return result

    def error(self, exc: psycopg.Error, *, lost: bool = False) -> ProviderError:
        text = redact_url(str(exc).strip(), self.settings.conninfo)
        if lost:
            text += " (the connection was lost; a write in flight may or may not be stored)"
        return ProviderError(f"PostgreSQL store, {self.label}: {text}")

    async def run(self, fn: Callable[[Conn], T], *, idempotent: bool = False) -> T:
        """Run ``fn(conn)`` on a pooled connection, its waits for the server awaited in
        trio (``fn`` is plain blocking psycopg code: see :mod:`._inline`).

        While the server cannot be reached (a restart, a dropped connection) the call
        is retried with backoff for up to ``connect_timeout`` seconds, when that is safe:
        always if no connection could be made, and for ``idempotent`` work (reads,
        writes that may be applied twice) also when the connection died under it. Not
        abandoned on cancellation: a statement finishes before ``Cancelled`` is seen."""
        async with self.limiter:
            return await self.run_held(fn, idempotent=idempotent)

    async def run_held(self, fn: Callable[[Conn], T], *, idempotent: bool = False) -> T:
        """As :meth:`run`, for a caller already holding :attr:`limiter`."""
        deadline = trio.current_time() + self.settings.connect_timeout
        backoff = 0.02
        while True:
            try:
                return await self._attempt(fn, idempotent)
            except _Retry as exc:
                if trio.current_time() + backoff > deadline:
                    raise ProviderError(str(exc)) from exc.__cause__
                log.info("PostgreSQL store unreachable (%s); retrying", exc)
            await trio.sleep(backoff)
            backoff = min(backoff * 2, 0.5)


class _Retry(ProviderError):
    """Internal: the work did not run (or may safely run again); try once more."""


def _looks_alive(conn: Conn) -> bool:
    """Without a round trip: an idle connection with bytes to read was told goodbye
    (``pg_terminate_backend``, a server shutdown) or lost its socket."""
    if conn.broken or conn.closed:
        return False
    try:
        poller = select.poll()  # not select.select: it fails for descriptors >= 1024
        poller.register(conn.pgconn.socket, select.POLLIN)
        readable = poller.poll(0)
    except (OSError, ValueError, psycopg.Error):
        return False
    return not readable
