"""At-least-once work queues on ``SELECT ... FOR UPDATE SKIP LOCKED``, woken by NOTIFY."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import Any

import trio

from wfe.core import ConfigurationError, ProviderError
from wfe.core.protocols import QueueItem, QueueKind

from . import _codec as c
from ._base import PostgresProvider, open_database
from ._database import ASYNC_COMMIT, Conn, Database
from ._lock import NOW_US

log = logging.getLogger("wfe.postgres")

# Queue writes commit without waiting for the disk (ASYNC_COMMIT): see the class.
_ENQUEUE = (
    "WITH i AS (INSERT INTO {s}.queue_items (kind, item_id, receipt, visible_at) "
    f"SELECT %(k)s, x, NULL, 0 FROM unnest(%(ids)s::text[]) AS x WHERE {ASYNC_COMMIT} "
    "ON CONFLICT (kind, item_id) WHERE receipt IS NULL DO NOTHING) "
    "SELECT pg_notify(%(ch)s, 'q:' || %(k)s)"
)
# The oldest visible rows (up to %(n)s) no other transaction holds; SKIP LOCKED lets
# concurrent consumers take different rows instead of queueing behind one. When none is
# taken, the same round trip says when the earliest row of the kind is (or becomes)
# visible, as microseconds from now (NULL: the kind is empty), so an idle consumer
# sleeps until then.
_TAKE = (
    "WITH next AS MATERIALIZED (SELECT id FROM {s}.queue_items WHERE kind = %(k)s "
    f"AND visible_at <= {NOW_US} AND {ASYNC_COMMIT} ORDER BY id LIMIT %(n)s "
    "FOR UPDATE SKIP LOCKED), "
    f"taken AS (UPDATE {{s}}.queue_items q SET receipt = %(r)s, visible_at = {NOW_US} + %(vt)s "
    "FROM next WHERE q.id = next.id RETURNING q.id, q.item_id) "
    "SELECT id, item_id, NULL::bigint FROM taken UNION ALL "
    f"SELECT NULL, NULL, (SELECT min(visible_at) - {NOW_US} FROM {{s}}.queue_items "
    "WHERE kind = %(k)s) WHERE NOT EXISTS (SELECT 1 FROM taken)"
)
_ACK = (
    "DELETE FROM {s}.queue_items q USING unnest(%(ids)s::bigint[], %(rs)s::text[]) AS a(id, r) "
    f"WHERE q.id = a.id AND q.receipt = a.r AND {ASYNC_COMMIT}"
)
_PUT_BACK = (
    "WITH waiting AS (SELECT 1 FROM {s}.queue_items w, {s}.queue_items me "
    "WHERE me.id = %(id)s AND me.receipt = %(r)s AND w.kind = me.kind "
    "AND w.item_id = me.item_id AND w.receipt IS NULL), "
    "gone AS (DELETE FROM {s}.queue_items WHERE id = %(id)s AND receipt = %(r)s "
    f"AND EXISTS (SELECT 1 FROM waiting) AND {ASYNC_COMMIT} RETURNING 1) "
    "UPDATE {s}.queue_items SET receipt = NULL, visible_at = 0 WHERE id = %(id)s "
    f"AND receipt = %(r)s AND NOT EXISTS (SELECT 1 FROM waiting) AND {ASYNC_COMMIT}"
)


class PostgresQueueProvider(PostgresProvider):
    """Queues per :class:`~wfe.core.protocols.QueueKind` in the ``queue_items`` table.

    A dequeued row stays in the table, invisible for ``visibility_timeout`` seconds
    (server clock), until acked; if its taker dies it is delivered again. Each delivery
    carries a fresh random receipt, so an old receipt cannot ack a redelivery. An
    enqueue sends ``NOTIFY``, so a waiting ``dequeue`` in any process wakes within
    milliseconds; without the LISTEN connection it polls every ``poll_interval``.

    Queue writes commit without waiting for the disk (``synchronous_commit = off`` for
    their transaction): a server crash may lose the last enqueues, deliveries or acks,
    which costs a redelivery or a poll, never a workflow (the store is the truth).
    """

    def __init__(
        self,
        url: str = "postgresql://postgres@127.0.0.1:5432/postgres",
        *,
        schema: str | None = None,
        visibility_timeout: float = 30.0,
        poll_interval: float = 1.0,
        pool_size: int = 8,
        connect_timeout: float = 10.0,
    ) -> None:
        self._share(
            open_database(
                url,
                schema=schema,
                visibility_timeout=visibility_timeout,
                poll_interval=poll_interval,
                pool_size=pool_size,
                connect_timeout=connect_timeout,
            )
        )

    def _share(self, db: Database) -> None:
        super()._share(db)
        self._enqueue = db.q(_ENQUEUE)
        self._take = db.q(_TAKE)
        self._ack = db.q(_ACK)
        self._put_back_sql = db.q(_PUT_BACK)

    @property
    def visibility_timeout(self) -> float:
        """Seconds a dequeued item stays invisible before it is delivered again."""
        return self._db.settings.visibility_timeout

    async def enqueue(self, kind: QueueKind, item_id: str) -> None:
        """Add ``item_id`` to ``kind`` (coalesced with a waiting copy)."""
        await self.enqueue_many(kind, [item_id])

    async def enqueue_many(self, kind: QueueKind, item_ids: Sequence[str]) -> None:
        """Add every id of ``item_ids`` to ``kind`` in one statement (coalesced)."""
        kind_value = _kind(kind)
        ids = list(dict.fromkeys(c.text(i, "a queue item id") for i in item_ids))
        if not ids:
            return
        params = {"k": kind_value, "ids": ids, "ch": self._db.settings.channel}
        # Safe to repeat: a second copy coalesces with the first.
        # Safe to lose in a server crash: the poller finds the work in the store again.
        await self._db.run(lambda conn: conn.execute(self._enqueue, params), idempotent=True)
        self._db.listener.wake(kind_value)

    async def dequeue(self, kind: QueueKind, timeout: float) -> QueueItem | None:
        """The oldest visible item of ``kind``, waiting up to ``timeout`` seconds;
        ``None`` when none came. Cancelling it loses no item. While the server is
        unreachable it keeps trying until ``timeout`` and then returns ``None`` (the
        host goes on; the store still holds the work)."""
        items = await self.dequeue_many(kind, 1, timeout)
        return items[0] if items else None

    async def dequeue_many(self, kind: QueueKind, limit: int, timeout: float) -> list[QueueItem]:
        """Up to ``limit`` of the oldest visible items of ``kind``, in one statement,
        waiting up to ``timeout`` seconds for the first; empty when none came (or the
        server stayed unreachable). Cancelling it loses no item."""
        kind_enum = QueueKind(_kind(kind))
        if not limit >= 1:
            raise ConfigurationError(f"dequeue_many limit must be at least 1, got {limit!r}")
        if not timeout >= 0:
            raise ConfigurationError(f"dequeue timeout must be >= 0 seconds, got {timeout!r}")
        db = self._db
        deadline = trio.current_time() + timeout
        vt_us = max(1, round(db.settings.visibility_timeout * 1_000_000))
        listener = db.listener

        def take(conn: Conn) -> tuple[list[QueueItem], float | None]:
            receipt = secrets.token_hex(8)
            rows = conn.execute(
                self._take, {"k": kind_enum.value, "r": receipt, "vt": vt_us, "n": limit}
            ).fetchall()
            if rows and rows[0][0] is None:
                wait = rows[0][2]
                return [], None if wait is None else max(0.0, wait / 1e6)
            items = [
                QueueItem(kind=kind_enum, item_id=item_id, receipt=f"{row_id}:{receipt}")
                for row_id, item_id, _ in sorted(rows)
            ]
            return items, None

        while True:
            wakeup = listener.wakeup(kind_enum.value)
            next_visible: float | None = None
            try:
                # A delivery lost in a server crash is delivered again: not durable.
                taken, next_visible = await db.run(take)
            except ProviderError as exc:
                log.warning("dequeue from %s failed: %s; retrying", db.label, exc)
                taken, next_visible = [], db.settings.poll_interval
            if taken:
                try:
                    await trio.lowlevel.checkpoint_if_cancelled()
                except trio.Cancelled:
                    with trio.CancelScope(shield=True):
                        for item in taken:
                            await self._put_back(item)
                    raise
                return taken
            remaining = deadline - trio.current_time()
            if remaining <= 0:
                return []
            # NOTIFY wakes us when connected; poll slowly anyway (and fast while the
            # LISTEN connection is down), and wake when an invisible item reappears.
            poll = db.settings.poll_interval * (5 if listener.connected else 1)
            wait = min(remaining, poll)
            if next_visible is not None:
                wait = min(wait, next_visible + 0.001)
            with trio.move_on_after(wait):
                await wakeup.wait()

    async def ack(self, item: QueueItem) -> None:
        """Finish a delivery; acking twice or with a superseded receipt is harmless."""
        await self.ack_many([item])

    async def ack_many(self, items: Sequence[QueueItem]) -> None:
        """:meth:`ack` of every item of ``items``, in one statement."""
        rows = [parsed for item in items if (parsed := _parse_receipt(item.receipt))]
        if not rows:
            return
        params = {"ids": [r[0] for r in rows], "rs": [r[1] for r in rows]}
        # A lost ack means one more (harmless) delivery.
        await self._db.run(lambda conn: conn.execute(self._ack, params), idempotent=True)

    async def _put_back(self, item: QueueItem) -> None:
        """Make a delivery visible again (or drop it when a waiting copy exists)."""
        parsed = _parse_receipt(item.receipt)
        if parsed is None:
            return
        params: dict[str, Any] = {"id": parsed[0], "r": parsed[1]}
        await self._db.run(lambda conn: conn.execute(self._put_back_sql, params), idempotent=True)
        self._db.listener.wake(item.kind.value)


def _kind(kind: QueueKind) -> str:
    try:
        return QueueKind(kind).value
    except ValueError:
        known = ", ".join(k.value for k in QueueKind)
        raise ConfigurationError(f"unknown queue kind {kind!r}; expected one of {known}") from None


def _parse_receipt(receipt: str) -> tuple[int, str] | None:
    row_id, sep, token = receipt.partition(":")
    if not sep or not row_id.isdigit():
        return None
    return int(row_id), token
