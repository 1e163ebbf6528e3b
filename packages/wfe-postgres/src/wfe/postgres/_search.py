"""Full-text search over workflow instances with ``tsvector`` and a GIN index.

The document is built from the same fields as the SQLite store's FTS5 table
(reference, description, definition id, status and the text of the data), and a query
means the same: every term must match, case-insensitively, as a prefix phrase of its
words (``inv`` finds ``invoice``; ``foo-bar`` finds the words ``foo bar`` in a row).
Words are split here, on what is not a letter or digit, for documents and queries alike,
and handed to PostgreSQL's ``simple`` configuration (lower-casing, no stemming), so the
server's parser never reinterprets user text (as an e-mail, a path, an operator).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from wfe.core import ConfigurationError, WorkflowInstance, WorkflowStatus
from wfe.core.protocols import Page, SearchFilters, SearchResult
from wfe.core.serialization import dumps, loads, search_field, search_fields, search_text

from . import _codec as c
from ._base import PostgresProvider, open_database
from ._database import ASYNC_COMMIT, Conn, Database

_WORD = re.compile(r"[^\W_]+")
# A tsvector holds at most 1 MB; documents are cut well below that.
_MAX_DOCUMENT_CHARS = 256 * 1024
_MAX_LEXEME_CHARS = 500  # a lexeme over 2 kB is dropped by the server with a notice

_DOC_COLUMNS = (
    "id, definition_id, version, status, reference, description, create_time, complete_time, data"
)


def words(text: str) -> list[str]:
    return [w.lower()[:_MAX_LEXEME_CHARS] for w in _WORD.findall(text)]


def document_text(*parts: str) -> str:
    """The space-separated words of ``parts``, bounded in size."""
    out = " ".join(w for part in parts for w in words(part))
    return out[:_MAX_DOCUMENT_CHARS]


def ts_query(terms: str) -> str | None:
    """A ``to_tsquery`` text matching every term as a prefix phrase, or ``None`` when
    ``terms`` holds no words. Each lexeme is quoted, so nothing the user typed is an
    operator."""
    phrases = []
    for term in terms.split():
        found = words(term)
        if not found:
            continue
        quoted = ["'" + w.replace("\\", "\\\\").replace("'", "''") + "'" for w in found]
        quoted[-1] += ":*"
        phrases.append("(" + " <-> ".join(quoted) + ")")
    return " & ".join(phrases) if phrases else None


class PostgresSearchIndex(PostgresProvider):
    """Search over reference, description, definition id, status and data text, with
    the filters and paging of :class:`~wfe.core.protocols.SearchIndex`."""

    def _share(self, db: Database) -> None:
        super()._share(db)
        self._upsert = db.q(_UPSERT)

    def __init__(
        self,
        url: str = "postgresql://postgres@127.0.0.1:5432/postgres",
        *,
        schema: str | None = None,
        pool_size: int = 8,
        connect_timeout: float = 10.0,
        **options: Any,
    ) -> None:
        self._share(
            open_database(
                url, schema=schema, pool_size=pool_size, connect_timeout=connect_timeout, **options
            )
        )

    async def index(self, instance: WorkflowInstance) -> None:
        """Add ``instance`` to the index, replacing its earlier entry (one statement)."""
        await self.index_many([instance])

    async def index_many(self, instances: Sequence[WorkflowInstance]) -> None:
        """Index several instances in one statement; the last entry for an id wins."""
        latest = {i.id: i for i in instances}
        if not latest:
            return
        rows = [_document(i) for i in latest.values()]
        columns = [list(column) for column in zip(*rows, strict=True)]
        await self._db.run(lambda conn: conn.execute(self._upsert, columns), idempotent=True)

    async def remove(self, workflow_ids: Sequence[str]) -> None:
        """Drop the entries of ``workflow_ids`` (unknown ids are ignored)."""
        ids = [i for i in workflow_ids if "\x00" not in i]
        if not ids:
            return
        sql = self._db.q("DELETE FROM {s}.search_documents WHERE id = ANY(%s::text[])")
        await self._db.run(lambda conn: conn.execute(sql, (ids,)), idempotent=True)

    async def search(
        self,
        terms: str,
        filters: SearchFilters | None = None,
        skip: int = 0,
        take: int = 100,
    ) -> Page:
        """The page of matches ``skip`` .. ``skip + take``, newest first, and the total
        (one statement: the count is a window over the same matches)."""
        if skip < 0 or take < 0:
            raise ConfigurationError(f"skip and take must not be negative, got {skip} and {take}")
        where: list[str] = []
        params: list[Any] = []
        query = ts_query(terms)
        if query is not None:
            where.append("document @@ to_tsquery('simple', %s)")
            params.append(query)
        f = filters or SearchFilters()
        for clause, value in (
            ("status = %s", None if f.status is None else WorkflowStatus(f.status).value),
            ("definition_id = %s", f.definition_id),
            ("version = %s", f.version),
            ("reference = %s", f.reference),
            ("create_time >= %s", c.to_us_opt(f.created_from)),
            ("create_time <= %s", c.to_us_opt(f.created_to)),
            ("complete_time >= %s", c.to_us_opt(f.completed_from)),
            ("complete_time <= %s", c.to_us_opt(f.completed_to)),
        ):
            if value is not None:
                where.append(clause)
                params.append(c.text(value, "a search filter") if isinstance(value, str) else value)
        if f.data:
            # Every data filter's token must be among the document's (GIN: @>).
            where.append("fields @> %s::text[]")
            params.append([search_field(d.field, d.value) for d in f.data])
        cond = (" WHERE " + " AND ".join(where)) if where else ""
        count_sql = self._db.q(f"SELECT count(*) FROM {{s}}.search_documents{cond}")
        page_sql = self._db.q(
            f"SELECT {_DOC_COLUMNS} FROM {{s}}.search_documents{cond} "
            "ORDER BY create_time DESC, seq DESC LIMIT %s OFFSET %s"
        )

        def run(conn: Conn) -> tuple[int, list[tuple[Any, ...]]]:
            # Both in one round trip and (REPEATABLE READ) one snapshot.
            with conn.pipeline(), conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                counted = conn.execute(count_sql, params)
                page = conn.execute(page_sql, [*params, take, skip])
            row = counted.fetchone()
            return (0 if row is None else int(row[0])), page.fetchall()

        total, rows = await self._db.run(run, idempotent=True)
        return Page(items=[_result(r) for r in rows], total=total)


ENDED = (WorkflowStatus.COMPLETE, WorkflowStatus.TERMINATED)  # nothing changes after them
_ENDED_SQL = "(" + ", ".join(f"'{status.value}'" for status in ENDED) + ")"

# How a document replaces the one stored: always, except that the document of a
# workflow's end is never replaced by one of it still running (a read older than the
# end, indexed late: the checkpoint that ended it may have written its document).
DOCUMENT_CONFLICT = (
    "ON CONFLICT (id) DO UPDATE SET definition_id = excluded.definition_id, "
    "version = excluded.version, status = excluded.status, "
    "reference = excluded.reference, description = excluded.description, "
    "create_time = excluded.create_time, complete_time = excluded.complete_time, "
    "data = excluded.data, document = excluded.document, fields = excluded.fields "
    f"WHERE sd.status NOT IN {_ENDED_SQL} OR excluded.status IN {_ENDED_SQL}"
)

_UPSERT = (
    f"INSERT INTO {{s}}.search_documents AS sd ({_DOC_COLUMNS}, document, fields) "
    "SELECT d.id, d.definition_id, d.version, d.status, d.reference, d.description, "
    "d.create_time, d.complete_time, d.data, to_tsvector('simple', d.words), "
    # Each row's tokens travel as one JSON array (unnest cannot carry an array of
    # arrays of different lengths) and are unpacked into the row's text[] here.
    "ARRAY(SELECT json_array_elements_text(d.fields)) "
    "FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[], %s::text[], %s::text[], "
    "%s::bigint[], %s::bigint[], %s::json[], %s::text[], %s::json[]) "
    "AS d(id, definition_id, version, status, reference, description, create_time, "
    "complete_time, data, words, fields) "
    # The index is derived from the store: it need not wait for the disk.
    f"WHERE {ASYNC_COMMIT} " + DOCUMENT_CONFLICT
)


def _document(instance: WorkflowInstance) -> tuple[Any, ...]:
    """The columns of one search document, in :data:`_UPSERT`'s order."""
    status = WorkflowStatus(instance.status).value
    wid = instance.id
    words_, fields = document_terms(instance)
    return (
        c.text(wid, "the workflow id"),
        instance.definition_id,
        instance.version,
        status,
        c.text(instance.reference, f"the reference of workflow {wid}"),
        c.text(instance.description, f"the description of workflow {wid}"),
        c.to_us(instance.create_time),
        c.to_us_opt(instance.complete_time),
        dumps(instance.data),
        words_,
        fields,
    )


def document_terms(instance: WorkflowInstance) -> tuple[str, str]:
    """A document's words (for its ``tsvector``) and its data-field tokens (as a JSON
    array, for its ``fields``)."""
    return (
        document_text(
            instance.reference or "",
            instance.description or "",
            instance.definition_id,
            WorkflowStatus(instance.status).value,
            search_text(instance.data),
        ),
        json.dumps(search_fields(instance.data)),
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
