"""Fixtures: every provider on a file database in ``tmp_path`` and on ``:memory:``.

The lock, queue and search fixtures are companions of the persistence provider, so
the ``:memory:`` variant also proves that one in-memory database serves all four.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wfe.sqlite import (
    SqliteLockProvider,
    SqlitePersistenceProvider,
    SqliteQueueProvider,
    SqliteSearchIndex,
)

# Before test_contract.py imports the suites, so their asserts explain failures.
pytest.register_assert_rewrite("wfe.core.testing")


@pytest.fixture(params=["file", "memory"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return f"sqlite:///{tmp_path / 'wfe.db'}"
    return "sqlite://:memory:"


@pytest.fixture
async def persistence(
    request: pytest.FixtureRequest, store_url: str
) -> AsyncIterator[SqlitePersistenceProvider]:
    # Contract suites set the queue's visibility timeout as a class attribute.
    visibility = float(getattr(request.cls, "visibility_timeout", 0.5))
    async with SqlitePersistenceProvider(store_url, visibility_timeout=visibility) as p:
        yield p


@pytest.fixture
async def locks(persistence: SqlitePersistenceProvider) -> AsyncIterator[SqliteLockProvider]:
    async with persistence.default_locks() as provider:
        yield provider


@pytest.fixture
async def queues(persistence: SqlitePersistenceProvider) -> AsyncIterator[SqliteQueueProvider]:
    async with persistence.default_queues() as provider:
        yield provider


@pytest.fixture
async def search_index(
    persistence: SqlitePersistenceProvider,
) -> AsyncIterator[SqliteSearchIndex]:
    async with persistence.default_search() as provider:
        yield provider
