"""What the provider sends: the mapping, bulk requests and the query DSL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from wfe.core import ConfigurationError, WorkflowStatus
from wfe.core.protocols import SearchFilters
from wfe.core.testing import T0, make_instance
from wfe.opensearch import OpenSearchIndex
from wfe.opensearch._documents import MAPPING, to_us

from .fake_opensearch import FakeOpenSearch


async def test_the_index_is_created_once_with_a_strict_explicit_mapping(
    fake: FakeOpenSearch,
) -> None:
    async with OpenSearchIndex(fake.url, index="wfe-a"):
        pass
    async with OpenSearchIndex(fake.url, index="wfe-a"):
        pass
    (created,) = fake.of("PUT", "/wfe-a")
    assert created.body == {"mappings": MAPPING}
    props = created.body["mappings"]["properties"]
    assert created.body["mappings"]["dynamic"] == "strict"
    for keyword in ("id", "status", "reference", "definition_id"):
        assert props[keyword]["type"] == "keyword"
    assert props["description"]["type"] == "text"
    assert props["data_tokens"]["type"] == "text"
    assert props["create_time"]["type"] == props["complete_time"]["type"] == "date"
    assert props["data"] == {"type": "keyword", "index": False, "doc_values": False}
    # The second host found the index and checked its mapping instead of creating it.
    assert len(list(fake.of("GET", "/wfe-a/_mapping"))) == 1


async def test_an_index_with_a_foreign_mapping_is_refused_by_name(fake: FakeOpenSearch) -> None:
    foreign = {"dynamic": "strict", "properties": {"id": {"type": "text"}}}
    fake.handle("PUT", "/theirs", json.dumps({"mappings": foreign}).encode(), {})
    with pytest.raises(ConfigurationError, match=r"'theirs'.*another mapping.*index of its own"):
        async with OpenSearchIndex(fake.url, index="theirs"):
            pass


async def test_several_documents_go_in_bulk_requests_of_the_configured_size(
    fake: FakeOpenSearch,
) -> None:
    instances = [make_instance(reference=f"r{i}") for i in range(5)]
    async with OpenSearchIndex(fake.url, index="wfe-b", batch_size=2) as index:
        await index.index_many([*instances, instances[0]])
        await index.refresh()
        assert (await index.search("")).total == 5
    bulks = list(fake.of("POST", "/_bulk"))
    assert [len(b.body) // 2 for b in bulks] == [2, 2, 1]
    action, doc = bulks[0].body[:2]
    assert action == {"index": {"_index": "wfe-b", "_id": instances[0].id}}
    assert doc["id"] == instances[0].id
    assert doc["status"] == "RUNNABLE"


async def test_user_terms_are_phrase_prefixes_never_query_syntax(fake: FakeOpenSearch) -> None:
    hostile = make_instance(description="status:COMPLETE OR * (x")
    plain = make_instance(description="nothing here")
    async with OpenSearchIndex(fake.url, index="wfe-c") as index:
        await index.index_many([hostile, plain])
        await index.refresh()
        page = await index.search('status:COMPLETE OR * "(x')
        assert [r.id for r in page.items] == [hostile.id]
    search = list(fake.of("POST", "/wfe-c/_search"))[-1].body
    must = search["query"]["bool"]["must"]
    # '*' has no letter or digit: dropped, as every store drops it.
    assert [m["match_phrase_prefix"]["text"]["query"] for m in must] == [
        "status:COMPLETE",
        "OR",
        '"(x',
    ]


async def test_filters_are_exact_terms_and_microsecond_ranges(fake: FakeOpenSearch) -> None:
    async with OpenSearchIndex(fake.url, index="wfe-d") as index:
        await index.search(
            "",
            SearchFilters(
                status=WorkflowStatus.COMPLETE,
                definition_id="order",
                reference="A-17",
                created_from=T0,
                completed_to=T0 + timedelta(microseconds=1),
            ),
            skip=20,
            take=10,
        )
    body = list(fake.of("POST", "/wfe-d/_search"))[-1].body
    us = to_us(T0)
    assert body["query"]["bool"]["filter"] == [
        {"term": {"status": "COMPLETE"}},
        {"term": {"definition_id": "order"}},
        {"term": {"reference": "A-17"}},
        {"range": {"create_us": {"gte": us}}},
        {"range": {"complete_us": {"lte": us + 1}}},
    ]
    assert body["from"] == 20
    assert body["size"] == 10
    assert body["track_total_hits"] is True
    assert body["sort"] == [{"create_us": {"order": "desc"}}, {"id": {"order": "desc"}}]


async def test_negative_paging_is_refused_before_any_request(fake: FakeOpenSearch) -> None:
    async with OpenSearchIndex(fake.url, index="wfe-e") as index:
        with pytest.raises(ConfigurationError, match="skip and take"):
            await index.search("", skip=-1)
    assert not list(fake.of("POST", "/wfe-e/_search"))
