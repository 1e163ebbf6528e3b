"""The checkpoint that ends a workflow writes its search document in the same statement
(:class:`~wfe.core.protocols.IndexingPersistence`), once the host's search index is the
store's own; a late index write of an older read never replaces that document."""

from __future__ import annotations

import trio

from wfe.core import StaleLeaseError, WorkflowStatus
from wfe.core.memory import MemorySearchIndex
from wfe.core.protocols import Checkpoint, DataFilter, IndexingPersistence, SearchFilters
from wfe.core.testing import T0, make_instance
from wfe.postgres import PostgresPersistenceProvider, PostgresSearchIndex


def _ended(instance_status: WorkflowStatus) -> SearchFilters:
    return SearchFilters(status=instance_status)


async def test_only_the_stores_own_index_is_written_with_checkpoints(store_url: str) -> None:
    store = PostgresPersistenceProvider(store_url)
    assert isinstance(store, IndexingPersistence)
    # Another index (another database object, or another kind) is left alone.
    assert not store.index_ended_in_checkpoints(MemorySearchIndex())
    assert not store.index_ended_in_checkpoints(PostgresSearchIndex(store_url))
    assert not store._index_ended
    assert store.index_ended_in_checkpoints(store.default_search())
    assert store._index_ended


async def test_the_ending_checkpoint_writes_the_document_and_no_other_does(
    store_url: str,
) -> None:
    async with PostgresPersistenceProvider(store_url) as store:
        search = store.default_search()
        async with search:
            assert store.index_ended_in_checkpoints(search)
            instance = make_instance(pointers=1, data={"customer": "Ada Lovelace", "n": 7})
            instance.reference = "order-42"
            await store.create_workflow(instance)
            await store.persist_checkpoint(Checkpoint(instance=instance, fencing_token=1))
            assert (await search.search("")).total == 0, "a running workflow was indexed"

            instance.status = WorkflowStatus.COMPLETE
            instance.complete_time = T0
            instance.data = {"customer": "Ada Lovelace", "n": 8}
            await store.persist_checkpoint(Checkpoint(instance=instance, fencing_token=1))
            # The same document search.index would write: words, filters, columns.
            page = await search.search("lovelace order", _ended(WorkflowStatus.COMPLETE))
            assert [r.id for r in page.items] == [instance.id]
            found = page.items[0]
            assert found.data == {"customer": "Ada Lovelace", "n": 8}
            assert found.reference == "order-42"
            assert found.complete_time == T0
            assert found.create_time == instance.create_time
            assert found.definition_id == instance.definition_id
            by_field = SearchFilters(data=[DataFilter(field="n", value=8)])
            assert (await search.search("", by_field)).total == 1


async def test_a_refused_ending_writes_no_document(store_url: str) -> None:
    async with PostgresPersistenceProvider(store_url) as store:
        search = store.default_search()
        async with search:
            assert store.index_ended_in_checkpoints(search)
            instance = make_instance(pointers=1)
            await store.create_workflow(instance)
            await store.claim_workflow(instance.id, 5)
            instance.status = WorkflowStatus.TERMINATED
            stale = Checkpoint(instance=instance, fencing_token=4)
            try:
                await store.persist_checkpoint(stale)
            except StaleLeaseError:
                pass
            else:
                raise AssertionError("a stale checkpoint was stored")
            assert (await search.search("")).total == 0


async def test_a_late_index_of_an_older_read_keeps_the_document_of_the_end(
    store_url: str,
) -> None:
    async with PostgresPersistenceProvider(store_url) as store:
        search = store.default_search()
        async with search:
            assert store.index_ended_in_checkpoints(search)
            instance = make_instance(pointers=1, data={"step": "running"})
            await store.create_workflow(instance)
            older = await store.get_workflow(instance.id, with_pointers=False)
            instance.status = WorkflowStatus.COMPLETE
            instance.data = {"step": "done"}
            await store.persist_checkpoint(Checkpoint(instance=instance))
            await search.index(older)  # the index consumer, late with an older read
            [result] = (await search.search("")).items
            assert result.status is WorkflowStatus.COMPLETE
            assert result.data == {"step": "done"}
            # An ended workflow's own document may be written again, as it is.
            await search.index(await store.get_workflow(instance.id, with_pointers=False))
            assert (await search.search("done", _ended(WorkflowStatus.COMPLETE))).total == 1


async def test_endings_grouped_in_one_statement_each_write_their_document(
    store_url: str,
) -> None:
    # One connection: the checkpoints that arrive while it is busy go together.
    async with PostgresPersistenceProvider(store_url, pool_size=1) as store:
        search = store.default_search()
        async with search:
            assert store.index_ended_in_checkpoints(search)
            instances = [make_instance(pointers=1, data={"n": i}) for i in range(20)]
            for instance in instances:
                await store.create_workflow(instance)
            before = store._committer.batches

            async def end(i: int) -> None:
                instance = instances[i]
                # Every other one ends; the rest stay running.
                if i % 2 == 0:
                    instance.status = WorkflowStatus.COMPLETE
                await store.persist_checkpoint(Checkpoint(instance=instance))

            async with trio.open_nursery() as nursery:
                for i in range(len(instances)):
                    nursery.start_soon(end, i)
            assert store._committer.batches - before < len(instances), "nothing was grouped"
            page = await search.search("", take=100)
            assert {r.id for r in page.items} == {i.id for i in instances[::2]}
            assert {r.status for r in page.items} == {WorkflowStatus.COMPLETE}
