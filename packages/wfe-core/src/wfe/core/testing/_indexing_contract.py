"""The contract of the optional :class:`~wfe.core.protocols.IndexingPersistence`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .._errors import StaleLeaseError
from .._models import WorkflowStatus
from ..memory import MemorySearchIndex
from ..protocols import (
    Checkpoint,
    DataFilter,
    IndexingPersistence,
    PersistenceProvider,
    ProvidesCompanions,
    SearchFilters,
    SearchIndex,
)
from ._persistence_contract import PersistenceContract
from ._samples import T0, expect_raises, make_instance, unique_word


@asynccontextmanager
async def _indexing(
    persistence: PersistenceProvider,
) -> AsyncIterator[tuple[IndexingPersistence, SearchIndex]]:
    """The provider as an :class:`IndexingPersistence` and its companion search index
    (entered), with endings indexed in checkpoints from now on."""
    assert isinstance(persistence, IndexingPersistence), (
        "no index_ended_in_checkpoints (not an IndexingPersistence)"
    )
    assert isinstance(persistence, ProvidesCompanions), "no default_search to index in"
    search = persistence.default_search()
    assert search is not None, "default_search gave no search index"
    async with search:
        assert persistence.index_ended_in_checkpoints(search), "its own index is refused"
        yield persistence, search


def _reference(reference: str, status: WorkflowStatus | None = None) -> SearchFilters:
    return SearchFilters(reference=reference, status=status)


class IndexingPersistenceContract(PersistenceContract):
    """:class:`PersistenceContract` plus the
    :class:`~wfe.core.protocols.IndexingPersistence` capability, checked with the
    search index of the persistence provider's ``default_search`` (same fixture)."""

    async def test_an_index_kept_elsewhere_is_refused(
        self, persistence: PersistenceProvider
    ) -> None:
        assert isinstance(persistence, IndexingPersistence)
        assert not persistence.index_ended_in_checkpoints(MemorySearchIndex())

    async def test_the_ending_checkpoint_writes_the_document_and_no_other_does(
        self, persistence: PersistenceProvider
    ) -> None:
        async with _indexing(persistence) as (store, search):
            reference = unique_word("order")
            instance = make_instance(pointers=1, data={"customer": "Ada Lovelace", "n": 7})
            instance.reference = reference
            await store.create_workflow(instance)
            await store.persist_checkpoint(Checkpoint(instance=instance, fencing_token=1))
            page = await search.search("", _reference(reference))
            assert page.total == 0, "a running workflow was indexed"

            instance.status = WorkflowStatus.COMPLETE
            instance.complete_time = T0
            instance.data = {"customer": "Ada Lovelace", "n": 8}
            await store.persist_checkpoint(Checkpoint(instance=instance, fencing_token=1))
            # The same document search.index would write: words, filters, columns.
            ended = _reference(reference, WorkflowStatus.COMPLETE)
            page = await search.search(f"lovelace {reference}", ended)
            assert [r.id for r in page.items] == [instance.id]
            found = page.items[0]
            assert found.data == {"customer": "Ada Lovelace", "n": 8}
            assert found.reference == reference
            assert found.complete_time == T0
            assert found.create_time == instance.create_time
            assert found.definition_id == instance.definition_id
            by_field = SearchFilters(reference=reference, data=[DataFilter(field="n", value=8)])
            assert (await search.search("", by_field)).total == 1

    async def test_a_refused_ending_writes_no_document(
        self, persistence: PersistenceProvider
    ) -> None:
        async with _indexing(persistence) as (store, search):
            reference = unique_word("refused")
            instance = make_instance(pointers=1)
            instance.reference = reference
            await store.create_workflow(instance)
            await store.claim_workflow(instance.id, 5)
            instance.status = WorkflowStatus.TERMINATED
            with expect_raises(StaleLeaseError, "a stale ending checkpoint"):
                await store.persist_checkpoint(Checkpoint(instance=instance, fencing_token=4))
            assert (await search.search("", _reference(reference))).total == 0

    async def test_a_late_index_of_an_older_read_keeps_the_document_of_the_end(
        self, persistence: PersistenceProvider
    ) -> None:
        async with _indexing(persistence) as (store, search):
            reference = unique_word("late")
            instance = make_instance(pointers=1, data={"step": "running"})
            instance.reference = reference
            await store.create_workflow(instance)
            older = await store.get_workflow(instance.id, with_pointers=False)
            instance.status = WorkflowStatus.COMPLETE
            instance.data = {"step": "done"}
            await store.persist_checkpoint(Checkpoint(instance=instance))
            await search.index(older)  # the index consumer, late with an older read
            [result] = (await search.search("", _reference(reference))).items
            assert result.status is WorkflowStatus.COMPLETE
            assert result.data == {"step": "done"}
            # An ended workflow's own document may be written again, as it is.
            await search.index(await store.get_workflow(instance.id, with_pointers=False))
            ended = _reference(reference, WorkflowStatus.COMPLETE)
            assert (await search.search("done", ended)).total == 1
