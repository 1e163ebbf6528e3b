"""PostgreSQL's side of :class:`~wfe.core.protocols.IndexingPersistence` (the rest is the
contract, in ``test_contract.py``): only the companion index over the same database
object counts as its own, and endings grouped in one statement each write theirs."""

from __future__ import annotations

import trio

from wfe.core import WorkflowStatus
from wfe.core.memory import MemorySearchIndex
from wfe.core.protocols import Checkpoint, IndexingPersistence
from wfe.core.testing import make_instance
from wfe.postgres import PostgresPersistenceProvider, PostgresSearchIndex


async def test_only_the_stores_own_index_is_written_with_checkpoints(store_url: str) -> None:
    store = PostgresPersistenceProvider(store_url)
    assert isinstance(store, IndexingPersistence)
    # Another index (another database object, or another kind) is left alone.
    assert not store.index_ended_in_checkpoints(MemorySearchIndex())
    assert not store.index_ended_in_checkpoints(PostgresSearchIndex(store_url))
    assert not store._index_ended
    assert store.index_ended_in_checkpoints(store.default_search())
    assert store._index_ended


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
