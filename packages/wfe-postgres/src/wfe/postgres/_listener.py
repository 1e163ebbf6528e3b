"""LISTEN/NOTIFY for one store: queue wake-ups and workflow status changes across
processes, read natively in trio.

One connection per :class:`Database` runs ``LISTEN "wfe_<schema>"``; a trio system task
waits on its socket with ``trio.lowlevel.wait_readable`` (no thread, ~1 ms wake-up:
TECH-NOTES.md) and dispatches the payloads the store's statements send with
``pg_notify`` (delivered on commit, so a wake-up never runs ahead of its data):

- ``q:<kind>`` — an item was enqueued in that queue kind;
- ``w:<workflow id>`` — a checkpoint stored a new status for that workflow.

When the connection drops (terminated backend, server restart) the task reconnects with
backoff and wakes every waiter, who look at the tables themselves: a notification missed
while disconnected costs latency, never work. Waiters also poll, slowly, while
connected, and at ``poll_interval`` while disconnected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg
import trio

if TYPE_CHECKING:
    from ._database import Database

log = logging.getLogger("wfe.postgres")


class Listener:
    """The LISTEN connection of a database and the wake-ups it drives."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._kinds: dict[str, trio.Event] = {}
        self._watchers: set[Callable[[str], None]] = set()
        self.connected = False
        self.connections = 0  # how many times LISTEN came up (reconnections show here)
        self._scope: trio.CancelScope | None = None
        self._done: trio.Event | None = None
        # Set whenever the connection comes up (or drops): for tests and for waiters
        # that want to know the feed is live.
        self._up = trio.Event()

    # -- wake-ups ---------------------------------------------------------------------

    def wakeup(self, kind: str) -> trio.Event:
        """The event the next enqueue of ``kind`` sets (in this process directly, from
        others through NOTIFY). Take it before looking at the table."""
        ev = self._kinds.get(kind)
        if ev is None:
            ev = self._kinds[kind] = trio.Event()
        return ev

    def wake(self, kind: str) -> None:
        ev = self._kinds.pop(kind, None)
        if ev is not None:
            ev.set()

    def wake_all(self) -> None:
        kinds, self._kinds = self._kinds, {}
        for ev in kinds.values():
            ev.set()

    def add_watcher(self, changed: Callable[[str], None]) -> None:
        self._watchers.add(changed)

    def remove_watcher(self, changed: Callable[[str], None]) -> None:
        self._watchers.discard(changed)

    async def wait_connected(self) -> None:
        """Return once the LISTEN connection is up."""
        while not self.connected:
            await self._up.wait()

    # -- the task ---------------------------------------------------------------------

    def start(self) -> None:
        self._scope = trio.CancelScope()
        self._done = trio.Event()
        trio.lowlevel.spawn_system_task(self._serve, self._scope, self._done)

    async def stop(self) -> None:
        if self._scope is not None and self._done is not None:
            self._scope.cancel()
            await self._done.wait()
        self._scope = self._done = None
        self.connected = False
        self.wake_all()

    async def _serve(self, scope: trio.CancelScope, done: trio.Event) -> None:
        # A system task: an exception here would crash the whole trio run, so every
        # failure is logged and retried.
        try:
            with scope:
                backoff = 0.05
                while True:
                    conn: Any = None
                    try:
                        conn = await trio.to_thread.run_sync(self._connect)
                        self._set_connected(True)
                        backoff = 0.05
                        await self._read(conn)
                    except (psycopg.Error, OSError, Exception) as exc:
                        if self.connected:
                            log.warning("PostgreSQL LISTEN connection lost: %s; reconnecting", exc)
                        else:
                            log.debug("PostgreSQL LISTEN connect failed: %s", exc)
                    finally:
                        self._set_connected(False)
                        if conn is not None:
                            conn.close()
                    await trio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
        finally:
            done.set()

    def _set_connected(self, up: bool) -> None:
        if up != self.connected:
            self.connected = up
            self.connections += up
            up_event, self._up = self._up, trio.Event()
            up_event.set()
        # Up or down, something may have been missed: let every waiter look.
        self.wake_all()
        for changed in list(self._watchers):
            changed("")

    def _connect(self) -> Any:
        conn = self._db.connect()
        try:
            conn.execute(f'LISTEN "{self._db.settings.channel}"')
        except BaseException:
            conn.close()
            raise
        return conn

    async def _read(self, conn: Any) -> None:
        pgconn = conn.pgconn
        while True:
            await trio.lowlevel.wait_readable(pgconn.socket)
            pgconn.consume_input()  # raises when the server has gone
            while (note := pgconn.notifies()) is not None:
                self._dispatch(note.extra.decode("utf-8", "replace"))
            if pgconn.status != psycopg.pq.ConnStatus.OK:
                raise psycopg.OperationalError("the LISTEN connection is no longer usable")

    def _dispatch(self, payload: str) -> None:
        tag, _, value = payload.partition(":")
        if tag == "q":
            self.wake(value)
        elif tag == "w" and value:
            for changed in list(self._watchers):
                try:
                    changed(value)
                except Exception:  # a watcher's bug must not stop the feed
                    log.exception("workflow change watcher failed")
