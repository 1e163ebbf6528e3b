"""At-least-once work queues in a SQLite table, with a visibility timeout and ack."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Sequence

import trio

from wfe.core import ConfigurationError
from wfe.core.protocols import QueueItem, QueueKind

from ._base import SqliteProvider, open_database
from ._database import wall_us


class SqliteQueueProvider(SqliteProvider):
    """Queues per :class:`~wfe.core.protocols.QueueKind` in the ``queue_items`` table.

    A dequeued row stays in the table, invisible for ``visibility_timeout`` seconds,
    until acked; if its taker dies it is delivered again. Each delivery carries a fresh
    random receipt, so an old receipt cannot ack a redelivery. Enqueueing an id that is
    already waiting is coalesced. A dequeue wakes at once on an enqueue from this
    process (through providers sharing the database) and polls every
    ``poll_interval`` seconds for other processes' enqueues.
    """

    def __init__(
        self,
        url: str = "sqlite://:memory:",
        *,
        visibility_timeout: float = 30.0,
        poll_interval: float = 0.05,
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
                visibility_timeout=visibility_timeout,
                poll_interval=poll_interval,
            )
        )

    @property
    def visibility_timeout(self) -> float:
        """Seconds a dequeued item stays invisible before it is delivered again."""
        return self._db.visibility_timeout

    async def enqueue(self, kind: QueueKind, item_id: str) -> None:
        """Add ``item_id`` to ``kind`` (coalesced with a waiting copy).

        Posted to the writer thread, not waited for (see :meth:`Database.post`): an item
        is a hint, and what it points at is already in the store, where the host's
        poller finds it if a crash loses the item. Consumers in this process wake once
        it has committed; a later dequeue here always sees it."""
        kind_value = _kind(kind)
        await trio.lowlevel.checkpoint()
        self._db.enqueued(kind_value)
        self._db.post(
            lambda conn: conn.execute(
                "INSERT OR IGNORE INTO queue_items (kind, item_id, receipt, visible_at) "
                "VALUES (?, ?, NULL, 0)",
                (kind_value, item_id),
            ),
            notify=lambda: self._db.notify(kind_value),
        )

    async def enqueue_many(self, kind: QueueKind, item_ids: Sequence[str]) -> None:
        """Add every id of ``item_ids`` to ``kind`` in one write (coalesced); posted
        like :meth:`enqueue`."""
        kind_value = _kind(kind)
        rows = [(kind_value, item_id) for item_id in item_ids]
        await trio.lowlevel.checkpoint()
        if not rows:
            return
        self._db.enqueued(kind_value)
        self._db.post(
            lambda conn: conn.executemany(
                "INSERT OR IGNORE INTO queue_items (kind, item_id, receipt, visible_at) "
                "VALUES (?, ?, NULL, 0)",
                rows,
            ),
            notify=lambda: self._db.notify(kind_value),
        )

    async def dequeue(self, kind: QueueKind, timeout: float) -> QueueItem | None:
        """The oldest visible item of ``kind``, waiting up to ``timeout`` seconds;
        ``None`` when none came. Cancelling it loses no item."""
        items = await self.dequeue_many(kind, 1, timeout)
        return items[0] if items else None

    async def dequeue_many(self, kind: QueueKind, limit: int, timeout: float) -> list[QueueItem]:
        """Up to ``limit`` of the oldest visible items of ``kind``, taken in one write,
        waiting up to ``timeout`` seconds for the first; empty when none came.
        Cancelling it loses no item."""
        kind_enum = QueueKind(_kind(kind))
        if not limit >= 1:
            raise ConfigurationError(f"dequeue_many limit must be at least 1, got {limit!r}")
        if not timeout >= 0:
            raise ConfigurationError(f"dequeue timeout must be >= 0 seconds, got {timeout!r}")
        deadline = trio.current_time() + timeout
        db = self._db
        vt_us = max(1, round(db.visibility_timeout * 1_000_000))

        def look(conn: sqlite3.Connection) -> int | None:
            """When the earliest item of ``kind`` is (or becomes) visible; ``None``: empty."""
            row = conn.execute(
                "SELECT min(visible_at) FROM queue_items WHERE kind = ?", (kind_enum.value,)
            ).fetchone()
            return None if row[0] is None else int(row[0])

        def take(conn: sqlite3.Connection) -> tuple[list[tuple[int, str]], str, int | None]:
            now = wall_us()
            rows: list[tuple[int, str]] = conn.execute(
                "SELECT id, item_id FROM queue_items WHERE kind = ? AND visible_at <= ? "
                "ORDER BY id LIMIT ?",
                (kind_enum.value, now, limit),
            ).fetchall()
            if not rows:
                return rows, "", look(conn)
            token = secrets.token_hex(8)
            conn.executemany(
                "UPDATE queue_items SET receipt = ?, visible_at = ? WHERE id = ?",
                [(token, now + vt_us, row[0]) for row in rows],
            )
            # Whether those were the last visible items: the earlier ones are all taken
            # (a take picks the first visible), so look after them only, which stops at
            # the first waiting item (``min(visible_at)`` would scan the whole kind).
            more = conn.execute(
                "SELECT 1 FROM queue_items WHERE kind = ? AND id > ? AND visible_at <= ? LIMIT 1",
                (kind_enum.value, rows[-1][0], now),
            ).fetchone()
            # None: no visible item now; the taken ones show again by polling.
            return rows, token, (now if more else None)

        kind_value = kind_enum.value
        # Known to hold no visible item since this process last enqueued one: wait first
        # (polling with a read for other processes' items) instead of taking the write
        # lock to find nothing.
        known = db.known_empty(kind_value, wall_us())
        polled = known is not None
        skip_look = polled and timeout > 0
        next_visible = known if known else None
        while True:
            wakeup = db.wakeup(kind_value)
            taken: list[tuple[int, str]] = []
            token = ""
            if skip_look:
                skip_look = False
            elif polled:
                # Woken by the poll timer, not by an enqueue here: look in a read
                # transaction first, so an idle queue polled by every process takes
                # no write lock.
                next_visible = await db.read(look, small=True)
            if not polled or (next_visible is not None and next_visible <= wall_us()):
                generation = db.enqueues(kind_value)
                taken, token, next_visible = await db.write(take)
                if next_visible is None or next_visible > wall_us():
                    db.found_empty(kind_value, generation, None if taken else next_visible)
            if taken:
                items = [
                    QueueItem(kind=kind_enum, item_id=item_id, receipt=f"{row_id}:{token}")
                    for row_id, item_id in taken
                ]
                try:
                    await trio.lowlevel.checkpoint_if_cancelled()
                except trio.Cancelled:
                    # Cancelled while the rows were being taken: put them back at once.
                    with trio.CancelScope(shield=True):
                        for item in items:
                            await self._put_back(item)
                    raise
                return items
            remaining = deadline - trio.current_time()
            if remaining <= 0:
                return []
            # Other processes are only seen by polling; in memory nobody else writes.
            wait = remaining if db.is_memory else min(remaining, db.poll_interval)
            if next_visible is not None:
                wait = min(wait, max(0.0, (next_visible - wall_us()) / 1_000_000))
            with trio.move_on_after(wait):
                await wakeup.wait()
            polled = not wakeup.is_set()

    async def ack(self, item: QueueItem) -> None:
        """Finish a delivery; acking twice or with a superseded receipt is harmless.

        Posted, not waited for (see :meth:`Database.post`): an ack lost in a crash
        means one more delivery, which at-least-once allows."""
        await self.ack_many([item])

    async def ack_many(self, items: Sequence[QueueItem]) -> None:
        """:meth:`ack` of every item of ``items``, in one write (posted likewise)."""
        rows = [parsed for item in items if (parsed := _parse_receipt(item.receipt))]
        await trio.lowlevel.checkpoint()
        if not rows:
            return
        self._db.post(
            lambda conn: conn.executemany(
                "DELETE FROM queue_items WHERE id = ? AND receipt = ?", rows
            )
        )

    async def _put_back(self, item: QueueItem) -> None:
        """Make a delivery visible again (or drop it when a waiting copy exists)."""
        parsed = _parse_receipt(item.receipt)
        if parsed is None:
            return

        def run(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE OR IGNORE queue_items SET receipt = NULL, visible_at = 0 "
                "WHERE id = ? AND receipt = ?",
                parsed,
            )
            if cur.rowcount == 0:
                conn.execute("DELETE FROM queue_items WHERE id = ? AND receipt = ?", parsed)

        self._db.enqueued(item.kind.value)
        await self._db.write(run)
        self._db.notify(item.kind.value)


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
