"""Tables of the PostgreSQL store and the versioned migrations that create them.

``MIGRATIONS[i]`` upgrades a schema from version ``i`` to ``i + 1``; a new release
appends steps and never edits old ones. Migrations run in one transaction under a
transaction-level advisory lock keyed by the schema name, so hosts starting at once
queue behind each other instead of racing on ``CREATE`` (concurrent ``CREATE SCHEMA IF
NOT EXISTS`` alone fails with a unique violation). A schema written by a newer release
is refused rather than guessed at.

Times are BIGINT microseconds since the Unix epoch (UTC), as in the SQLite store, so
they compare exactly and never overflow (about 292,000 years). Workflow data, pointer
bodies and event data are ``json``: the exact text of ``wfe.core.serialization``.
(``jsonb`` would rewrite it: it turns the float ``1e300`` into a 301-digit integer and
refuses the escape ``\\u0000`` that the codec writes for a NUL character in a string.)
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSON, TSVECTOR

from wfe.core import ConfigurationError

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1
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
    Column("data", JSON(none_as_null=True)),
    Column("next_execution", BigInteger),
    Column("create_time", BigInteger, nullable=False),
    Column("complete_time", BigInteger),
    Column("fingerprint", Text),
    # Highest fencing token that claimed or wrote the instance; older ones are refused.
    Column("fence", BigInteger),
    # Insertion order: the tie-breaker SQLite's rowid is.
    Column("seq", BigInteger, Identity(), nullable=False),
    Index("ix_workflows_runnable", "status", "next_execution"),
    Index("ix_workflows_listing", "create_time"),
    Index("ix_workflows_definition", "definition_id", "create_time"),
)

pointers = Table(
    "pointers",
    metadata,
    Column("id", Text, primary_key=True),
    Column("workflow_id", Text, nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("body", JSON, nullable=False),
    Index("ix_pointers_workflow", "workflow_id", "sequence"),
)

events = Table(
    "events",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("data", JSON(none_as_null=True)),
    Column("time", BigInteger, nullable=False),
    Column("processed", Boolean, nullable=False),
    Column("seq", BigInteger, Identity(), nullable=False),
    Index("ix_events_lookup", "name", "key", "time"),
    Index("ix_events_pending", "time", postgresql_where=text("NOT processed")),
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
    Column("as_of", BigInteger, nullable=False),
    Column("terminated", Boolean, nullable=False),
    Column("seq", BigInteger, Identity(), nullable=False),
    Index("ix_subscriptions_lookup", "event_name", "event_key", "as_of"),
    Index("ix_subscriptions_workflow", "workflow_id", "terminated"),
)

errors = Table(
    "errors",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("workflow_id", Text, nullable=False),
    Column("pointer_id", Text),
    Column("time", BigInteger, nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_errors_workflow", "workflow_id", "time"),
)

# Lease rows are never deleted: the row is the resource's fencing-token counter.
locks = Table(
    "locks",
    metadata,
    Column("resource", Text, primary_key=True),
    Column("owner", Text),  # NULL when free
    Column("token", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),  # server clock, microseconds
)

queue_items = Table(
    "queue_items",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),  # FIFO order
    Column("kind", Text, nullable=False),
    Column("item_id", Text, nullable=False),
    Column("receipt", Text),  # NULL while waiting; fresh per delivery
    Column("visible_at", BigInteger, nullable=False),  # server clock, microseconds
    Index("ix_queue_kind", "kind", "id"),
    # One waiting row per (kind, id): enqueueing a waiting id again coalesces.
    Index(
        "ux_queue_waiting",
        "kind",
        "item_id",
        unique=True,
        postgresql_where=text("receipt IS NULL"),
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
    Column("create_time", BigInteger, nullable=False),
    Column("complete_time", BigInteger),
    Column("data", JSON(none_as_null=True)),
    # The words of reference, description, definition id, status and data text.
    Column("document", TSVECTOR, nullable=False),
    # The data-field tokens of wfe.core.serialization.search_fields, for data filters.
    Column("fields", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("seq", BigInteger, Identity(), nullable=False),
    Index("ix_search_created", "create_time"),
    Index("ix_search_document", "document", postgresql_using="gin"),
    Index("ix_search_fields", "fields", postgresql_using="gin"),
)


# Step output lines (the StepLogStore capability, _logs.py); ``seq`` orders them.
step_logs = Table(
    "step_logs",
    metadata,
    Column("seq", BigInteger, Identity(), primary_key=True),
    Column("workflow_id", Text, nullable=False),
    Column("pointer_id", Text, nullable=False),
    Column("step_name", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("stream", Text, nullable=False),
    Column("line", Text, nullable=False),
    Column("time", BigInteger, nullable=False),
    Index("ix_step_logs_workflow", "workflow_id", "seq"),
)


def _v1_initial(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)


def _v2_step_logs(conn: Connection) -> None:
    step_logs.create(conn, checkfirst=True)


MIGRATIONS: list[Callable[[Connection], None]] = [_v1_initial, _v2_step_logs]
SCHEMA_VERSION = len(MIGRATIONS)

# Key space of the migration lock: pg_advisory_xact_lock(int4, int4) with this first
# half and hashtext(schema) as the second ("wfe" in ASCII).
_LOCK_CLASS = 0x776665


def migrate(conn: Connection, schema: str, label: str) -> int:
    """Create or upgrade ``schema`` to :data:`SCHEMA_VERSION` inside the caller's
    transaction, under the schema's advisory lock; returns the version it was at."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(:cls, hashtext(:schema))"),
        {"cls": _LOCK_CLASS, "schema": schema},
    )
    conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    has_table = conn.execute(
        text("SELECT to_regclass(:name) IS NOT NULL"), {"name": f'"{schema}".schema_version'}
    ).scalar_one()
    current = 0
    if has_table:
        row = conn.exec_driver_sql(
            f'SELECT version FROM "{schema}".schema_version WHERE id = 1'
        ).first()
        current = 0 if row is None else int(row[0])
    if current > SCHEMA_VERSION:
        raise ConfigurationError(
            f"PostgreSQL store {label} has schema version {current}, but this wfe-postgres "
            f"understands versions up to {SCHEMA_VERSION}: it was written by a newer "
            "release; upgrade wfe-postgres to open it"
        )
    translated = conn.execution_options(schema_translate_map={None: schema})
    for step in MIGRATIONS[current:]:
        step(translated)
    if current < SCHEMA_VERSION:
        conn.exec_driver_sql(
            f'INSERT INTO "{schema}".schema_version (id, version) VALUES (1, %(v)s) '
            "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            {"v": SCHEMA_VERSION},
        )
    return current
