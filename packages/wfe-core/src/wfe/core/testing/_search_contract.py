"""The contract every :class:`~wfe.core.protocols.SearchIndex` must pass."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import attrs

from .._models import WorkflowInstance, WorkflowStatus
from ..protocols import DataFilter, SearchFilters, SearchIndex
from ._samples import T0, SampleData, SampleLine, SampleTagged, make_instance, unique_word


class SearchContract:
    """Contract tests for a search index.

    Subclass it as ``TestXxx`` and supply an async generator fixture ``search_index``
    yielding an entered index. Each test uses fresh words and definition ids, so data
    left by other tests does not matter. ``settle`` runs after indexing and before
    searching (override it for stores that refresh asynchronously).
    """

    async def settle(self, search_index: SearchIndex) -> None:
        """Make indexed entries visible to search (nothing to do by default)."""

    async def _index(self, search_index: SearchIndex, *instances: WorkflowInstance) -> None:
        for instance in instances:
            await search_index.index(instance)
        await self.settle(search_index)

    async def test_terms_match_reference_description_definition_and_data(
        self, search_index: SearchIndex
    ) -> None:
        ref, desc, definition, customer = (unique_word() for _ in range(4))
        by_ref = make_instance(reference=f"order {ref}")
        by_desc = make_instance(description=f"Ship {desc} today")
        by_def = make_instance(definition_id=definition)
        by_data = make_instance(data={"customer": customer, "total": 3})
        await self._index(search_index, by_ref, by_desc, by_def, by_data)
        for term, expected in (
            (ref, by_ref),
            (desc.upper(), by_desc),
            (definition, by_def),
            (customer, by_data),
        ):
            page = await search_index.search(term)
            assert [r.id for r in page.items] == [expected.id], f"search for {term!r}"
            assert page.total == 1
        hit = (await search_index.search(ref)).items[0]
        assert hit.definition_id == by_ref.definition_id
        assert hit.version == by_ref.version
        assert hit.status is WorkflowStatus.RUNNABLE
        assert hit.reference == f"order {ref}"
        assert hit.create_time == by_ref.create_time

    async def test_every_term_must_match(self, search_index: SearchIndex) -> None:
        a, b = unique_word(), unique_word()
        both = make_instance(description=f"{a} and {b}")
        only_a = make_instance(description=f"{a} alone")
        await self._index(search_index, both, only_a)
        assert [r.id for r in (await search_index.search(f"{a} {b}")).items] == [both.id]
        assert {r.id for r in (await search_index.search(a)).items} == {both.id, only_a.id}

    async def test_status_is_searchable(self, search_index: SearchIndex) -> None:
        definition = unique_word("def")
        done = make_instance(definition_id=definition, status=WorkflowStatus.SUSPENDED)
        running = make_instance(definition_id=definition)
        await self._index(search_index, done, running)
        page = await search_index.search(f"{definition} suspended")
        assert [r.id for r in page.items] == [done.id]

    async def test_empty_terms_match_all_and_results_are_newest_first_and_paged(
        self, search_index: SearchIndex
    ) -> None:
        definition = unique_word("def")
        made = [
            make_instance(definition_id=definition, create_time=T0 + timedelta(minutes=i))
            for i in range(7)
        ]
        await self._index(search_index, *made)
        newest_first = [w.id for w in reversed(made)]
        only = SearchFilters(definition_id=definition)
        page = await search_index.search("", only)
        assert [r.id for r in page.items] == newest_first
        assert page.total == 7
        page = await search_index.search("", only, skip=2, take=3)
        assert [r.id for r in page.items] == newest_first[2:5]
        assert page.total == 7, "total must count every match, not the page"
        page = await search_index.search("", only, skip=10, take=3)
        assert page.items == []
        assert page.total == 7

    async def test_filters_narrow_results(self, search_index: SearchIndex) -> None:
        definition = unique_word("def")
        ref = unique_word("ref")
        a = make_instance(definition_id=definition, reference=ref, create_time=T0)
        b = make_instance(
            definition_id=definition,
            status=WorkflowStatus.COMPLETE,
            create_time=T0 + timedelta(hours=1),
            complete_time=T0 + timedelta(hours=2),
        )
        c = make_instance(
            definition_id=definition,
            status=WorkflowStatus.TERMINATED,
            create_time=T0 + timedelta(hours=3),
            complete_time=T0 + timedelta(hours=4),
        )
        await self._index(search_index, a, b, c)

        base = SearchFilters(definition_id=definition)

        async def ids(**fields: Any) -> list[str]:
            page = await search_index.search("", attrs.evolve(base, **fields))
            return [r.id for r in page.items]

        assert await ids(status=WorkflowStatus.COMPLETE) == [b.id]
        assert await ids(reference=ref) == [a.id]
        assert await ids(created_from=T0 + timedelta(hours=1)) == [c.id, b.id]
        assert await ids(created_to=T0 + timedelta(hours=1)) == [b.id, a.id]
        assert await ids(completed_from=T0 + timedelta(hours=3)) == [c.id]
        assert await ids(completed_to=T0 + timedelta(hours=3)) == [b.id]
        assert await ids(
            created_from=T0, created_to=T0 + timedelta(hours=5), status=WorkflowStatus.RUNNABLE
        ) == [a.id]
        other = SearchFilters(definition_id=unique_word("def"))
        assert (await search_index.search("", other)).total == 0

    async def test_index_replaces_the_earlier_entry(self, search_index: SearchIndex) -> None:
        old_word, new_word = unique_word(), unique_word()
        instance = make_instance(description=old_word)
        await self._index(search_index, instance)
        instance.description = new_word
        instance.status = WorkflowStatus.COMPLETE
        instance.complete_time = T0 + timedelta(minutes=1)
        await self._index(search_index, instance)
        assert (await search_index.search(old_word)).total == 0
        page = await search_index.search(new_word)
        assert page.total == 1
        assert page.items[0].status is WorkflowStatus.COMPLETE
        assert page.items[0].complete_time == T0 + timedelta(minutes=1)

    async def test_version_filter(self, search_index: SearchIndex) -> None:
        definition = unique_word("def")
        one = make_instance(definition_id=definition, version=1)
        two = make_instance(definition_id=definition, version=2)
        await self._index(search_index, one, two)
        page = await search_index.search("", SearchFilters(definition_id=definition, version=2))
        assert [r.id for r in page.items] == [two.id]

    async def test_data_filters_compare_values_with_their_types(
        self, search_index: SearchIndex
    ) -> None:
        definition = unique_word("def")
        number = make_instance(definition_id=definition, data={"n": 3, "who": {"name": "Ann"}})
        text = make_instance(definition_id=definition, data={"n": "3", "who": {"name": "Bo"}})
        flag = make_instance(definition_id=definition, data={"n": True, "tags": ["x", "y"]})
        real = make_instance(definition_id=definition, data={"n": 3.0, "who": None})
        await self._index(search_index, number, text, flag, real)

        async def ids(*data: DataFilter) -> set[str]:
            page = await search_index.search("", SearchFilters(definition_id=definition, data=data))
            return {r.id for r in page.items}

        assert await ids(DataFilter("n", 3)) == {number.id, real.id}
        assert await ids(DataFilter("n", Decimal("3.00"))) == {number.id, real.id}
        assert await ids(DataFilter("n", "3")) == {text.id}
        assert await ids(DataFilter("n", True)) == {flag.id}
        assert await ids(DataFilter("n", 1)) == set()
        assert await ids(DataFilter("who.name", "Ann")) == {number.id}
        assert await ids(DataFilter("who", None)) == {real.id}
        assert await ids(DataFilter("tags", "y")) == {flag.id}
        assert await ids(DataFilter("n", 3), DataFilter("who.name", "Bo")) == set()
        assert await ids(DataFilter("name", "Ann")) == set(), "paths are whole, not suffixes"

    async def test_data_filters_reach_fields_of_typed_data(self, search_index: SearchIndex) -> None:
        definition = unique_word("def")
        typed = make_instance(
            definition_id=definition,
            data=SampleData(lines=[SampleLine("k-9", Decimal("1.5"))]),
        )
        other = make_instance(definition_id=definition, data=SampleData())
        await self._index(search_index, typed, other)
        only = SearchFilters(definition_id=definition, data=[DataFilter("lines.sku", "k-9")])
        assert [r.id for r in (await search_index.search("", only)).items] == [typed.id]
        by_price = SearchFilters(definition_id=definition, data={"lines.price": 1.5})
        assert [r.id for r in (await search_index.search("", by_price)).items] == [typed.id]
        both = SearchFilters(definition_id=definition, data={"flag": True})
        assert (await search_index.search("", both)).total == 2

    async def test_a_data_type_may_declare_extra_search_words(
        self, search_index: SearchIndex
    ) -> None:
        code = unique_word()
        tagged = make_instance(data=SampleTagged(code=code))
        await self._index(search_index, tagged)
        page = await search_index.search(f"tagged{code}")
        assert [r.id for r in page.items] == [tagged.id]
        assert page.items[0].data == SampleTagged(code=code)

    async def test_remove_drops_entries(self, search_index: SearchIndex) -> None:
        definition = unique_word("def")
        keep, drop = (make_instance(definition_id=definition) for _ in range(2))
        await self._index(search_index, keep, drop)
        await search_index.remove([drop.id, "no-such-id"])
        await self.settle(search_index)
        page = await search_index.search("", SearchFilters(definition_id=definition))
        assert [r.id for r in page.items] == [keep.id]
        await search_index.remove([])
