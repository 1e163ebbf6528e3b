"""The SQLite store of record: workflows, pointers, events, subscriptions, errors."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import trio

from wfe.core import (
    ConfigurationError,
    Event,
    EventSubscription,
    ExecutionError,
    ProviderError,
    StaleLeaseError,
    WorkflowInstance,
    WorkflowNotFoundError,
    WorkflowStatus,
)
from wfe.core.protocols import (
    Checkpoint,
    DistributedLockProvider,
    EventDelivery,
    Lease,
    SearchIndex,
    check_purge_statuses,
)
from wfe.core.serialization import dumps

from . import _codec as c
from . import _purge
from ._base import SqliteProvider, open_database
from ._database import lease_us
from ._lock import SqliteLockProvider
from ._logs import SqliteStepLogs
from ._queue import SqliteQueueProvider
from ._search import ENDED, SqliteSearchIndex, prepare_document, store_document

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
# The instance row's mutable columns, bound by position to workflow_params' values
# (?1 id, ?4 description ... ?10 complete_time) and the fencing token after them (?12):
# no dict per write. Unfenced (the fence is checked by _fence first): the values up to
# complete_time.
_UPDATE_WORKFLOW = (
    "UPDATE workflows SET description = ?4, reference = ?5, status = ?6, data = ?7, "
    "next_execution = ?8, complete_time = ?10 WHERE id = ?1"
)
# The same, fenced and raising the fence in the one statement (a step's hot path).
_UPDATE_WORKFLOW_FENCED = (
    "UPDATE workflows SET description = ?4, reference = ?5, status = ?6, data = ?7, "
    "next_execution = ?8, complete_time = ?10, fence = ?12 "
    "WHERE id = ?1 AND (fence IS NULL OR fence <= ?12)"
)
# A history of at most this many pointers is read like a small read (on the trio thread
# when the writer is idle, no thread hop): a finished 10-step workflow, say.
_INLINE_POINTERS = 64
_HISTORY_PAST_INLINE = (
    f"SELECT 1 FROM pointers WHERE workflow_id = ? LIMIT 1 OFFSET {_INLINE_POINTERS}"
)
# Instance rows read together on the trio thread at most (see get_workflows): decoding
# their data holds the loop, so a larger batch goes to a reader thread.
_INLINE_ROWS = 16
_INSERT_EVENT = f"INSERT INTO events ({c.EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
_INSERT_ERROR = "INSERT INTO errors (workflow_id, pointer_id, time, message) VALUES (?, ?, ?, ?)"
# The unprocessed events of a name and key at or after a time, earliest first
# (parameters: name, key, time, limit); the first one's id alone.
_PENDING_WHERE = (
    "FROM events WHERE name = ? AND key = ? AND time >= ? AND processed = 0 "
    "ORDER BY time, rowid LIMIT"
)
_PENDING = f"SELECT {c.EVENT_COLUMNS} {_PENDING_WHERE} ?"
_FIRST_PENDING = f"SELECT id {_PENDING_WHERE} 1"


# The open subscriptions to a name and key that take an event of a time (parameters:
# name, key, time), oldest first.
_OPEN_SUBSCRIPTIONS = (
    "FROM subscriptions s WHERE s.event_name = ? AND s.event_key = ? "
    "AND s.as_of <= ? AND s.terminated = 0 ORDER BY s.as_of, s.rowid"
)


class SqlitePersistenceProvider(SqliteStepLogs, SqliteProvider):
    """Workflows, events, subscriptions, errors and scheduled commands in one SQLite
    file (``sqlite:///path.db``, ``sqlite:////abs/path.db``) or in memory
    (``sqlite://:memory:``).

    Also provides companions (:class:`~wfe.core.protocols.ProvidesCompanions`): a lock,
    queue and search index over the same database, so one file (or one ``:memory:``
    database) holds everything. ``visibility_timeout`` and ``poll_interval`` configure
    the queue companion.
    """

    _index_ended = False  # see index_ended_in_checkpoints

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
        await self._db.write(self._creator(instance))
        return instance.id

    def keeps_leases_of(self, locks: DistributedLockProvider) -> bool:
        """Whether ``locks`` keeps its leases in this provider's database (it is this
        provider's companion, :meth:`default_locks`)."""
        return isinstance(locks, SqliteLockProvider) and locks._db is self._db

    async def create_workflow_leased(
        self,
        instance: WorkflowInstance,
        locks: DistributedLockProvider,
        resource: str,
        ttl: timedelta,
    ) -> Lease | None:
        """Store a new instance and take the lease on ``resource`` in one transaction
        (see :class:`~wfe.core.protocols.LeasingPersistence`)."""
        return await self._db.write(self._leased(self._creator(instance), locks, resource, ttl))

    def _own(self, locks: DistributedLockProvider) -> SqliteLockProvider:
        """``locks``, which must keep its leases here (see :meth:`keeps_leases_of`)."""
        if not isinstance(locks, SqliteLockProvider) or locks._db is not self._db:
            raise ConfigurationError(
                f"SQLite store {self._db.label}: {locks!r} keeps its leases elsewhere"
            )
        return locks

    def _leased(
        self,
        create: Callable[[sqlite3.Connection], None],
        locks: DistributedLockProvider,
        resource: str,
        ttl: timedelta,
    ) -> Callable[[sqlite3.Connection], Lease | None]:
        """``create``, then the lease on ``resource`` taken in the same transaction."""
        take = self._own(locks).taker(resource, ttl)

        def run(conn: sqlite3.Connection) -> Lease | None:
            create(conn)
            return take(conn)

        return run

    def _creator(self, instance: WorkflowInstance) -> Callable[[sqlite3.Connection], None]:
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

        return run

    async def claim_workflow(self, workflow_id: str, fencing_token: int) -> WorkflowInstance:
        """Raise the instance's fence to ``fencing_token`` and read it, in one
        transaction: from here on every write with an older token is refused."""
        label = self._db.label

        def run(conn: sqlite3.Connection) -> WorkflowInstance:
            _fence(conn, label, workflow_id, fencing_token)
            return _load_workflows(conn, [workflow_id])[0]

        return await self._db.write(run)

    async def persist_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store the checkpoint (instance row, changed pointers, subscriptions opened
        and closed, events processed and created, errors) in one fenced transaction."""
        await self._db.write(self._checkpointer(checkpoint))

    async def persist_checkpoint_releasing(
        self, checkpoint: Checkpoint, locks: DistributedLockProvider, lease: Lease
    ) -> None:
        """:meth:`persist_checkpoint`, with ``lease`` given up in the same transaction
        (see :class:`~wfe.core.protocols.ReleasingCheckpoint`)."""
        own = self._own(locks)
        write = self._checkpointer(checkpoint, index_any=True)

        def run(conn: sqlite3.Connection) -> None:
            write(conn)
            own.give_up(conn, lease)

        await self._db.write(run)

    def _checkpointer(
        self, checkpoint: Checkpoint, *, index_any: bool = False
    ) -> Callable[[sqlite3.Connection], None]:
        """The write of :meth:`persist_checkpoint` (raises inside it when refused);
        ``index_any``: with documents written in checkpoints, write the instance's
        whatever its status (a pass's last checkpoint), not only an ending one's."""
        instance = checkpoint.instance
        data_json = checkpoint.data_json
        if data_json is None:
            data_json = dumps(instance.data)
        values = c.workflow_params(instance, data_json)
        rows = [c.pointer_row(instance.id, ptr) for ptr in checkpoint.pointers]
        opened = [c.subscription_params(s) for s in checkpoint.opened_subscriptions]
        closed = [(sub_id,) for sub_id in checkpoint.closed_subscriptions]
        processed = [(event_id,) for event_id in checkpoint.processed_events]
        errors = [
            (e.workflow_id, e.pointer_id, c.to_us(e.time), e.message) for e in checkpoint.errors
        ]
        events = [c.event_params(e) for e in checkpoint.events]
        indexed = self._index_ended and (index_any or instance.status in ENDED)
        document = prepare_document(instance, data_json) if indexed else None
        token = checkpoint.fencing_token
        fenced = (*values, token)
        label = self._db.label
        found = checkpoint.found_pending
        waits = [
            (s.id, (s.event_name, s.event_key, c.to_us(s.as_of)))
            for s in (checkpoint.opened_subscriptions if found is not None else ())
        ]

        def run(conn: sqlite3.Connection) -> None:
            if token is None:
                _fence(conn, label, instance.id, token)
                conn.execute(_UPDATE_WORKFLOW, values[:10])
            elif not conn.execute(_UPDATE_WORKFLOW_FENCED, fenced).rowcount:
                # Refused by the fence, or no such row: say which (raises).
                _fence(conn, label, instance.id, token)
            if rows:
                conn.executemany(_UPSERT_POINTER, rows)
            if opened:
                conn.executemany(_UPSERT_SUBSCRIPTION, opened)
            if closed:
                conn.executemany("UPDATE subscriptions SET terminated = 1 WHERE id = ?", closed)
            if processed:
                conn.executemany("UPDATE events SET processed = 1 WHERE id = ?", processed)
            if errors:
                conn.executemany(_INSERT_ERROR, errors)
            if events:
                try:
                    conn.executemany(_INSERT_EVENT, events)
                except sqlite3.IntegrityError as exc:
                    raise ProviderError(
                        f"SQLite store {label}: a checkpoint's event already exists"
                    ) from exc
            if document is not None:
                store_document(conn, *document)
            if found is not None:
                # Read last, as a read after the commit would see it (the events this
                # checkpoint processed or created included); no other write can commit
                # before this one does (see PendingInCheckpoints). Cleared first: a job
                # of a batch may run again.
                found.clear()
                for sub_id, params in waits:
                    first = conn.execute(_FIRST_PENDING, params).fetchone()
                    if first is not None:
                        found[sub_id] = first[0]

        return run

    def finds_pending_in_checkpoints(self) -> bool:
        """Always: SQLite runs one write transaction at a time, so a checkpoint that
        opens subscriptions finds their pending events in its own transaction (see
        :class:`~wfe.core.protocols.PendingInCheckpoints`)."""
        return True

    def index_ended_in_checkpoints(self, search: SearchIndex) -> bool:
        """When ``search`` is this provider's companion (:meth:`default_search`), write
        the search document of each workflow a checkpoint ends in that checkpoint's
        transaction (see :class:`~wfe.core.protocols.IndexingPersistence`)."""
        if isinstance(search, SqliteSearchIndex) and search._db is self._db:
            self._index_ended = True
            return True
        return False

    async def deliver_event(self, delivery: EventDelivery) -> bool:
        """Give the event to the waiting pointer, close its subscription, make the
        instance due and mark the event, in one fenced transaction. Reads the one
        pointer row (as JSON, so no data class is imported)."""
        return await self._db.write(self._deliverer(delivery, delivery.fencing_token))

    async def deliver_event_claiming(self, delivery: EventDelivery) -> WorkflowInstance | None:
        """:meth:`deliver_event`, then the instance read in the same transaction (see
        :class:`~wfe.core.protocols.ClaimingDelivery`)."""
        if delivery.fencing_token is None:
            raise ConfigurationError("a claiming delivery needs the lease's fencing token")
        deliver = self._deliverer(delivery, delivery.fencing_token)

        def run(conn: sqlite3.Connection) -> WorkflowInstance | None:
            if not deliver(conn):
                return None
            return _load_workflows(conn, [delivery.workflow_id])[0]

        return await self._db.write(run)

    async def deliver_event_leased(
        self,
        delivery: EventDelivery,
        locks: DistributedLockProvider,
        resource: str,
        ttl: timedelta,
        *,
        release: Lease | None = None,
    ) -> tuple[Lease | None, WorkflowInstance | None]:
        """The lease on ``resource``, then :meth:`deliver_event_claiming` under its
        token (and ``release`` given up), in one transaction (see
        :class:`~wfe.core.protocols.LeasingDelivery`): a refused delivery rolls the
        lease back with it."""
        own = self._own(locks)
        take = own.taker(resource, ttl)

        def run(conn: sqlite3.Connection) -> tuple[Lease | None, WorkflowInstance | None]:
            lease = take(conn)
            if lease is None:
                return None, None
            deliver = self._deliverer(delivery, lease.fencing_token)
            if not deliver(conn):
                return lease, None
            if release is not None:
                own.give_up(conn, release)
            return lease, _load_workflows(conn, [delivery.workflow_id])[0]

        return await self._db.write(run)

    def _deliverer(
        self, delivery: EventDelivery, token: int | None
    ) -> Callable[[sqlite3.Connection], bool]:
        """The delivery's write under fencing ``token`` (the delivery's own, or the
        lease's just taken)."""
        d = delivery
        label = self._db.label
        when = c.to_us(d.time)

        def run(conn: sqlite3.Connection) -> bool:
            _fence(conn, label, d.workflow_id, token)
            sub = conn.execute(
                "SELECT terminated FROM subscriptions WHERE id = ?", (d.subscription_id,)
            ).fetchone()
            event = conn.execute(
                "SELECT data, processed FROM events WHERE id = ?", (d.event_id,)
            ).fetchone()
            ptr = conn.execute(
                "SELECT body FROM pointers WHERE id = ? AND workflow_id = ?",
                (d.pointer_id, d.workflow_id),
            ).fetchone()
            if sub is None or sub[0] or event is None or event[1] or ptr is None:
                return False
            body = c.receive_event(ptr[0], event[0])
            if body is None:
                return False  # the pointer no longer waits (cancelled, delivered)
            conn.execute("UPDATE pointers SET body = ? WHERE id = ?", (body, d.pointer_id))
            conn.execute(
                "UPDATE workflows SET next_execution = ? WHERE id = ? AND status = ?",
                (when, d.workflow_id, WorkflowStatus.RUNNABLE.value),
            )
            conn.execute(
                "UPDATE subscriptions SET terminated = 1 WHERE id = ?", (d.subscription_id,)
            )
            if d.mark_processed:
                conn.execute("UPDATE events SET processed = 1 WHERE id = ?", (d.event_id,))
            return True

        return run

    async def get_workflow(
        self, workflow_id: str, *, with_pointers: bool = True
    ) -> WorkflowInstance:
        """The instance (with its pointers in stored order unless ``with_pointers`` is
        false)."""

        def run(conn: sqlite3.Connection) -> list[WorkflowInstance]:
            if with_pointers:
                return _load_workflows(conn, [workflow_id])
            row = conn.execute(
                f"SELECT {c.WORKFLOW_COLUMNS} FROM workflows WHERE id = ?", (workflow_id,)
            ).fetchone()
            return [] if row is None else [c.workflow_from_row(row)]

        def short(conn: sqlite3.Connection) -> list[WorkflowInstance] | None:
            """``run``, for a history short enough to read on the trio thread; ``None``
            for a longer one (stops counting past the bound)."""
            longer = conn.execute(_HISTORY_PAST_INLINE, (workflow_id,)).fetchone()
            return None if longer is not None else run(conn)

        found: list[WorkflowInstance] | None = None
        if with_pointers:
            found = await self._db.read(short, small=True)
        if found is None:
            found = await self._db.read(run, small=not with_pointers)
        if not found:
            raise WorkflowNotFoundError(
                f"no workflow {workflow_id} in SQLite store {self._db.label}"
            )
        return found[0]

    async def get_workflows(
        self, workflow_ids: Sequence[str], *, with_pointers: bool = True
    ) -> list[WorkflowInstance]:
        """The instances of ``workflow_ids`` that exist, in that order, each once, in one
        read (on the trio thread for a few rows without pointers)."""
        ids = list(dict.fromkeys(workflow_ids))
        if not ids:
            await trio.lowlevel.checkpoint()
            return []

        def run(conn: sqlite3.Connection) -> list[WorkflowInstance]:
            return _load_workflows(conn, ids, with_pointers=with_pointers)

        return await self._db.read(run, small=not with_pointers and len(ids) <= _INLINE_ROWS)

    async def get_runnable_instances(self, as_of: datetime, limit: int = 1000) -> list[str]:
        """Ids of RUNNABLE instances due at ``as_of``, earliest due first, then those
        nothing would pick up (no wake time and no open subscription)."""
        runnable = WorkflowStatus.RUNNABLE.value
        at = c.to_us(as_of)

        def run(conn: sqlite3.Connection) -> list[str]:
            due = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM workflows WHERE status = ? AND next_execution IS NOT NULL "
                    "AND next_execution <= ? ORDER BY next_execution, rowid LIMIT ?",
                    (runnable, at, limit),
                )
            ]
            if len(due) < limit:
                due += [
                    r[0]
                    for r in conn.execute(
                        "SELECT w.id FROM workflows w WHERE w.status = ? "
                        "AND w.next_execution IS NULL AND NOT EXISTS (SELECT 1 FROM "
                        "subscriptions s WHERE s.workflow_id = w.id AND s.terminated = 0) "
                        "LIMIT ?",
                        (runnable, limit - len(due)),
                    )
                ]
            return due

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
        await self._db.write(self._event_creator(event))
        return event.id

    async def create_event_leased(
        self,
        event: Event,
        locks: DistributedLockProvider,
        resource: str,
        ttl: timedelta,
    ) -> Lease | None:
        """Store a new event and take the lease on ``resource`` in one transaction
        (see :class:`~wfe.core.protocols.LeasingPersistence`)."""
        return await self._db.write(self._leased(self._event_creator(event), locks, resource, ttl))

    def _event_creator(self, event: Event) -> Callable[[sqlite3.Connection], None]:
        params = c.event_params(event)
        label = self._db.label

        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(_INSERT_EVENT, params)
            except sqlite3.IntegrityError as exc:
                raise ProviderError(
                    f"SQLite store {label}: event {event.id} already exists"
                ) from exc

        return run

    async def get_event(self, event_id: str) -> Event:
        """The event; :class:`ProviderError` if there is none with that id."""
        row = await self._db.read(
            lambda conn: conn.execute(
                f"SELECT {c.EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,)
            ).fetchone(),
            small=True,
        )
        if row is None:
            raise ProviderError(f"no event {event_id} in SQLite store {self._db.label}")
        return c.event_from_row(row)

    async def get_runnable_events(self, as_of: datetime, limit: int = 1000) -> list[str]:
        """Unprocessed events due at ``as_of`` that an open subscription would take."""
        at = c.to_us(as_of)

        def run(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT e.id FROM events e WHERE e.processed = 0 AND e.time <= ? "
                "AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.event_name = e.name "
                "AND s.event_key = e.key AND s.terminated = 0 AND s.as_of <= e.time) "
                "ORDER BY e.time, e.rowid LIMIT ?",
                (at, limit),
            ).fetchall()
            return [r[0] for r in rows]

        return await self._db.read(run)

    async def get_pending_events(
        self, event_name: str, event_key: str, as_of: datetime, limit: int = 1000
    ) -> list[Event]:
        """Unprocessed events with this name and key at or after ``as_of``."""
        params = (event_name, event_key, c.to_us(as_of), limit)

        def run(conn: sqlite3.Connection) -> list[Event]:
            rows = conn.execute(_PENDING, params)
            return [c.event_from_row(r) for r in rows]

        return await self._db.read(run, small=limit <= 10)

    # -- subscriptions ----------------------------------------------------------------

    async def get_subscriptions(
        self, event_name: str, event_key: str, as_of: datetime
    ) -> list[EventSubscription]:
        """Open subscriptions with this name and key and ``as_of`` at or before
        ``as_of``, oldest first."""
        params = (event_name, event_key, c.to_us(as_of))

        def run(conn: sqlite3.Connection) -> list[EventSubscription]:
            rows = conn.execute(f"SELECT {c.SUBSCRIPTION_COLUMNS} {_OPEN_SUBSCRIPTIONS}", params)
            return [c.subscription_from_row(r) for r in rows]

        return await self._db.read(run, small=True)

    async def get_subscriptions_with_pending(
        self, event_name: str, event_key: str, as_of: datetime
    ) -> list[tuple[EventSubscription, str | None]]:
        """:meth:`get_subscriptions`, each with its first pending event's id, in one
        statement (see :class:`~wfe.core.protocols.PendingSubscriptions`)."""
        params = (event_name, event_key, c.to_us(as_of))

        def run(conn: sqlite3.Connection) -> list[tuple[EventSubscription, str | None]]:
            rows = conn.execute(
                f"SELECT {c.SUBSCRIPTION_COLUMNS}, (SELECT e.id FROM events e "
                "WHERE e.name = s.event_name AND e.key = s.event_key "
                "AND e.time >= s.as_of AND e.processed = 0 ORDER BY e.time, e.rowid LIMIT 1) "
                f"{_OPEN_SUBSCRIPTIONS}",
                params,
            )
            return [(c.subscription_from_row(r[:-1]), r[-1]) for r in rows]

        return await self._db.read(run, small=True)

    # -- errors and scheduled commands ------------------------------------------------

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

    # -- retention ----------------------------------------------------------------------

    async def purge_workflows(
        self, before: datetime, statuses: Sequence[WorkflowStatus], limit: int = 1000
    ) -> list[str]:
        """Delete up to ``limit`` ended instances with everything that is theirs, in
        one transaction; return their ids."""
        chosen = check_purge_statuses(statuses)
        before_us, now_us = c.to_us(before), lease_us()  # lease rows' clock
        return await self._db.write(
            lambda conn: _purge.purge_workflows(conn, before_us, chosen, max(limit, 0), now_us)
        )

    async def count_purgeable(self, before: datetime, statuses: Sequence[WorkflowStatus]) -> int:
        """How many instances :meth:`purge_workflows` would delete."""
        chosen = check_purge_statuses(statuses)
        before_us = c.to_us(before)
        return await self._db.read(lambda conn: _purge.purgeable_count(conn, before_us, chosen))

    async def purge_events(self, before: datetime, limit: int = 1000) -> int:
        """Delete up to ``limit`` processed events older than ``before``."""
        before_us, now_us = c.to_us(before), lease_us()  # lease rows' clock
        return await self._db.write(
            lambda conn: _purge.purge_events(conn, before_us, max(limit, 0), now_us)
        )


def _check_paging(skip: int, take: int) -> None:
    if skip < 0 or take < 0:
        raise ConfigurationError(f"skip and take must not be negative, got {skip} and {take}")


def _load_workflows(
    conn: sqlite3.Connection, ids: list[str], *, with_pointers: bool = True
) -> list[WorkflowInstance]:
    """Instances (with their pointers unless ``with_pointers`` is false), in the order of
    ``ids``, inside one snapshot."""
    found: dict[str, WorkflowInstance] = {}
    # Chunks stay under SQLite's bound-parameter limit.
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT {c.WORKFLOW_COLUMNS} FROM workflows WHERE id IN ({marks})", chunk
        ):
            found[row[0]] = c.workflow_from_row(row, [])
        if not with_pointers:
            continue
        for pid, wid, seq, body in conn.execute(
            f"SELECT id, workflow_id, sequence, body FROM pointers WHERE workflow_id IN ({marks}) "
            "ORDER BY workflow_id, sequence, rowid",
            chunk,
        ):
            inst = found.get(wid)
            if inst is not None:
                inst.execution_pointers.append(c.pointer_from_body(pid, seq, body))
    return [found[i] for i in ids if i in found]


def _fence(conn: sqlite3.Connection, label: str, workflow_id: str, token: int | None) -> None:
    """Inside a write transaction: refuse a stale ``token`` for the instance, and raise
    its fence to ``token`` (the fence only moves up)."""
    if token is None:
        row = conn.execute("SELECT 1 FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
    else:
        cur = conn.execute(
            "UPDATE workflows SET fence = ? WHERE id = ? AND (fence IS NULL OR fence <= ?)",
            (token, workflow_id, token),
        )
        if cur.rowcount:
            return
        row = conn.execute("SELECT fence FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
        if row is not None:
            raise StaleLeaseError(
                f"workflow {workflow_id}: write with fencing token {token} refused: the "
                f"lease passed to a holder with token {row[0]} (SQLite store {label})"
            )
    if row is None:
        raise WorkflowNotFoundError(f"no workflow {workflow_id} in SQLite store {label}")
