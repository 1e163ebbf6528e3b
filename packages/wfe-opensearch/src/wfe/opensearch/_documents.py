"""What wfe stores in OpenSearch and how it asks: the mapping, documents, queries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wfe.core import ConfigurationError, WorkflowInstance, WorkflowStatus
from wfe.core.protocols import Page, SearchFilters, SearchResult
from wfe.core.serialization import (
    dumps,
    from_us,
    loads,
    search_field,
    search_fields,
    search_text,
    to_us,
)

# An explicit mapping with dynamic fields refused: a workflow's data can never add
# fields (or mapping explosions) to the index. Ids, status, reference and definition
# are exact keywords for filters; every searchable value is also copied into `text`,
# where terms are matched as they are on SQLite's FTS5 index.
MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "id": {"type": "keyword"},
        "definition_id": {"type": "keyword", "copy_to": "text"},
        "version": {"type": "integer"},
        "status": {"type": "keyword", "copy_to": "text"},
        "reference": {"type": "keyword", "copy_to": "text"},
        "description": {"type": "text", "copy_to": "text"},
        "data_tokens": {"type": "text", "copy_to": "text"},
        "text": {"type": "text"},
        # Typed data-field tokens (wfe.core.serialization.search_fields): DataFilter.
        "data_fields": {"type": "keyword"},
        # Microseconds since the epoch: exact filters and order at the precision the
        # stores keep (OpenSearch `date` keeps milliseconds). The ISO forms are for
        # people reading the index with other tools.
        "create_us": {"type": "long"},
        "complete_us": {"type": "long"},
        "create_time": {"type": "date"},
        "complete_time": {"type": "date"},
        # The data as wfe serialises it, returned with results, never indexed.
        "data": {"type": "keyword", "index": False, "doc_values": False},
    },
}

# How many words a prefix term may expand to (OpenSearch's default is 50).
MAX_EXPANSIONS = 200


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def document(instance: WorkflowInstance) -> dict[str, Any]:
    """The index document of ``instance`` (its id is also the document id)."""
    return {
        "id": instance.id,
        "definition_id": instance.definition_id,
        "version": instance.version,
        "status": WorkflowStatus(instance.status).value,
        "reference": instance.reference,
        "description": instance.description,
        "data_tokens": search_text(instance.data),
        "data_fields": search_fields(instance.data),
        "create_us": to_us(instance.create_time),
        "complete_us": None if instance.complete_time is None else to_us(instance.complete_time),
        "create_time": _iso(instance.create_time),
        "complete_time": _iso(instance.complete_time),
        "data": dumps(instance.data),
    }


def query_terms(terms: str) -> list[str]:
    """The terms that can match: whitespace-separated, each holding a letter or digit
    (others analyse to nothing, as on every store). NUL separates like a space."""
    return [t for t in terms.replace("\x00", " ").split() if any(ch.isalnum() for ch in t)]


def search_body(terms: str, filters: SearchFilters | None, skip: int, take: int) -> dict[str, Any]:
    """The `_search` request: every term as a phrase prefix on `text`, filters exact."""
    if skip < 0 or take < 0:
        raise ConfigurationError(f"skip and take must not be negative, got {skip} and {take}")
    must: list[dict[str, Any]] = [
        {"match_phrase_prefix": {"text": {"query": term, "max_expansions": MAX_EXPANSIONS}}}
        for term in query_terms(terms)
    ]
    f = filters or SearchFilters()
    flt: list[dict[str, Any]] = []
    if f.status is not None:
        flt.append({"term": {"status": WorkflowStatus(f.status).value}})
    if f.definition_id is not None:
        flt.append({"term": {"definition_id": f.definition_id}})
    if f.version is not None:
        flt.append({"term": {"version": f.version}})
    if f.reference is not None:
        flt.append({"term": {"reference": f.reference}})
    flt.extend({"term": {"data_fields": search_field(d.field, d.value)}} for d in f.data)
    for field, low, high in (
        ("create_us", f.created_from, f.created_to),
        ("complete_us", f.completed_from, f.completed_to),
    ):
        bounds: dict[str, int] = {}
        if low is not None:
            bounds["gte"] = to_us(low)
        if high is not None:
            bounds["lte"] = to_us(high)
        if bounds:
            flt.append({"range": {field: bounds}})
    query: dict[str, Any] = (
        {"bool": {"must": must, "filter": flt}} if must or flt else {"match_all": {}}
    )
    return {
        "query": query,
        "sort": [{"create_us": {"order": "desc"}}, {"id": {"order": "desc"}}],
        "from": skip,
        "size": take,
        "track_total_hits": True,
    }


def page(response: dict[str, Any]) -> Page:
    """A :class:`Page` from a `_search` response."""
    hits = response["hits"]
    total = hits["total"]
    return Page(
        items=[_result(hit["_source"]) for hit in hits["hits"]],
        total=total["value"] if isinstance(total, dict) else int(total),
    )


def _result(source: dict[str, Any]) -> SearchResult:
    complete = source.get("complete_us")
    return SearchResult(
        id=source["id"],
        definition_id=source["definition_id"],
        version=source["version"],
        status=WorkflowStatus(source["status"]),
        reference=source.get("reference"),
        description=source.get("description"),
        create_time=from_us(source["create_us"]),
        complete_time=None if complete is None else from_us(complete),
        data=loads(source.get("data")),
    )
