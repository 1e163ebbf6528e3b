"""The PostgreSQL store of record: workflows, pointers, events, subscriptions, errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
import psycopg.errors
import trio

from wfe.core import (
    ConfigurationError,
    Event,
    EventSubscription,
    ExecutionError,
    ProviderError,
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

from . import _codec as c
from . import _purge
from ._base import PostgresProvider, open_database
from ._checkpoint import GroupCommitter, prepare, refused_error
from ._database import Conn
from ._lock import ACQUIRE, ACQUIRE_NAMED, PostgresLockProvider
from ._logs import PostgresStepLogs
from ._queue import PostgresQueueProvider
from ._search import PostgresSearchIndex

# The row and its pointers in one statement, so one snapshot.
# Instance rows with their pointers' ids, sequences and bodies, in stored order.
_WITH_POINTERS = (
    f"SELECT {c.WORKFLOW_COLUMNS}, "
    "ARRAY(SELECT p.id FROM {s}.pointers p WHERE p.workflow_id = w.id "
    "ORDER BY p.sequence, p.id), "
    "ARRAY(SELECT p.sequence FROM {s}.pointers p WHERE p.workflow_id = w.id "
    "ORDER BY p.sequence, p.id), "
    "ARRAY(SELECT p.body FROM {s}.pointers p WHERE p.workflow_id = w.id "
    "ORDER BY p.sequence, p.id) "
    "FROM {s}.workflows w"
)
# A new instance and its pointers (parameters: the instance row's, its id, then the
# pointers' ids, sequences and bodies, as arrays in binary: no quoting and escaping of
# each JSON body).
_INSERT_WORKFLOW = (
    f"INSERT INTO {{s}}.workflows ({c.WORKFLOW_COLUMNS}) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s::json, %s, %s, %s, %s)"
)
_INSERT_POINTERS = (
    "INSERT INTO {s}.pointers (id, workflow_id, sequence, body) "
    "SELECT p.id, %s, p.seq, p.body FROM "
    "unnest(%b::text[], %b::int[], %b::json[]) AS p(id, seq, body)"
)
_CREATE = f"WITH w AS ({_INSERT_WORKFLOW}) {_INSERT_POINTERS}"
# ... and the lease on it (parameters then those of ACQUIRE). Data-modifying CTEs all
# run, read or not: the instance, its pointers and the lease are stored by one
# statement, all or nothing. The lease's row comes back (none: a live lease holds it).
_CREATE_LEASED = (
    f"WITH w AS ({_INSERT_WORKFLOW}), p AS ({_INSERT_POINTERS}), l AS ({ACQUIRE}) "
    "SELECT token, expires_at FROM l"
)
_INSERT_EVENT = (
    f"INSERT INTO {{s}}.events ({c.EVENT_COLUMNS}) VALUES (%s, %s, %s, %s::json, %s, %s)"
)
# ... with the lease (see _CREATE_LEASED).
_CREATE_EVENT_LEASED = (
    f"WITH e AS ({_INSERT_EVENT}), l AS ({ACQUIRE}) SELECT token, expires_at FROM l"
)
_READ_WORKFLOW = _WITH_POINTERS + " WHERE w.id = %s"
_READ_WORKFLOWS = _WITH_POINTERS + " WHERE w.id = ANY(%s)"
_FENCE = (
    "UPDATE {s}.workflows SET fence = COALESCE(%(t)s::bigint, fence) WHERE id = %(w)s "
    "AND (%(t)s::bigint IS NULL OR fence IS NULL OR fence <= %(t)s::bigint) RETURNING id"
)
# What a delivery reads, after the fence CTE ``f``: whether the fence accepted it, the
# fence, and the subscription, event and pointer rows (locked for the write).
_DELIVERY_COLUMNS = (
    "(SELECT id FROM f), "
    "(SELECT fence FROM {s}.workflows WHERE id = %(w)s), "
    "(SELECT terminated FROM {s}.subscriptions WHERE id = %(sub)s FOR UPDATE), "
    "(SELECT processed FROM {s}.events WHERE id = %(ev)s FOR UPDATE), "
    "(SELECT data FROM {s}.events WHERE id = %(ev)s), "
    "(SELECT body FROM {s}.pointers WHERE id = %(ptr)s AND workflow_id = %(w)s FOR UPDATE)"
)
_DELIVERY_READ = "WITH f AS (" + _FENCE + ") SELECT " + _DELIVERY_COLUMNS
# ... taking the workflow's lease first, in the same statement: the fence is raised to
# its token (nothing is, when a live lease holds it). Two more columns: the lease's row.
_DELIVERY_READ_LEASED = (
    f"WITH l AS ({ACQUIRE_NAMED}), "
    "f AS (UPDATE {s}.workflows SET fence = (SELECT token FROM l) WHERE id = %(w)s "
    "AND EXISTS (SELECT 1 FROM l) "
    "AND (fence IS NULL OR fence <= (SELECT token FROM l)) RETURNING id) "
    "SELECT " + _DELIVERY_COLUMNS + ", (SELECT token FROM l), (SELECT expires_at FROM l)"
)
# The open subscriptions to a name and key that take an event of a time (parameters:
# name, key, time), oldest first.
_OPEN_SUBSCRIPTIONS = (
    "FROM {s}.subscriptions s WHERE s.event_name = %s AND s.event_key = %s "
    "AND s.as_of <= %s AND NOT s.terminated ORDER BY s.as_of, s.seq"
)
_SUBSCRIPTIONS = f"SELECT {c.SUBSCRIPTION_COLUMNS} {_OPEN_SUBSCRIPTIONS}"
# ... each with the id of its first pending event (as get_pending_events orders them),
# in one snapshot.
_SUBSCRIPTIONS_WITH_PENDING = (
    f"SELECT {c.SUBSCRIPTION_COLUMNS}, (SELECT e.id FROM {{s}}.events e "
    "WHERE e.name = s.event_name AND e.key = s.event_key AND e.time >= s.as_of "
    f"AND NOT e.processed ORDER BY e.time, e.seq LIMIT 1) {_OPEN_SUBSCRIPTIONS}"
)
_DELIVERY_WRITE = (
    "WITH p AS (UPDATE {s}.pointers SET body = %(body)s::json WHERE id = %(ptr)s), "
    "w AS (UPDATE {s}.workflows SET next_execution = %(when)s WHERE id = %(w)s "
    "AND status = 'RUNNABLE'), "
    "s AS (UPDATE {s}.subscriptions SET terminated = true WHERE id = %(sub)s) "
    "UPDATE {s}.events SET processed = true WHERE id = %(ev)s AND %(mark)s"
)

# ... and another lease of the same lock provider given up with it (see
# deliver_event_leased): its row is written by the delivery's durable commit.
_DELIVERY_WRITE_RELEASING = (
    "WITH r AS (UPDATE {s}.locks SET owner = NULL, expires_at = 0 "
    "WHERE resource = %(rr)s AND owner = %(ro)s AND token = %(rt)s), "
    + _DELIVERY_WRITE.removeprefix("WITH ")
)


def _workflow(row: tuple[Any, ...]) -> WorkflowInstance:
    ids, seqs, bodies = row[11], row[12], row[13]
    pointers = [c.pointer_from_body(i, s, b) for i, s, b in zip(ids, seqs, bodies, strict=True)]
    return c.workflow_from_row(row, pointers)


class PostgresPersistenceProvider(PostgresStepLogs, PostgresProvider):
    """Workflows, events, subscriptions and errors in one PostgreSQL schema.

    ``postgresql://user:password@host:5432/database?schema=wfe`` (``postgres://`` too);
    ``schema`` may also be given as a keyword. Also provides companions
    (:class:`~wfe.core.protocols.ProvidesCompanions`): a lock, queue and search index
    over the same connection pool, and a change feed
    (:class:`~wfe.core.protocols.WorkflowChangeFeed`) over LISTEN/NOTIFY.
    ``visibility_timeout`` and ``poll_interval`` configure the queue companion;
    ``pool_size`` the connections (and so the concurrent statements) per process.
    """

    def __init__(
        self,
        url: str = "postgresql://postgres@127.0.0.1:5432/postgres",
        *,
        schema: str | None = None,
        pool_size: int = 8,
        visibility_timeout: float = 30.0,
        poll_interval: float = 1.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self._share(
            open_database(
                url,
                schema=schema,
                pool_size=pool_size,
                visibility_timeout=visibility_timeout,
                poll_interval=poll_interval,
                connect_timeout=connect_timeout,
            )
        )

    def _share(self, db: Any) -> None:
        super()._share(db)
        self._committer = GroupCommitter(db)
        self._index_ended = False
        self._create = db.q(_CREATE)
        self._create_leased = db.q(_CREATE_LEASED)
        self._create_event = db.q(_INSERT_EVENT)
        self._create_event_leased = db.q(_CREATE_EVENT_LEASED)

    # -- companions -------------------------------------------------------------------

    def default_locks(self) -> PostgresLockProvider:
        """A lock provider on this provider's database (enter it after this one)."""
        return PostgresLockProvider._sharing(self._db)

    def default_queues(self) -> PostgresQueueProvider:
        """A queue provider on this provider's database, woken by its NOTIFYs."""
        return PostgresQueueProvider._sharing(self._db)

    def default_search(self) -> PostgresSearchIndex:
        """A tsvector search index on this provider's database."""
        return PostgresSearchIndex._sharing(self._db)

    # -- change feed ------------------------------------------------------------------

    async def watch_workflows(self, changed: Callable[[str], None]) -> None:
        """Call ``changed(workflow_id)`` whenever any process commits a checkpoint that
        changes that workflow's status (``pg_notify`` in the checkpoint's statement),
        until cancelled. Also called with ``""`` after the LISTEN connection came back,
        since changes may have been missed while it was down."""
        listener = self._db.listener
        listener.add_watcher(changed)
        try:
            await trio.sleep_forever()
        finally:
            listener.remove_watcher(changed)

    # -- workflows ------------------------------------------------------------------

    async def ensure_store_exists(self) -> None:
        """Create missing tables and indexes (run pending migrations)."""
        await trio.to_thread.run_sync(self._db.run_migrations)

    async def create_workflow(self, instance: WorkflowInstance) -> str:
        """Store a new instance with all its pointers; returns its id."""
        await self._db.run(self._creator(instance, self._create, ()))
        return instance.id

    def keeps_leases_of(self, locks: DistributedLockProvider) -> bool:
        """Whether ``locks`` keeps its leases in this provider's database (it is this
        provider's companion, :meth:`default_locks`)."""
        return isinstance(locks, PostgresLockProvider) and locks._db is self._db

    def _own(self, locks: DistributedLockProvider) -> PostgresLockProvider:
        """``locks``, which must keep its leases here (see :meth:`keeps_leases_of`)."""
        if not isinstance(locks, PostgresLockProvider) or locks._db is not self._db:
            raise ConfigurationError(
                f"PostgreSQL store, {self._db.label}: {locks!r} keeps its leases elsewhere"
            )
        return locks

    async def create_workflow_leased(
        self,
        instance: WorkflowInstance,
        locks: DistributedLockProvider,
        resource: str,
        ttl: timedelta,
    ) -> Lease | None:
        """Store a new instance and take the lease on ``resource`` in one statement
        (see :class:`~wfe.core.protocols.LeasingPersistence`)."""
        own = self._own(locks)
        lock = own.acquire_params(resource, ttl)
        row = await self._db.run(self._creator(instance, self._create_leased, lock))
        return own.lease_of(resource, ttl, row)

    def _creator(
        self, instance: WorkflowInstance, sql: str, more: tuple[Any, ...]
    ) -> Callable[[Conn], Any]:
        """The run of ``sql`` (:data:`_CREATE` or :data:`_CREATE_LEASED`) storing
        ``instance``, with ``more`` parameters after the instance's: its row, if any."""
        ptrs = instance.execution_pointers
        params = (
            *c.workflow_params(instance),
            instance.id,
            [c.text(p.id, "a pointer id") for p in ptrs],
            [p.sequence for p in ptrs],
            [c.pointer_body(p) for p in ptrs],
            *more,
        )
        label = self._db.label

        def run(conn: Conn) -> Any:
            try:
                cur = conn.execute(sql, params)
                return cur.fetchone() if cur.description else None
            except psycopg.errors.UniqueViolation:
                raise ProviderError(
                    f"PostgreSQL store, {label}: cannot create workflow {instance.id}: "
                    "it (or one of its pointer ids) already exists"
                ) from None

        return run

    async def claim_workflow(self, workflow_id: str, fencing_token: int) -> WorkflowInstance:
        """Raise the instance's fence to ``fencing_token`` and read it: from the
        moment this commits, every write with an older token is refused. The read is a
        second statement (a snapshot taken after the fence is raised) pipelined with
        the first, so the pair costs one round trip."""
        fence_sql = self._db.q(_FENCE)
        read_sql = self._db.q(_READ_WORKFLOW)
        label = self._db.label

        def run(conn: Conn) -> WorkflowInstance:
            with conn.pipeline():
                claimed = conn.execute(fence_sql, {"t": fencing_token, "w": workflow_id})
                read = conn.execute(read_sql, (workflow_id,))
            accepted = claimed.fetchone() is not None
            row = read.fetchone()
            if row is None:
                raise WorkflowNotFoundError(
                    f"no workflow {workflow_id} in PostgreSQL store, {label}"
                )
            if not accepted:
                (fence,) = conn.execute(
                    self._db.q("SELECT fence FROM {s}.workflows WHERE id = %s"), (workflow_id,)
                ).fetchone() or (None,)
                raise refused_error(label, workflow_id, fencing_token, fence)
            return _workflow(row)

        # Claiming again with the same token changes nothing: safe to retry.
        return await self._db.run(run, idempotent=True)

    async def persist_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store the checkpoint in one fenced statement (possibly together with other
        concurrent checkpoints: each is stored or refused as a whole)."""
        await self._committer.persist(prepare(checkpoint, index_ended=self._index_ended))

    async def persist_checkpoint_releasing(
        self, checkpoint: Checkpoint, locks: DistributedLockProvider, lease: Lease
    ) -> None:
        """:meth:`persist_checkpoint`, with ``lease`` given up by the same statement
        when the checkpoint is stored (see
        :class:`~wfe.core.protocols.ReleasingCheckpoint`)."""
        self._own(locks)
        await self._committer.persist(
            prepare(checkpoint, index_ended=self._index_ended, release=lease)
        )

    def index_ended_in_checkpoints(self, search: SearchIndex) -> bool:
        """When ``search`` is this provider's companion (:meth:`default_search`), write
        the search document of each workflow a checkpoint ends in that checkpoint's
        statement (see :class:`~wfe.core.protocols.IndexingPersistence`)."""
        if isinstance(search, PostgresSearchIndex) and search._db is self._db:
            self._index_ended = True
            return True
        return False

    async def deliver_event(self, delivery: EventDelivery) -> bool:
        """Give the event to the waiting pointer, close its subscription, make the
        instance due and mark the event, in one fenced transaction of two round trips
        (begin, raise the fence, read and lock the rows; write them and commit)."""
        _, delivered = await self._db.run(self._deliverer(delivery, claim=False))
        return delivered is not None

    async def deliver_event_claiming(self, delivery: EventDelivery) -> WorkflowInstance | None:
        """:meth:`deliver_event`, with the instance read after the write in its second
        round trip (see :class:`~wfe.core.protocols.ClaimingDelivery`)."""
        if delivery.fencing_token is None:
            raise ConfigurationError("a claiming delivery needs the lease's fencing token")
        _, claimed = await self._db.run(self._deliverer(delivery, claim=True))
        return claimed if isinstance(claimed, WorkflowInstance) else None

    async def deliver_event_leased(
        self,
        delivery: EventDelivery,
        locks: DistributedLockProvider,
        resource: str,
        ttl: timedelta,
        *,
        release: Lease | None = None,
    ) -> tuple[Lease | None, WorkflowInstance | None]:
        """:meth:`deliver_event_claiming` under a lease on ``resource`` taken by the
        transaction's first statement, in the same two round trips; ``release`` is
        given up by the write (see :class:`~wfe.core.protocols.LeasingDelivery`)."""
        own = self._own(locks)
        keys = own.acquire_keys(resource, ttl)
        if release is not None:
            keys |= {"rr": release.resource, "ro": release.owner, "rt": release.fencing_token}
        row, claimed = await self._db.run(
            self._deliverer(delivery, claim=True, lease=keys, releasing=release is not None)
        )
        lease = own.lease_of(resource, ttl, row)
        if lease is None:
            return None, None
        return lease, claimed if isinstance(claimed, WorkflowInstance) else None

    def _deliverer(
        self,
        delivery: EventDelivery,
        *,
        claim: bool,
        lease: dict[str, Any] | None = None,
        releasing: bool = False,
    ) -> Callable[[Conn], tuple[Any, WorkflowInstance | bool | None]]:
        """The delivery's transaction: the lease's row (``lease``: the parameters of a
        lease to take first; ``None`` when none was, or none asked) and ``None`` when
        nothing was delivered, else the instance read after it (``claim``) or ``True``.
        When ``lease`` is asked and a live lease holds it, nothing is written.
        ``releasing``: the write also gives up the lease ``lease``'s ``r*`` keys name."""
        d = delivery
        read_sql = self._db.q(_DELIVERY_READ if lease is None else _DELIVERY_READ_LEASED)
        write_sql = self._db.q(_DELIVERY_WRITE_RELEASING if releasing else _DELIVERY_WRITE)
        claim_sql = self._db.q(_READ_WORKFLOW)
        label = self._db.label
        keys = {
            "t": d.fencing_token,
            "w": d.workflow_id,
            "sub": d.subscription_id,
            "ev": d.event_id,
            "ptr": d.pointer_id,
            **(lease or {}),
        }

        def decide(conn: Conn, row: tuple[Any, ...], token: int | None) -> str | None:
            """The pointer's new body, ``None`` when there is nothing to deliver;
            raises when the fence refused the delivery."""
            fenced, fence, terminated, processed, data, body = row[:6]
            if fenced is None:
                if fence is None and not _exists(conn, self._db.q, d.workflow_id):
                    raise WorkflowNotFoundError(
                        f"no workflow {d.workflow_id} in PostgreSQL store, {label}"
                    )
                raise refused_error(label, d.workflow_id, token, fence)
            if terminated is None or terminated or processed is None or processed:
                return None
            if body is None:
                return None
            # None too when the pointer no longer waits (cancelled, delivered).
            return c.receive_event(body, data)

        def run(conn: Conn) -> tuple[Any, WorkflowInstance | bool | None]:
            # BEGIN travels with the read (and the lease), the write (and the claim's
            # read) with COMMIT: two round trips.
            claimed = None
            with conn.pipeline() as pipeline:
                conn.execute("BEGIN")
                read = conn.execute(read_sql, keys)
                pipeline.sync()
                row = read.fetchone()
                assert row is not None
                leased = None if lease is None else row[6:]
                if leased is not None and leased[0] is None:
                    # A live lease holds the workflow: nothing to keep.
                    conn.execute("ROLLBACK")
                    return None, None
                try:
                    new_body = decide(conn, row, d.fencing_token if leased is None else leased[0])
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                if new_body is not None:
                    conn.execute(
                        write_sql,
                        {
                            **keys,
                            "body": new_body,
                            "when": c.to_us(d.time),
                            "mark": d.mark_processed,
                        },
                    )
                    if claim:
                        claimed = conn.execute(claim_sql, (d.workflow_id,))
                # The raised fence (and the lease) is kept when there was nothing to
                # deliver too.
                conn.execute("COMMIT")
            if new_body is None:
                return leased, None
            if claimed is None:
                return leased, True
            claimed_row = claimed.fetchone()
            assert claimed_row is not None  # fenced and written in this transaction
            return leased, _workflow(claimed_row)

        return run

    async def get_workflow(
        self, workflow_id: str, *, with_pointers: bool = True
    ) -> WorkflowInstance:
        """The instance (with its pointers in stored order unless ``with_pointers`` is
        false: then only the row is read)."""
        if with_pointers:
            sql = self._db.q(_READ_WORKFLOW)
        else:
            sql = self._db.q(f"SELECT {c.WORKFLOW_COLUMNS} FROM {{s}}.workflows WHERE id = %s")
        row = await self._db.run(
            lambda conn: conn.execute(sql, (workflow_id,)).fetchone(), idempotent=True
        )
        if row is None:
            raise WorkflowNotFoundError(
                f"no workflow {workflow_id} in PostgreSQL store, {self._db.label}"
            )
        return _workflow(row) if with_pointers else c.workflow_from_row(row)

    async def get_workflows(
        self, workflow_ids: Sequence[str], *, with_pointers: bool = True
    ) -> list[WorkflowInstance]:
        """The instances of ``workflow_ids`` that exist, in that order, each once, in one
        statement."""
        # An id holding a NUL cannot be stored (PostgreSQL text cannot hold one).
        ids = [i for i in dict.fromkeys(workflow_ids) if "\x00" not in i]
        if not ids:
            await trio.lowlevel.checkpoint()
            return []
        if with_pointers:
            sql = self._db.q(_READ_WORKFLOWS)
        else:
            sql = self._db.q(f"SELECT {c.WORKFLOW_COLUMNS} FROM {{s}}.workflows WHERE id = ANY(%s)")
        rows = await self._db.run(
            lambda conn: conn.execute(sql, (ids,)).fetchall(), idempotent=True
        )
        read = {
            row[0]: _workflow(row) if with_pointers else c.workflow_from_row(row) for row in rows
        }
        return [read[i] for i in ids if i in read]

    async def get_runnable_instances(self, as_of: datetime, limit: int = 1000) -> list[str]:
        """Ids of RUNNABLE instances due at ``as_of``, earliest first, then those nothing
        would pick up (no wake time and no open subscription)."""
        sql = self._db.q(
            "(SELECT id FROM {s}.workflows WHERE status = 'RUNNABLE' AND next_execution "
            "IS NOT NULL AND next_execution <= %(at)s ORDER BY next_execution, seq LIMIT %(n)s) "
            "UNION ALL (SELECT w.id FROM {s}.workflows w WHERE w.status = 'RUNNABLE' "
            "AND w.next_execution IS NULL AND NOT EXISTS (SELECT 1 FROM {s}.subscriptions s "
            "WHERE s.workflow_id = w.id AND NOT s.terminated) LIMIT %(n)s)"
        )
        params = {"at": c.to_us(as_of), "n": limit}
        rows = await self._db.run(
            lambda conn: conn.execute(sql, params).fetchall(), idempotent=True
        )
        return [r[0] for r in rows[:limit]]

    async def list_workflows(
        self,
        *,
        status: WorkflowStatus | None = None,
        definition_id: str | None = None,
        skip: int = 0,
        take: int = 100,
    ) -> list[WorkflowInstance]:
        """Instances filtered by status/definition, newest first, without pointers."""
        if skip < 0 or take < 0:
            raise ConfigurationError(f"skip and take must not be negative, got {skip} and {take}")
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append("status = %s")
            params.append(WorkflowStatus(status).value)
        if definition_id is not None:
            where.append("definition_id = %s")
            params.append(c.text(definition_id, "the definition id"))
        sql = f"SELECT {c.WORKFLOW_COLUMNS} FROM {{s}}.workflows"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql = self._db.q(sql + " ORDER BY create_time DESC, seq DESC LIMIT %s OFFSET %s")
        params += [take, skip]
        rows = await self._db.run(
            lambda conn: conn.execute(sql, params).fetchall(), idempotent=True
        )
        return [c.workflow_from_row(r) for r in rows]

    # -- events -----------------------------------------------------------------------

    async def create_event(self, event: Event) -> str:
        """Store a new event; returns its id."""
        await self._db.run(self._event_creator(event, self._create_event, ()))
        return event.id

    async def create_event_leased(
        self,
        event: Event,
        locks: DistributedLockProvider,
        resource: str,
        ttl: timedelta,
    ) -> Lease | None:
        """Store a new event and take the lease on ``resource`` in one statement (see
        :class:`~wfe.core.protocols.LeasingPersistence`)."""
        own = self._own(locks)
        lock = own.acquire_params(resource, ttl)
        row = await self._db.run(self._event_creator(event, self._create_event_leased, lock))
        return own.lease_of(resource, ttl, row)

    def _event_creator(
        self, event: Event, sql: str, more: tuple[Any, ...]
    ) -> Callable[[Conn], Any]:
        """The run of ``sql`` (:data:`_INSERT_EVENT` or :data:`_CREATE_EVENT_LEASED`)
        storing ``event``, with ``more`` parameters after the event's: its row, if any."""
        params = (*c.event_params(event), *more)
        label = self._db.label

        def run(conn: Conn) -> Any:
            try:
                cur = conn.execute(sql, params)
                return cur.fetchone() if cur.description else None
            except psycopg.errors.UniqueViolation:
                raise ProviderError(
                    f"PostgreSQL store, {label}: event {event.id} already exists"
                ) from None

        return run

    async def get_event(self, event_id: str) -> Event:
        """The event; :class:`ProviderError` if there is none with that id."""
        sql = self._db.q(f"SELECT {c.EVENT_COLUMNS} FROM {{s}}.events WHERE id = %s")
        row = await self._db.run(
            lambda conn: conn.execute(sql, (event_id,)).fetchone(), idempotent=True
        )
        if row is None:
            raise ProviderError(f"no event {event_id} in PostgreSQL store, {self._db.label}")
        return c.event_from_row(row)

    async def get_runnable_events(self, as_of: datetime, limit: int = 1000) -> list[str]:
        """Unprocessed events due at ``as_of`` that an open subscription would take."""
        sql = self._db.q(
            "SELECT e.id FROM {s}.events e WHERE NOT e.processed AND e.time <= %s "
            "AND EXISTS (SELECT 1 FROM {s}.subscriptions s WHERE s.event_name = e.name "
            "AND s.event_key = e.key AND NOT s.terminated AND s.as_of <= e.time) "
            "ORDER BY e.time, e.seq LIMIT %s"
        )
        params = (c.to_us(as_of), limit)
        rows = await self._db.run(
            lambda conn: conn.execute(sql, params).fetchall(), idempotent=True
        )
        return [r[0] for r in rows]

    async def get_pending_events(
        self, event_name: str, event_key: str, as_of: datetime, limit: int = 1000
    ) -> list[Event]:
        """Unprocessed events with this name and key at or after ``as_of``."""
        sql = self._db.q(
            f"SELECT {c.EVENT_COLUMNS} FROM {{s}}.events WHERE name = %s AND key = %s "
            "AND time >= %s AND NOT processed ORDER BY time, seq LIMIT %s"
        )
        params = (
            c.text(event_name, "the event name"),
            c.text(event_key, "the event key"),
            c.to_us(as_of),
            limit,
        )
        rows = await self._db.run(
            lambda conn: conn.execute(sql, params).fetchall(), idempotent=True
        )
        return [c.event_from_row(r) for r in rows]

    # -- subscriptions ----------------------------------------------------------------

    async def get_subscriptions(
        self, event_name: str, event_key: str, as_of: datetime
    ) -> list[EventSubscription]:
        """Open subscriptions with this name and key and ``as_of`` at or before
        ``as_of``, oldest first."""
        rows = await self._subscription_rows(_SUBSCRIPTIONS, event_name, event_key, as_of)
        return [c.subscription_from_row(r) for r in rows]

    async def get_subscriptions_with_pending(
        self, event_name: str, event_key: str, as_of: datetime
    ) -> list[tuple[EventSubscription, str | None]]:
        """:meth:`get_subscriptions`, each with its first pending event's id, in one
        statement (see :class:`~wfe.core.protocols.PendingSubscriptions`)."""
        rows = await self._subscription_rows(
            _SUBSCRIPTIONS_WITH_PENDING, event_name, event_key, as_of
        )
        return [(c.subscription_from_row(r[:-1]), r[-1]) for r in rows]

    async def _subscription_rows(
        self, sql: str, event_name: str, event_key: str, as_of: datetime
    ) -> list[tuple[Any, ...]]:
        """The rows of ``sql``, a read of the open subscriptions to ``event_name`` and
        ``event_key`` taking an event of ``as_of``."""
        query = self._db.q(sql)
        params = (
            c.text(event_name, "the event name"),
            c.text(event_key, "the event key"),
            c.to_us(as_of),
        )
        return await self._db.run(
            lambda conn: conn.execute(query, params).fetchall(), idempotent=True
        )

    # -- errors -----------------------------------------------------------------------

    async def get_errors(self, workflow_id: str) -> list[ExecutionError]:
        """Errors recorded for a workflow, oldest first."""
        sql = self._db.q(
            "SELECT workflow_id, pointer_id, time, message FROM {s}.errors "
            "WHERE workflow_id = %s ORDER BY time, id"
        )
        rows = await self._db.run(
            lambda conn: conn.execute(sql, (workflow_id,)).fetchall(), idempotent=True
        )
        return [
            ExecutionError(workflow_id=r[0], pointer_id=r[1], time=c.from_us(r[2]), message=r[3])
            for r in rows
        ]

    # -- retention ----------------------------------------------------------------------

    async def purge_workflows(
        self, before: datetime, statuses: Sequence[WorkflowStatus], limit: int = 1000
    ) -> list[str]:
        """Delete up to ``limit`` ended instances (oldest first) with their pointers, step logs,
        subscriptions, errors and free lease rows, in one statement; return their ids."""
        chosen = [s.value for s in check_purge_statuses(statuses)]
        sql = self._db.q(_purge.WORKFLOWS)
        params = {"st": chosen, "before": c.to_us(before), "n": max(limit, 0)}
        rows = await self._db.run(lambda conn: conn.execute(sql, params).fetchall())
        # RETURNING has no order: oldest first, as they were chosen.
        return [r[0] for r in sorted(rows, key=lambda r: (r[1], r[0]))]

    async def count_purgeable(self, before: datetime, statuses: Sequence[WorkflowStatus]) -> int:
        """How many instances :meth:`purge_workflows` would delete."""
        chosen = [s.value for s in check_purge_statuses(statuses)]
        sql = self._db.q(_purge.COUNT)
        params = {"st": chosen, "before": c.to_us(before)}
        row = await self._db.run(lambda conn: conn.execute(sql, params).fetchone(), idempotent=True)
        return 0 if row is None else int(row[0])

    async def purge_events(self, before: datetime, limit: int = 1000) -> int:
        """Delete up to ``limit`` processed events older than ``before``; how many."""
        sql = self._db.q(_purge.EVENTS)
        params = {"before": c.to_us(before), "n": max(limit, 0)}

        def run(conn: Conn) -> int:
            row = conn.execute(sql, params).fetchone()
            return 0 if row is None else int(row[0])

        # Deleting processed events twice deletes nothing more: safe to retry.
        return await self._db.run(run, idempotent=True)


def _exists(conn: Conn, q: Callable[[str], str], workflow_id: str) -> bool:
    return (
        conn.execute(q("SELECT 1 FROM {s}.workflows WHERE id = %s"), (workflow_id,)).fetchone()
        is not None
    )
