"""The SQLite store of record: workflows, pointers, events, subscriptions, errors."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from wfe.core import (
    ConfigurationError,
    Event,
    EventSubscription,
    ExecutionError,
    ExecutionPointer,
    ProviderError,
    ScheduledCommand,
    StaleLeaseError,
    WorkflowInstance,
    WorkflowNotFoundError,
    WorkflowStatus,
)

from . import _codec as c
from ._base import SqliteProvider, open_database
from ._lock import SqliteLockProvider
from ._queue import SqliteQueueProvider
from ._search import SqliteSearchIndex

_INSERT_POINTER = "INSERT INTO pointers (id, workflow_id, sequence, body) VALUES (?, ?, ?, ?)"
_UPSERT_POINTER = (
    _INSERT_POINTER + " ON CONFLICT (id) DO UPDATE SET "
    "workflow_id = excluded.workflow_id, sequence = excluded.sequence, body = excluded.body"
)
_UPSERT_SUBSCRIPTION = (
    f"INSERT INTO subscriptions ({c.SUBSCRIPTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET workflow_id = excluded.workflow_id, "
    "step_id = excluded.step_id, pointer_id = excluded.pointer_id, "
    "event_name = excluded.event_name, event_key = excluded.event_key, "
    "as_of = excluded.as_of, terminated = excluded.terminated"
)
# The instance row's update; the fence only moves up, and a stale token matches no row.
_UPDATE_WORKFLOW = (
    "UPDATE workflows SET definition_id = :definition_id, version = :version, "
    "description = :description, reference = :reference, status = :status, data = :data, "
    "next_execution = :next_execution, create_time = :create_time, "
    "complete_time = :complete_time, fingerprint = :fingerprint, "
    "fence = CASE WHEN :token IS NULL THEN fence ELSE max(coalesce(fence, :token), :token) END "
    "WHERE id = :id AND (:token IS NULL OR fence IS NULL OR fence <= :token)"
)
_WORKFLOW_KEYS = tuple(k.strip() for k in c.WORKFLOW_COLUMNS.split(","))


class SqlitePersistenceProvider(SqliteProvider):
    """Workflows, events, subscriptions, errors and scheduled commands in one SQLite
    file (``sqlite:///path.db``, ``sqlite:////abs/path.db``) or in memory
    (``sqlite://:memory:``).

    Also provides companions (:class:`~wfe.core.protocols.ProvidesCompanions`): a lock,
    queue and search index over the same database, so one file (or one ``:memory:``
    database) holds everything. ``visibility_timeout`` and ``poll_interval`` configure
    the queue companion.
    """

    def __init__(
        self,
        url: str = "sqlite://:memory:",
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 5.0,
        create_parents: bool = False,
        visibility_timeout: float = 30.0,
        poll_interval: float = 0.05,
    ) -> None:
        self._share(
            open_database(
                url,
                synchronous=synchronous,
                busy_timeout=busy_timeout,
                create_parents=create_parents,
                visibility_timeout=visibility_timeout,
                poll_interval=poll_interval,
            )
        )

    # -- companions -------------------------------------------------------------------

    def default_locks(self) -> SqliteLockProvider:
        """A lock provider on this provider's database (enter it after this one)."""
        return SqliteLockProvider._sharing(self._db)

    def default_queues(self) -> SqliteQueueProvider:
        """A queue provider on this provider's database, sharing in-process wake-ups."""
        return SqliteQueueProvider._sharing(self._db)

    def default_search(self) -> SqliteSearchIndex:
        """An FTS5 search index on this provider's database."""
        return SqliteSearchIndex._sharing(self._db)

    # -- workflows ------------------------------------------------------------------

    async def ensure_store_exists(self) -> None:
        """Create missing tables and indexes (and run pending migrations)."""
        await self._db.migrate()

    async def create_workflow(self, instance: WorkflowInstance) -> str:
        """Store a new instance with all its pointers; returns its id."""
        params = c.workflow_params(instance)
        rows = [c.pointer_row(instance.id, p) for p in instance.execution_pointers]
        label = self._db.label

        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    f"INSERT INTO workflows ({c.WORKFLOW_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    params,
                )
                conn.executemany(_INSERT_POINTER, rows)
            except sqlite3.IntegrityError as exc:
                raise ProviderError(
                    f"SQLite store {label}: cannot create workflow {instance.id}: "
                    f"it (or one of its pointer ids) already exists"
                ) from exc

        await self._db.write(run)
        return instance.id

    async def persist_workflow(
        self,
        instance: WorkflowInstance,
        pointers: Sequence[ExecutionPointer] | None = None,
        *,
        subscriptions: Sequence[EventSubscription] = (),
        fencing_token: int | None = None,
    ) -> None:
        """Save the instance row and ``pointers`` (all, replacing the stored set, when
        ``None``) and create ``subscriptions``, in one transaction. Only the listed
        pointer rows are written, so the cost does not grow with history."""
        update_params = dict(zip(_WORKFLOW_KEYS, c.workflow_params(instance), strict=True))
        update_params["token"] = fencing_token
        replace_all = pointers is None
        rows = [
            c.pointer_row(instance.id, ptr)
            for ptr in (instance.execution_pointers if pointers is None else pointers)
        ]
        subs = [c.subscription_params(s) for s in subscriptions]
        label = self._db.label

        def run(conn: sqlite3.Connection) -> None:
            cur = conn.execute(_UPDATE_WORKFLOW, update_params)
            if cur.rowcount == 0:
                row = conn.execute(
                    "SELECT fence FROM workflows WHERE id = ?", (instance.id,)
                ).fetchone()
                if row is None:
                    raise WorkflowNotFoundError(
                        f"no workflow {instance.id} in SQLite store {label}: "
                        "create_workflow it before persisting"
                    )
                raise StaleLeaseError(
                    f"workflow {instance.id}: write with fencing token {fencing_token} refused, "
                    f"a holder with token {row[0]} wrote since (the lease was lost)"
                )
            if replace_all:
                conn.execute("DELETE FROM pointers WHERE workflow_id = ?", (instance.id,))
            conn.executemany(_UPSERT_POINTER, rows)
            if subs:
                conn.executemany(_UPSERT_SUBSCRIPTION, subs)

        await self._db.write(run)

    async def get_workflow(self, workflow_id: str) -> WorkflowInstance:
        """The instance with its pointers, in stored order."""
        found = await self._db.read(lambda conn: _load_workflows(conn, [workflow_id]))
        if not found:
            raise WorkflowNotFoundError(
                f"no workflow {workflow_id} in SQLite store {self._db.label}"
            )
        return found[0]

    async def get_workflows(self, workflow_ids: Sequence[str]) -> list[WorkflowInstance]:
        """The instances that exist among ``workflow_ids``, in the order asked."""
        ids = list(dict.fromkeys(workflow_ids))
        if not ids:
            return []
        return await self._db.read(lambda conn: _load_workflows(conn, ids))

    async def get_runnable_instances(self, as_of: datetime) -> list[str]:
        """Ids of RUNNABLE instances due at ``as_of``, earliest due first."""
        at = c.to_us(as_of)

        def run(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT id FROM workflows WHERE status = ? AND next_execution IS NOT NULL "
                "AND next_execution <= ? ORDER BY next_execution, rowid",
                (WorkflowStatus.RUNNABLE.value, at),
            ).fetchall()
            return [r[0] for r in rows]

        return await self._db.read(run)

    async def list_workflows(
        self,
        *,
        status: WorkflowStatus | None = None,
        definition_id: str | None = None,
        skip: int = 0,
        take: int = 100,
    ) -> list[WorkflowInstance]:
        """Instances filtered by status/definition, newest first, without pointers."""
        _check_paging(skip, take)
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append("status = ?")
            params.append(WorkflowStatus(status).value)
        if definition_id is not None:
            where.append("definition_id = ?")
            params.append(definition_id)
        sql = f"SELECT {c.WORKFLOW_COLUMNS} FROM workflows"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY create_time DESC, rowid DESC LIMIT ? OFFSET ?"
        params += [take, skip]

        def run(conn: sqlite3.Connection) -> list[WorkflowInstance]:
            return [c.workflow_from_row(r) for r in conn.execute(sql, params)]

        return await self._db.read(run)

    # -- events -----------------------------------------------------------------------

    async def create_event(self, event: Event) -> str:
        """Store a new event; returns its id."""
        params = c.event_params(event)
        label = self._db.label

        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    f"INSERT INTO events ({c.EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", params
                )
            except sqlite3.IntegrityError as exc:
                raise ProviderError(
                    f"SQLite store {label}: event {event.id} already exists"
                ) from exc

        await self._db.write(run)
        return event.id

    async def get_event(self, event_id: str) -> Event:
        """The event; :class:`ProviderError` if there is none with that id."""
        row = await self._db.read(
            lambda conn: conn.execute(
                f"SELECT {c.EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,)
            ).fetchone()
        )
        if row is None:
            raise ProviderError(f"no event {event_id} in SQLite store {self._db.label}")
        return c.event_from_row(row)

    async def get_runnable_events(self, as_of: datetime) -> list[str]:
        """Unprocessed events due at ``as_of`` that an open subscription would take."""
        at = c.to_us(as_of)

        def run(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT e.id FROM events e WHERE e.processed = 0 AND e.time <= ? "
                "AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.event_name = e.name "
                "AND s.event_key = e.key AND s.terminated = 0 AND s.as_of <= e.time) "
                "ORDER BY e.time, e.rowid",
                (at,),
            ).fetchall()
            return [r[0] for r in rows]

        return await self._db.read(run)

    async def get_pending_events(
        self, event_name: str, event_key: str, as_of: datetime
    ) -> list[Event]:
        """Unprocessed events with this name and key at or after ``as_of``."""
        params = (event_name, event_key, c.to_us(as_of))

        def run(conn: sqlite3.Connection) -> list[Event]:
            rows = conn.execute(
                f"SELECT {c.EVENT_COLUMNS} FROM events WHERE name = ? AND key = ? "
                "AND time >= ? AND processed = 0 ORDER BY time, rowid",
                params,
            )
            return [c.event_from_row(r) for r in rows]

        return await self._db.read(run)

    async def mark_event_processed(self, event_id: str) -> None:
        """Flag the event as delivered."""
        await self._set_processed(event_id, 1)

    async def mark_event_unprocessed(self, event_id: str) -> None:
        """Flag the event as pending again."""
        await self._set_processed(event_id, 0)

    async def _set_processed(self, event_id: str, value: int) -> None:
        await self._db.write(
            lambda conn: conn.execute(
                "UPDATE events SET processed = ? WHERE id = ?", (value, event_id)
            )
        )

    # -- subscriptions ----------------------------------------------------------------

    async def create_subscription(self, subscription: EventSubscription) -> str:
        """Store a subscription on its own; returns its id."""
        params = c.subscription_params(subscription)
        await self._db.write(lambda conn: conn.execute(_UPSERT_SUBSCRIPTION, params))
        return subscription.id

    async def get_subscriptions(
        self, event_name: str, event_key: str, as_of: datetime
    ) -> list[EventSubscription]:
        """Open subscriptions with this name and key and ``as_of`` at or before
        ``as_of``, oldest first."""
        params = (event_name, event_key, c.to_us(as_of))

        def run(conn: sqlite3.Connection) -> list[EventSubscription]:
            rows = conn.execute(
                f"SELECT {c.SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE event_name = ? "
                "AND event_key = ? AND as_of <= ? AND terminated = 0 ORDER BY as_of, rowid",
                params,
            )
            return [c.subscription_from_row(r) for r in rows]

        return await self._db.read(run)

    async def terminate_subscription(self, subscription_id: str) -> None:
        """Close a subscription (harmless when unknown or closed)."""
        await self._db.write(
            lambda conn: conn.execute(
                "UPDATE subscriptions SET terminated = 1 WHERE id = ?", (subscription_id,)
            )
        )

    async def get_subscription(self, subscription_id: str) -> EventSubscription | None:
        """The subscription (open or closed), or ``None``."""
        row = await self._db.read(
            lambda conn: conn.execute(
                f"SELECT {c.SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id = ?",
                (subscription_id,),
            ).fetchone()
        )
        return None if row is None else c.subscription_from_row(row)

    # -- errors and scheduled commands ------------------------------------------------

    async def persist_errors(self, errors: Sequence[ExecutionError]) -> None:
        """Append execution errors."""
        rows = [(e.workflow_id, e.pointer_id, c.to_us(e.time), e.message) for e in errors]
        if not rows:
            return
        await self._db.write(
            lambda conn: conn.executemany(
                "INSERT INTO errors (workflow_id, pointer_id, time, message) VALUES (?, ?, ?, ?)",
                rows,
            )
        )

    async def get_errors(self, workflow_id: str) -> list[ExecutionError]:
        """Errors recorded for a workflow, oldest first."""

        def run(conn: sqlite3.Connection) -> list[ExecutionError]:
            rows = conn.execute(
                "SELECT workflow_id, pointer_id, time, message FROM errors "
                "WHERE workflow_id = ? ORDER BY time, id",
                (workflow_id,),
            )
            return [
                ExecutionError(
                    workflow_id=r[0], pointer_id=r[1], time=c.from_us(r[2]), message=r[3]
                )
                for r in rows
            ]

        return await self._db.read(run)

    async def schedule_command(self, command: ScheduledCommand) -> None:
        """Store a command to run at its ``execute_time``; when one with the same name
        and data is already stored, that one is kept."""
        params = (command.name, command.data, c.to_us(command.execute_time))
        await self._db.write(
            lambda conn: conn.execute(
                "INSERT INTO scheduled_commands (name, data, execute_time) VALUES (?, ?, ?) "
                "ON CONFLICT (name, data) DO NOTHING",
                params,
            )
        )

    async def take_due_commands(self, as_of: datetime) -> list[ScheduledCommand]:
        """Remove and return the commands due at ``as_of``, earliest first."""
        at = c.to_us(as_of)

        def run(conn: sqlite3.Connection) -> list[ScheduledCommand]:
            rows = conn.execute(
                "SELECT name, data, execute_time FROM scheduled_commands "
                "WHERE execute_time <= ? ORDER BY execute_time, rowid",
                (at,),
            ).fetchall()
            conn.execute("DELETE FROM scheduled_commands WHERE execute_time <= ?", (at,))
            return [
                ScheduledCommand(name=r[0], data=r[1], execute_time=c.from_us(r[2])) for r in rows
            ]

        return await self._db.write(run)


def _check_paging(skip: int, take: int) -> None:
    if skip < 0 or take < 0:
        raise ConfigurationError(f"skip and take must not be negative, got {skip} and {take}")


def _load_workflows(conn: sqlite3.Connection, ids: list[str]) -> list[WorkflowInstance]:
    """Instances with their pointers, in the order of ``ids``, inside one snapshot."""
    found: dict[str, WorkflowInstance] = {}
    # Chunks stay under SQLite's bound-parameter limit.
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT {c.WORKFLOW_COLUMNS} FROM workflows WHERE id IN ({marks})", chunk
        ):
            found[row[0]] = c.workflow_from_row(row, [])
        for pid, wid, seq, body in conn.execute(
            f"SELECT id, workflow_id, sequence, body FROM pointers WHERE workflow_id IN ({marks}) "
            "ORDER BY workflow_id, sequence, rowid",
            chunk,
        ):
            inst = found.get(wid)
            if inst is not None:
                inst.execution_pointers.append(c.pointer_from_row(pid, seq, body))
    return [found[i] for i in ids if i in found]
