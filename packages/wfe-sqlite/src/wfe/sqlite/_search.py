"""Full-text search over workflow instances with SQLite's FTS5."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from wfe.core import ConfigurationError, WorkflowInstance, WorkflowStatus
from wfe.core.protocols import Page, SearchFilters, SearchResult
from wfe.core.serialization import dumps, loads, search_field, search_fields
from wfe.core.serialization import search_text as data_text

from . import _codec as c
from ._base import SqliteProvider, open_database
from ._purge import remove_documents

_DOC_COLUMNS = (
    "id, definition_id, version, status, reference, description, create_time, complete_time, data"
)
ENDED = (WorkflowStatus.COMPLETE, WorkflowStatus.TERMINATED)  # nothing changes after them
_ENDED_SQL = "(" + ", ".join(f"'{status.value}'" for status in ENDED) + ")"
Document = tuple[tuple[Any, ...], tuple[str, ...], list[str]]
_INSERT_DOCUMENT = (
    f"INSERT INTO search_documents ({_DOC_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) "
)
# The stored document's columns but its id (parameters: the document's in
# _DOC_COLUMNS order, its id moved last, then its status again), unless the stored one
# is of the workflow's end and this one is not.
_UPDATE_DOCUMENT = (
    "UPDATE search_documents SET definition_id = ?, version = ?, status = ?, "
    "reference = ?, description = ?, create_time = ?, complete_time = ?, data = ? "
    f"WHERE id = ? AND (status NOT IN {_ENDED_SQL} OR ? IN {_ENDED_SQL})"
)


def fts_query(terms: str) -> str | None:
    """An FTS5 query matching every whitespace-separated term as a (prefix) phrase,
    or ``None`` when ``terms`` holds no words.

    Each term is quoted as an FTS5 string (``"`` doubled), so operators, brackets,
    column filters and stray quotes in user input are plain text and cannot raise.
    Terms without a letter or digit tokenize to nothing and are dropped; NUL, which
    would end the FTS5 string early, separates terms like a space."""
    parts = [
        '"' + term.replace('"', '""') + '"*'
        for term in terms.replace("\x00", " ").split()
        if any(ch.isalnum() for ch in term)
    ]
    return " ".join(parts) if parts else None


class SqliteSearchIndex(SqliteProvider):
    """Search over reference, description, definition id, status and data text.

    Terms are matched case-insensitively, every term must match, and a term also
    matches words it is a prefix of (``inv`` finds ``invoice``).
    """

    def __init__(
        self,
        url: str = "sqlite://:memory:",
        *,
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
            )
        )

    async def index(self, instance: WorkflowInstance) -> None:
        """Add ``instance`` to the index, replacing its earlier entry."""
        await self.index_many([instance])

    async def index_many(self, instances: Sequence[WorkflowInstance]) -> None:
        """Index several instances in one transaction (the last of one id wins)."""
        prepared = [prepare_document(i) for i in instances]
        if not prepared:
            return

        def run(conn: sqlite3.Connection) -> None:
            for doc, text, fields in prepared:
                store_document(conn, doc, text, fields)

        await self._db.write(run)

    async def remove(self, workflow_ids: Sequence[str]) -> None:
        """Drop the entries of ``workflow_ids``."""
        ids = list(workflow_ids)
        if ids:
            await self._db.write(lambda conn: remove_documents(conn, ids))

    async def search(
        self,
        terms: str,
        filters: SearchFilters | None = None,
        skip: int = 0,
        take: int = 100,
    ) -> Page:
        """The page of matches ``skip`` .. ``skip + take``, newest first, and the total."""
        if skip < 0 or take < 0:
            raise ConfigurationError(f"skip and take must not be negative, got {skip} and {take}")
        where: list[str] = []
        params: list[Any] = []
        query = fts_query(terms)
        if query is not None:
            where.append("rowid IN (SELECT rowid FROM search_fts WHERE search_fts MATCH ?)")
            params.append(query)
        f = filters or SearchFilters()
        for clause, value in (
            ("status = ?", None if f.status is None else WorkflowStatus(f.status).value),
            ("definition_id = ?", f.definition_id),
            ("version = ?", f.version),
            ("reference = ?", f.reference),
            ("create_time >= ?", c.to_us_opt(f.created_from)),
            ("create_time <= ?", c.to_us_opt(f.created_to)),
            ("complete_time >= ?", c.to_us_opt(f.completed_from)),
            ("complete_time <= ?", c.to_us_opt(f.completed_to)),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        for data_filter in f.data:
            where.append("rowid IN (SELECT doc FROM search_fields WHERE token = ?)")
            params.append(search_field(data_filter.field, data_filter.value))
        cond = (" WHERE " + " AND ".join(where)) if where else ""

        def run(conn: sqlite3.Connection) -> tuple[int, list[tuple[Any, ...]]]:
            (total,) = conn.execute(
                f"SELECT count(*) FROM search_documents{cond}", params
            ).fetchone()
            rows = conn.execute(
                f"SELECT {_DOC_COLUMNS} FROM search_documents{cond} "
                "ORDER BY create_time DESC, rowid DESC LIMIT ? OFFSET ?",
                [*params, take, skip],
            ).fetchall()
            return total, rows

        total, rows = await self._db.read(run)
        return Page(items=[_result(r) for r in rows], total=total)


def prepare_document(instance: WorkflowInstance, data_json: str | None = None) -> Document:
    """The document row, FTS text and data-field tokens of ``instance`` (``data_json``:
    its data as :func:`dumps` serialised it already, for the workflow row)."""
    status = WorkflowStatus(instance.status).value
    doc = (
        instance.id,
        instance.definition_id,
        instance.version,
        status,
        instance.reference,
        instance.description,
        c.to_us(instance.create_time),
        c.to_us_opt(instance.complete_time),
        dumps(instance.data) if data_json is None else data_json,
    )
    text = (
        instance.reference or "",
        instance.description or "",
        instance.definition_id,
        status,
        data_text(instance.data),
    )
    return doc, text, search_fields(instance.data)


def store_document(
    conn: sqlite3.Connection, doc: tuple[Any, ...], text: tuple[str, ...], fields: list[str]
) -> None:
    # No RETURNING here: a statement with one opens a statement journal, and whenever
    # one opens in a transaction FTS5 writes the terms it holds out as a segment of
    # their own, so a batch of checkpoints wrote one segment (and merged it later) per
    # document instead of one for the batch: ~28 us per document instead of ~6 (measured).
    cur = conn.execute(_INSERT_DOCUMENT + "DO NOTHING", doc)
    if cur.rowcount == 1 and cur.lastrowid is not None:
        # A workflow's first document (most are: one at its first park, or at its end)
        # has no old terms to take out; deleting them costs FTS5 a read of its content.
        _add_terms(conn, cur.lastrowid, text, fields)
        return
    # The document of a workflow's end is never replaced by one of it still running (a
    # read older than the end, indexed late: the checkpoint that ended it may have
    # written its document).
    if not conn.execute(_UPDATE_DOCUMENT, (*doc[1:], doc[0], doc[3])).rowcount:
        return
    (rowid,) = conn.execute("SELECT rowid FROM search_documents WHERE id = ?", (doc[0],)).fetchone()
    conn.execute("DELETE FROM search_fts WHERE rowid = ?", (rowid,))
    conn.execute("DELETE FROM search_fields WHERE doc = ?", (rowid,))
    _add_terms(conn, rowid, text, fields)


def _add_terms(
    conn: sqlite3.Connection, rowid: int, text: tuple[str, ...], fields: list[str]
) -> None:
    """Index document ``rowid``'s words (FTS5) and data fields."""
    conn.executemany(
        "INSERT OR IGNORE INTO search_fields (token, doc) VALUES (?, ?)",
        [(token, rowid) for token in fields],
    )
    conn.execute(
        "INSERT INTO search_fts (rowid, reference, description, definition_id, status, data) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (rowid, *text),
    )


def _result(row: tuple[Any, ...]) -> SearchResult:
    return SearchResult(
        id=row[0],
        definition_id=row[1],
        version=row[2],
        status=WorkflowStatus(row[3]),
        reference=row[4],
        description=row[5],
        create_time=c.from_us(row[6]),
        complete_time=c.from_us_opt(row[7]),
        data=loads(row[8]),
    )
