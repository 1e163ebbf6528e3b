"""In-memory full-text search over workflow instances."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from .._models import WorkflowInstance
from ..protocols import Page, SearchFilters, SearchResult
from ..serialization import dumps, loads, search_field, search_fields, search_text
from ._base import InProcess


@attrs.frozen
class _Entry:
    result: SearchResult  # with data=None; the data lives in ``data`` as JSON text
    data: str
    text: str  # lower-cased searchable text
    order: int
    fields: frozenset[str]  # data-field tokens


@attrs.define
class SearchState:
    """The shared state of every search index over one store."""

    entries: dict[str, _Entry] = attrs.field(factory=dict)
    counter: itertools.count[int] = attrs.field(factory=itertools.count)


def _matches(entry: _Entry, f: SearchFilters, wanted: list[str]) -> bool:
    result = entry.result
    if f.status is not None and result.status != f.status:
        return False
    if f.version is not None and result.version != f.version:
        return False
    if any(token not in entry.fields for token in wanted):
        return False
    if f.definition_id is not None and result.definition_id != f.definition_id:
        return False
    if f.reference is not None and result.reference != f.reference:
        return False
    if f.created_from is not None and result.create_time < f.created_from:
        return False
    if f.created_to is not None and result.create_time > f.created_to:
        return False
    if f.completed_from is not None or f.completed_to is not None:
        done = result.complete_time
        if done is None:
            return False
        if f.completed_from is not None and done < f.completed_from:
            return False
        if f.completed_to is not None and done > f.completed_to:
            return False
    return True


class MemorySearchIndex(InProcess):
    """A :class:`~wfe.core.protocols.SearchIndex` for one process.

    A term matches when it occurs (case-insensitively) in the reference, description,
    definition id, status or the JSON text of the data; every term must match.
    """

    def __init__(self) -> None:
        self._state = SearchState()

    @classmethod
    def sharing(cls, state: SearchState) -> MemorySearchIndex:
        """An index over existing search state."""
        index = cls()
        index._state = state
        return index

    @classmethod
    def from_url(cls, url: str = "memory://", **options: Any) -> MemorySearchIndex:
        """Entry-point factory for the ``memory`` scheme (the URL carries nothing)."""
        return cls(**options)

    async def index(self, instance: WorkflowInstance) -> None:
        """Index ``instance``, replacing any earlier entry for its id."""
        await trio.lowlevel.checkpoint()
        data = dumps(instance.data)
        result = SearchResult(
            id=instance.id,
            definition_id=instance.definition_id,
            version=instance.version,
            status=instance.status,
            reference=instance.reference,
            description=instance.description,
            create_time=instance.create_time,
            complete_time=instance.complete_time,
        )
        parts = [
            instance.reference or "",
            instance.description or "",
            instance.definition_id,
            str(instance.status),
            data,
            search_text(instance.data),
        ]
        text = "\n".join(parts).lower()
        old = self._state.entries.get(instance.id)
        order = old.order if old is not None else next(self._state.counter)
        fields = frozenset(search_fields(instance.data))
        self._state.entries[instance.id] = _Entry(result, data, text, order, fields)

    async def remove(self, workflow_ids: Sequence[str]) -> None:
        """Drop the entries of ``workflow_ids``."""
        await trio.lowlevel.checkpoint()
        for workflow_id in workflow_ids:
            self._state.entries.pop(workflow_id, None)

    async def search(
        self,
        terms: str,
        filters: SearchFilters | None = None,
        skip: int = 0,
        take: int = 100,
    ) -> Page:
        """Entries matching every term and the filters, newest first, paged."""
        await trio.lowlevel.checkpoint()
        words = terms.lower().split()
        f = filters or SearchFilters()
        wanted = [search_field(d.field, d.value) for d in f.data]
        hits = [
            e
            for e in self._state.entries.values()
            if all(w in e.text for w in words) and _matches(e, f, wanted)
        ]
        hits.sort(key=lambda e: (e.result.create_time, e.order), reverse=True)
        page = hits[max(skip, 0) : max(skip, 0) + max(take, 0)]
        items = [attrs.evolve(e.result, data=loads(e.data)) for e in page]
        return Page(items=items, total=len(hits))
