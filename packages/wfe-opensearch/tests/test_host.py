"""A host on SQLite indexing into OpenSearch: bulk batches, and outages that never
hold up workflows."""

from __future__ import annotations

from pathlib import Path

import trio

from wfe.core import WorkflowBuilder, WorkflowStatus
from wfe.core.protocols import QueueKind
from wfe.core.testing import make_instance
from wfe.host import WorkflowHostBuilder
from wfe.opensearch import OpenSearchIndex
from wfe.sqlite import SqlitePersistenceProvider

from .fake_opensearch import FakeOpenSearch


def three_steps() -> object:
    return (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .then(lambda ctx: None)
        .then(lambda ctx: None)
        .build("indexed", 1)
    )


async def found(index: OpenSearchIndex, terms: str, count: int) -> None:
    """Wait until ``terms`` finds ``count`` documents (the index is eventually current)."""
    with trio.fail_after(30):
        while True:
            await index.refresh()
            if (await index.search(terms)).total == count:
                return
            await trio.sleep(0.02)


async def test_pending_index_items_are_sent_in_one_bulk_request(
    fake: FakeOpenSearch, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'wfe.db'}"
    instances = [
        make_instance(reference=f"batch{i}", status=WorkflowStatus.COMPLETE) for i in range(30)
    ]
    async with SqlitePersistenceProvider(url) as store:
        for instance in instances:
            await store.create_workflow(instance)
        async with store.default_queues() as queues:
            await queues.enqueue_many(QueueKind.INDEX, [i.id for i in instances])
    search = f"{fake.url}/wfe-batch"
    async with WorkflowHostBuilder().persistence(url).search(search).build() as host:
        assert isinstance(host.search_index, OpenSearchIndex)
        await found(host.search_index, "", 30)
    bulks = list(fake.of("POST", "/_bulk"))
    assert [len(b.body) // 2 for b in bulks] == [30]


async def test_workflows_finish_while_the_index_is_down_and_are_indexed_after(
    fake: FakeOpenSearch, tmp_path: Path
) -> None:
    fake.unavailable = True
    builder = (
        WorkflowHostBuilder()
        .persistence(f"sqlite:///{tmp_path / 'wfe.db'}")
        .search(f"{fake.url}/wfe-outage", max_backoff=0.2)
        .register(three_steps())
    )
    async with builder.build() as host:
        ids = [await host.start_workflow("indexed", 1, reference=f"out{i}") for i in range(10)]
        for wid in ids:
            assert (await host.wait_for_workflow(wid, timeout=30)).status is WorkflowStatus.COMPLETE
        fake.unavailable = False
        assert isinstance(host.search_index, OpenSearchIndex)
        await found(host.search_index, "indexed complete", 10)
        page = await host.search("out3")
        assert [r.id for r in page.items] == [ids[3]]
        assert page.items[0].status is WorkflowStatus.COMPLETE
