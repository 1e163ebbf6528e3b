"""Retention: deleting ended instances and processed events in bounded batches."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from wfe.core import WorkflowStatus
from wfe.core.primitives import CHILD_FINISHED_EVENT

# Ended = the complete time, or the create time of a suspended instance (never set).
_ENDED = "COALESCE(complete_time, create_time)"


def _where(statuses: Sequence[WorkflowStatus]) -> str:
    marks = ", ".join("?" for _ in statuses)
    return f"status IN ({marks}) AND {_ENDED} < ?"


def purgeable_count(
    conn: sqlite3.Connection, before_us: int, statuses: Sequence[WorkflowStatus]
) -> int:
    params = [s.value for s in statuses] + [before_us]
    (count,) = conn.execute(
        f"SELECT count(*) FROM workflows WHERE {_where(statuses)}", params
    ).fetchone()
    return int(count)


def purge_workflows(
    conn: sqlite3.Connection,
    before_us: int,
    statuses: Sequence[WorkflowStatus],
    limit: int,
    now_us: int,
) -> list[str]:
    """Delete up to ``limit`` ended instances (oldest first) and all rows that are
    theirs, inside the caller's write transaction; return their ids."""
    params = [s.value for s in statuses] + [before_us, limit]
    ids = [
        row[0]
        for row in conn.execute(
            f"SELECT id FROM workflows WHERE {_where(statuses)} ORDER BY {_ENDED}, id LIMIT ?",
            params,
        )
    ]
    if not ids:
        return []
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS purge_ids (id TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM purge_ids")
    conn.executemany("INSERT INTO purge_ids (id) VALUES (?)", [(i,) for i in ids])
    for table in ("pointers", "subscriptions", "errors", "step_logs"):
        conn.execute(f"DELETE FROM {table} WHERE workflow_id IN (SELECT id FROM purge_ids)")
    # A child's notice to its parent is stored with its end even when no parent waits
    # yet; one never taken goes with the child, and so does its free event lease row.
    conn.execute(
        "DELETE FROM events WHERE processed = 0 AND name = ? AND key IN (SELECT id FROM purge_ids)",
        (CHILD_FINISHED_EVENT,),
    )
    conn.execute(
        "DELETE FROM locks WHERE (owner IS NULL OR expires_at < ?) AND resource IN "
        "(SELECT ? || p.id FROM purge_ids p WHERE NOT EXISTS "
        "(SELECT 1 FROM events e WHERE e.name = ? AND e.key = p.id))",
        (now_us, f"wfe:event:{CHILD_FINISHED_EVENT}:", CHILD_FINISHED_EVENT),
    )
    # Lease rows keep a resource's fencing counter while its instance exists; with the
    # instance gone no write can be fenced any more, so a free one goes too (the host
    # names its leases wfe:workflow:<id>).
    conn.execute(
        "DELETE FROM locks WHERE (owner IS NULL OR expires_at < ?) AND resource IN "
        "(SELECT 'wfe:workflow:' || id FROM purge_ids)",
        (now_us,),
    )
    conn.execute("DELETE FROM workflows WHERE id IN (SELECT id FROM purge_ids)")
    conn.execute("DELETE FROM purge_ids")
    return ids


def purge_events(conn: sqlite3.Connection, before_us: int, limit: int, now_us: int) -> int:
    """Delete up to ``limit`` processed events older than ``before_us``, and the free
    event leases of the names and keys that have no event left."""
    gone = conn.execute(
        "DELETE FROM events WHERE id IN (SELECT id FROM events "
        "WHERE processed = 1 AND time < ? ORDER BY time LIMIT ?) RETURNING name, key",
        (before_us, limit),
    ).fetchall()
    # The host's event leases (wfe:event:<name>:<key>) only keep deliveries of one name
    # and key apart, their tokens fence no write: once no event of that name and key is
    # left, a free one goes too, else a row per key ever published would stay for good.
    for name, key in set(gone):
        left = conn.execute(
            "SELECT 1 FROM events WHERE name = ? AND key = ? LIMIT 1", (name, key)
        ).fetchone()
        if left is None:
            conn.execute(
                "DELETE FROM locks WHERE resource = ? AND (owner IS NULL OR expires_at < ?)",
                (f"wfe:event:{name}:{key}", now_us),
            )
    return len(gone)


def remove_documents(conn: sqlite3.Connection, workflow_ids: Sequence[str]) -> None:
    """Drop the search documents (and their FTS and field rows) of ``workflow_ids``."""
    for workflow_id in workflow_ids:
        row = conn.execute(
            "SELECT rowid FROM search_documents WHERE id = ?", (workflow_id,)
        ).fetchone()
        if row is None:
            continue
        conn.execute("DELETE FROM search_fts WHERE rowid = ?", row)
        conn.execute("DELETE FROM search_fields WHERE doc = ?", row)
        conn.execute("DELETE FROM search_documents WHERE rowid = ?", row)
