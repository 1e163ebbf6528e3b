"""The shared search contract, on the test server and (when configured) a real one."""

from __future__ import annotations

from wfe.core.protocols import SearchIndex
from wfe.core.testing import SearchContract
from wfe.opensearch import OpenSearchIndex


class TestOpenSearchContract(SearchContract):
    async def settle(self, search_index: SearchIndex) -> None:
        assert isinstance(search_index, OpenSearchIndex)
        await search_index.refresh()
