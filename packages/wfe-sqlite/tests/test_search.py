"""SqliteSearchIndex: FTS5 matching, safe term quoting, filters and paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from wfe.core import WorkflowInstance, WorkflowStatus
from wfe.core.protocols import BulkSearchIndex, SearchFilters
from wfe.core.testing import make_instance
from wfe.sqlite import SqliteSearchIndex
from wfe.sqlite._search import data_text, fts_query

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def inst(i: int, **kw: object) -> WorkflowInstance:
    fields: dict[str, object] = {
        "definition_id": "invoice",
        "version": 1,
        "create_time": T0 + timedelta(minutes=i),
        "reference": f"REF-{i}",
    }
    fields.update(kw)
    return WorkflowInstance(**fields)  # type: ignore[arg-type]


async def test_terms_match_every_field_case_insensitively(
    search_index: SqliteSearchIndex,
) -> None:
    await search_index.index(
        inst(
            1,
            description="Quarterly Report",
            data={"customer": "Müller GmbH", "total": Decimal("99.95"), "tags": ["urgent"]},
        )
    )
    for terms in ("quarterly", "REF-1", "invoice", "runnable", "müller", "99.95", "URGENT"):
        page = await search_index.search(terms)
        assert page.total == 1, terms


async def test_every_term_must_match_and_prefixes_match(
    search_index: SqliteSearchIndex,
) -> None:
    await search_index.index(inst(1, description="blue whale"))
    await search_index.index(inst(2, description="blue sky"))
    assert (await search_index.search("blue")).total == 2
    assert (await search_index.search("blue wha")).total == 1
    assert (await search_index.search("blue ocean")).total == 0
    assert (await search_index.search("")).total == 2


async def test_fts_syntax_in_terms_is_plain_text(search_index: SqliteSearchIndex) -> None:
    await search_index.index(inst(1, description='say "hi" AND (bye) NEAR x:y'))
    for terms in ('"a', "AND(", "NEAR(", "x:y", "*", '"', "-", "^hi", "description:say", "OR"):
        await search_index.search(terms)  # must not raise
    assert (await search_index.search('"hi"')).total == 1
    assert (await search_index.search("(bye)")).total == 1


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_text_becomes_a_valid_query(terms: str) -> None:
    query = fts_query(terms)

    async def run() -> None:
        async with SqliteSearchIndex("sqlite://:memory:") as index:
            await index.index(inst(1, description="something"))
            await index.search(terms)

    if query is not None:
        trio.run(run)


def test_data_text_holds_values_not_keys_or_tags() -> None:
    text = data_text({"secret_key": "visible", "n": Decimal("1.5"), "when": T0})
    assert "visible" in text
    assert "1.5" in text
    assert "2024-05-01" in text
    assert "secret_key" not in text
    assert "$wfe" not in text


async def test_filters_narrow_results(search_index: SqliteSearchIndex) -> None:
    done = inst(
        1,
        status=WorkflowStatus.COMPLETE,
        complete_time=T0 + timedelta(hours=1),
        definition_id="shipping",
    )
    await search_index.index(done)
    await search_index.index(inst(2))
    await search_index.index(inst(3))

    async def ids(**kw: object) -> list[str]:
        page = await search_index.search("", SearchFilters(**kw))  # type: ignore[arg-type]
        return [r.reference or "" for r in page.items]

    assert await ids(status=WorkflowStatus.COMPLETE) == ["REF-1"]
    assert await ids(definition_id="invoice") == ["REF-3", "REF-2"]
    assert await ids(reference="REF-2") == ["REF-2"]
    assert await ids(created_from=T0 + timedelta(minutes=2)) == ["REF-3", "REF-2"]
    assert await ids(created_to=T0 + timedelta(minutes=2)) == ["REF-2", "REF-1"]
    assert await ids(completed_from=T0) == ["REF-1"]
    assert await ids(completed_to=T0) == []


async def test_pages_newest_first_with_total(search_index: SqliteSearchIndex) -> None:
    for i in range(7):
        await search_index.index(inst(i))
    page = await search_index.search("invoice", skip=2, take=3)
    assert page.total == 7
    assert [r.reference for r in page.items] == ["REF-4", "REF-3", "REF-2"]


async def test_reindexing_replaces_the_entry(search_index: SqliteSearchIndex) -> None:
    w = inst(1, description="draft")
    await search_index.index(w)
    w.description = "final"
    w.status = WorkflowStatus.COMPLETE
    w.data = {"amount": Decimal("3.10")}
    await search_index.index(w)
    assert (await search_index.search("draft")).total == 0
    page = await search_index.search("final")
    assert page.total == 1
    result = page.items[0]
    assert result.status is WorkflowStatus.COMPLETE
    assert result.data == {"amount": Decimal("3.10")}


async def test_index_many_stores_a_batch_and_the_last_entry_of_an_id_wins(
    search_index: SqliteSearchIndex,
) -> None:
    assert isinstance(search_index, BulkSearchIndex)
    first = make_instance(description="alpha")
    again = attrs.evolve(first, description="omega", status=WorkflowStatus.COMPLETE)
    other = make_instance(description="alpha")
    await search_index.index_many([first, other, again])
    assert [r.id for r in (await search_index.search("alpha")).items] == [other.id]
    (hit,) = (await search_index.search("omega")).items
    assert (hit.id, hit.status) == (first.id, WorkflowStatus.COMPLETE)
    await search_index.index_many([])
