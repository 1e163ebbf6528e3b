"""Fixtures: the index on the test server of ``fake_opensearch`` and, when
``WFE_TEST_OPENSEARCH_URL`` names one, on a real OpenSearch server too."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import trio

from wfe.opensearch import OpenSearchIndex

from .fake_opensearch import FakeOpenSearch

pytest.register_assert_rewrite("wfe.core.testing")

REAL_URL = os.environ.get("WFE_TEST_OPENSEARCH_URL")


def _required() -> bool:
    names = os.environ.get("WFE_REQUIRE_SERVICES", "")
    return "opensearch" in {n.strip() for n in names.split(",")}


@pytest.fixture
def fake() -> Iterator[FakeOpenSearch]:
    with FakeOpenSearch() as server:
        yield server


@pytest.fixture(params=["fake", "real"])
async def search_index(
    request: pytest.FixtureRequest, fake: FakeOpenSearch
) -> AsyncIterator[OpenSearchIndex]:
    """An entered index of its own, on the test server or on the real one."""
    name = f"wfe-test-{uuid.uuid4().hex[:12]}"
    if request.param == "fake":
        async with OpenSearchIndex(fake.url, index=name) as index:
            yield index
        return
    if not REAL_URL:
        message = "no OpenSearch server: set WFE_TEST_OPENSEARCH_URL to run against one"
        if _required():
            pytest.fail(message)
        pytest.skip(message)
    async with OpenSearchIndex(REAL_URL, index=name) as index:
        try:
            yield index
        finally:
            with trio.CancelScope(shield=True):
                await index._call(lambda client: client.indices.delete(index=name))
