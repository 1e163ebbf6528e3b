"""Fixtures: every test gets its own PostgreSQL schema on the server named by
``WFE_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``),
dropped afterwards. Without a reachable server the tests are skipped, with a message
naming the variable, unless ``WFE_REQUIRE_SERVICES`` names ``postgres``: then they fail.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from wfe.postgres import (
    PostgresLockProvider,
    PostgresPersistenceProvider,
    PostgresQueueProvider,
    PostgresSearchIndex,
)

from .private_cluster import Cluster, private_cluster

pytest.register_assert_rewrite("wfe.core.testing")

URL = os.environ.get("WFE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _required() -> bool:
    names = os.environ.get("WFE_REQUIRE_SERVICES", "")
    return "postgres" in {n.strip().lower() for n in names.split(",")}


_reachable: str | None = None  # None: not checked yet; "": reachable; else the reason


def server_available() -> None:
    """Skip (or fail, when required) unless the test server answers."""
    global _reachable
    if _reachable is None:
        try:
            with psycopg.connect(URL, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _reachable = ""
        except psycopg.Error as exc:
            _reachable = str(exc).strip().splitlines()[0]
    if _reachable:
        message = f"PostgreSQL at WFE_TEST_POSTGRES_URL ({URL}) is unreachable: {_reachable}"
        if _required():
            pytest.fail(message + " (WFE_REQUIRE_SERVICES names postgres)")
        pytest.skip(message)


def drop_schema(schema: str) -> None:
    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def schema() -> Iterator[str]:
    """A fresh schema name for this test (created by the provider), dropped after."""
    server_available()
    name = f"t_{secrets.token_hex(6)}"
    yield name
    drop_schema(name)


@pytest.fixture
def store_url(schema: str) -> str:
    return f"{URL}?schema={schema}" if "?" not in URL else f"{URL}&schema={schema}"


@pytest.fixture
async def persistence(
    request: pytest.FixtureRequest, store_url: str
) -> AsyncIterator[PostgresPersistenceProvider]:
    visibility = float(getattr(request.cls, "visibility_timeout", 0.5))
    async with PostgresPersistenceProvider(store_url, visibility_timeout=visibility) as p:
        yield p


@pytest.fixture
async def locks(persistence: PostgresPersistenceProvider) -> AsyncIterator[PostgresLockProvider]:
    async with persistence.default_locks() as provider:
        yield provider


@pytest.fixture
async def queues(
    persistence: PostgresPersistenceProvider,
) -> AsyncIterator[PostgresQueueProvider]:
    async with persistence.default_queues() as provider:
        yield provider


@pytest.fixture
async def search_index(
    persistence: PostgresPersistenceProvider,
) -> AsyncIterator[PostgresSearchIndex]:
    async with persistence.default_search() as provider:
        yield provider


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """A private cluster (password authentication, its own port), for the session."""
    with private_cluster() as running:
        yield running
