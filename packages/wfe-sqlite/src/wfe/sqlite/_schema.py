"""Tables of the SQLite store and the migration steps that create or upgrade them.

``MIGRATIONS[i]`` upgrades a file from schema version ``i`` to ``i + 1``; a new
release appends steps and never edits old ones, so any older file can be brought
forward. ``schema_version`` holds the version a file is at; a file written by a
newer release (a version this code has no step for) is refused rather than guessed at.

Times are stored as integer microseconds since the Unix epoch (UTC), so they sort and
compare in SQL exactly; structured fields are JSON from ``wfe.core.serialization``.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    inspect,
    select,
    text,
)

from wfe.core import ConfigurationError
from wfe.core.serialization import stored_search_fields

from ._logs import create_step_logs

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1: a single-row table
    Column("version", Integer, nullable=False),
)

workflows = Table(
    "workflows",
    metadata,
    Column("id", Text, primary_key=True),
    Column("definition_id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("description", Text),
    Column("reference", Text),
    Column("status", Text, nullable=False),
    Column("data", Text),
    Column("next_execution", Integer),
    Column("create_time", Integer, nullable=False),
    Column("complete_time", Integer),
    Column("fingerprint", Text),
    # Highest fencing token a write was stored with; older tokens are refused.
    Column("fence", Integer),
    Index("ix_workflows_runnable", "status", "next_execution"),
    Index("ix_workflows_listing", "create_time"),
    Index("ix_workflows_definition", "definition_id", "create_time"),
)

# One row per pointer, so a checkpoint rewrites only the pointers that changed.
pointers = Table(
    "pointers",
    metadata,
    Column("id", Text, primary_key=True),
    Column("workflow_id", Text, nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("body", Text, nullable=False),  # every other pointer field, as JSON
    Index("ix_pointers_workflow", "workflow_id", "sequence"),
)

events = Table(
    "events",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("data", Text),
    Column("time", Integer, nullable=False),
    Column("processed", Integer, nullable=False),
    Index("ix_events_lookup", "name", "key", "time"),
    Index("ix_events_pending", "processed", "time"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("workflow_id", Text, nullable=False),
    Column("step_id", Integer, nullable=False),
    Column("pointer_id", Text, nullable=False),
    Column("event_name", Text, nullable=False),
    Column("event_key", Text, nullable=False),
    Column("as_of", Integer, nullable=False),
    Column("terminated", Integer, nullable=False),
    Index("ix_subscriptions_lookup", "event_name", "event_key", "as_of"),
    # The poller's repair query: does a RUNNABLE instance wait on anything?
    Index("ix_subscriptions_workflow", "workflow_id", "terminated"),
)

errors = Table(
    "errors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workflow_id", Text, nullable=False),
    Column("pointer_id", Text),
    Column("time", Integer, nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_errors_workflow", "workflow_id", "time"),
)

scheduled_commands = Table(
    "scheduled_commands",
    metadata,
    Column("name", Text, primary_key=True),
    Column("data", Text, primary_key=True),
    Column("execute_time", Integer, nullable=False),
    Index("ix_commands_due", "execute_time"),
)

# Lease rows are never deleted: the row keeps the resource's fencing-token counter,
# so tokens keep growing across releases and across processes sharing the file.
locks = Table(
    "locks",
    metadata,
    Column("resource", Text, primary_key=True),
    Column("owner", Text),  # NULL when free
    Column("token", Integer, nullable=False),
    Column("expires_at", Integer, nullable=False),  # µs of _database.lease_us()
)

queue_items = Table(
    "queue_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # FIFO order
    Column("kind", Text, nullable=False),
    Column("item_id", Text, nullable=False),
    Column("receipt", Text),  # NULL while waiting; a fresh token per delivery
    Column("visible_at", Integer, nullable=False),  # wall-clock microseconds
    Index("ix_queue_kind", "kind", "id"),
    # One waiting row per (kind, id): enqueueing a waiting id again coalesces.
    Index(
        "ux_queue_waiting",
        "kind",
        "item_id",
        unique=True,
        sqlite_where=text("receipt IS NULL"),
    ),
)

search_documents = Table(
    "search_documents",
    metadata,
    Column("id", Text, primary_key=True),
    Column("definition_id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("reference", Text),
    Column("description", Text),
    Column("create_time", Integer, nullable=False),
    Column("complete_time", Integer),
    Column("data", Text),
    Index("ix_search_created", "create_time"),
)

# Data-field tokens (wfe.core.serialization.search_fields) of each document, for
# DataFilter: ``doc`` is the rowid of its ``search_documents`` row.
search_fields = Table(
    "search_fields",
    metadata,
    Column("token", Text, primary_key=True),
    Column("doc", Integer, primary_key=True),
    Index("ix_search_fields_doc", "doc"),
    sqlite_with_rowid=False,
)

# The FTS5 table cannot be described by a SQLAlchemy Table; its rowid equals the
# rowid of the document's ``search_documents`` row.
SEARCH_FTS_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5("
    "reference, description, definition_id, status, data, tokenize='unicode61')"
)


def _v1_initial(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)
    conn.exec_driver_sql(SEARCH_FTS_DDL)


def _v2_subscriptions_by_workflow(conn: Connection) -> None:
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_subscriptions_workflow "
        "ON subscriptions (workflow_id, terminated)"
    )


def _v3_search_fields(conn: Connection) -> None:
    search_fields.create(conn, checkfirst=True)
    # Documents indexed before this version get their tokens now.
    rows = conn.exec_driver_sql("SELECT rowid, data FROM search_documents").fetchall()
    tokens = [(token, rowid) for rowid, data in rows for token in stored_search_fields(data)]
    if tokens:
        conn.exec_driver_sql(
            "INSERT OR IGNORE INTO search_fields (token, doc) VALUES (?, ?)", tokens
        )


MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1_initial,
    _v2_subscriptions_by_workflow,
    _v3_search_fields,
    create_step_logs,  # v4: step output lines (the StepLogStore capability, _logs.py)
]
SCHEMA_VERSION = len(MIGRATIONS)


def stored_version(conn: Connection) -> int:
    """The schema version a database is at (0 for a database without wfe tables)."""
    if not inspect(conn).has_table("schema_version"):
        return 0
    row = conn.execute(select(schema_version.c.version).where(schema_version.c.id == 1)).first()
    return 0 if row is None else int(row[0])


def migrate(conn: Connection, label: str) -> int:
    """Bring the database on ``conn`` to :data:`SCHEMA_VERSION` inside the caller's
    transaction; returns the version it was at. Refuses a newer file."""
    current = stored_version(conn)
    if current > SCHEMA_VERSION:
        raise ConfigurationError(
            f"SQLite store {label} has schema version {current}, but this wfe-sqlite "
            f"understands versions up to {SCHEMA_VERSION}: it was written by a newer "
            "release; upgrade wfe-sqlite to open it"
        )
    for step in MIGRATIONS[current:]:
        step(conn)
    if current < SCHEMA_VERSION:
        conn.exec_driver_sql(
            "INSERT INTO schema_version (id, version) VALUES (1, ?) "
            "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            (SCHEMA_VERSION,),
        )
    return current
