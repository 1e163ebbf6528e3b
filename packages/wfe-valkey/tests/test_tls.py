"""``valkeys://`` / ``rediss://`` against a private TLS-only redis-server with a throwaway
CA: the lock and queue contracts, the change feed, lifecycle pub/sub and two hosts
running workflows over TLS; client certificates; and clear errors for a wrong CA, a
host name the certificate does not name, a plain URL to a TLS port and bad options."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import valkey

from wfe.core import ConfigurationError, ProviderError
from wfe.core.testing import LockContract, QueueContract
from wfe.valkey import ValkeyLifecyclePublisher, ValkeyLockProvider, ValkeyQueueProvider

sys.path.insert(0, str(Path(__file__).parent))
from private_servers import Certs, Unavailable, make_certs, tls_redis
from transport_checks import check_change_feed, check_hosts_run_workflows
from valkey_support import unavailable

SECRET = "tls-s3cret-Pa55"


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tls")


@pytest.fixture(scope="module")
def certs(tls_dir: Path) -> Certs:
    try:
        return make_certs(tls_dir)
    except Unavailable as exc:
        unavailable(str(exc))
        raise


@pytest.fixture(scope="module")
def tls_port(tls_dir: Path, certs: Certs) -> Iterator[int]:
    """A TLS-only server that does not ask for client certificates."""
    try:
        with tls_redis(tls_dir, certs, client_certs=False) as port:
            yield port
    except Unavailable as exc:
        unavailable(str(exc))


@pytest.fixture(scope="module")
def mtls_port(tls_dir: Path, certs: Certs) -> Iterator[int]:
    """A TLS-only server that requires a client certificate signed by the CA."""
    try:
        with tls_redis(tls_dir, certs, client_certs=True) as port:
            yield port
    except Unavailable as exc:
        unavailable(str(exc))


def tls_url(port: int, ca: Path, *, host: str = "127.0.0.1", query: str = "") -> str:
    extra = f"&{query}" if query else ""
    return f"rediss://{host}:{port}/0?ssl_ca_certs={quote(str(ca))}{extra}"


@pytest.fixture
def server_url(tls_port: int, certs: Certs) -> str:
    """Replaces conftest's server list: here every test talks TLS."""
    return tls_url(tls_port, certs.ca)


@pytest.fixture
def prefix() -> str:
    """A prefix of the test's own; the private server is dropped with the module."""
    return f"wfe-test:{secrets.token_hex(6)}:"


class TestLocksOverTls(LockContract):
    pass


class TestQueuesOverTls(QueueContract):
    pass


async def test_the_change_feed_works_over_tls(server_url: str, prefix: str) -> None:
    await check_change_feed(server_url, prefix)


async def test_two_hosts_run_workflows_over_tls(
    server_url: str, prefix: str, tmp_path: Path, tls_port: int, certs: Certs
) -> None:
    def subscriber() -> valkey.Valkey:
        return valkey.Valkey(host="127.0.0.1", port=tls_port, ssl=True, ssl_ca_certs=str(certs.ca))

    await check_hosts_run_workflows(server_url, prefix, tmp_path, subscriber)


async def test_connecting_by_the_name_localhost_checks_it_against_the_certificate(
    tls_port: int, certs: Certs
) -> None:
    async with ValkeyLockProvider(tls_url(tls_port, certs.ca, host="localhost")) as locks:
        assert locks.url.startswith("rediss://localhost:")


async def test_a_client_certificate_is_presented_when_configured(
    mtls_port: int, certs: Certs
) -> None:
    query = (
        f"ssl_certfile={quote(str(certs.client_cert))}&ssl_keyfile={quote(str(certs.client_key))}"
    )
    async with ValkeyQueueProvider(tls_url(mtls_port, certs.ca, query=query)):
        pass
    # The same as keywords.
    async with ValkeyLockProvider(
        f"valkeys://127.0.0.1:{mtls_port}/0",
        ssl_ca_certs=str(certs.ca),
        ssl_certfile=str(certs.client_cert),
        ssl_keyfile=str(certs.client_key),
    ):
        pass


async def test_a_server_wanting_a_client_certificate_says_so(mtls_port: int, certs: Certs) -> None:
    with pytest.raises(ProviderError, match="set ssl_certfile and ssl_keyfile") as info:
        async with ValkeyLockProvider(tls_url(mtls_port, certs.ca)):
            pass
    assert f"127.0.0.1:{mtls_port}" in str(info.value)


@pytest.mark.parametrize("provider", [ValkeyLockProvider, ValkeyLifecyclePublisher])
async def test_a_wrong_ca_fails_naming_the_host_and_the_verification(
    tls_port: int, certs: Certs, provider: type
) -> None:
    url = tls_url(tls_port, certs.other_ca).replace("rediss://", f"rediss://app:{SECRET}@")
    with pytest.raises(ProviderError, match="certificate verify failed") as info:
        async with provider(url):
            pass
    message = str(info.value)
    assert f"127.0.0.1:{tls_port}" in message
    assert "ssl_ca_certs" in message
    assert SECRET not in message
    assert SECRET not in repr(info.value.__cause__ or "")


async def test_a_host_name_the_certificate_does_not_name_is_refused(
    tls_port: int, certs: Certs
) -> None:
    """The certificate names 127.0.0.1 and localhost, not 127.0.0.2 (which reaches the
    same server): refused unless ssl_check_hostname=false."""
    url = tls_url(tls_port, certs.ca, host="127.0.0.2")
    with pytest.raises(ProviderError, match="certificate verify failed"):
        async with ValkeyLockProvider(url):
            pass
    async with ValkeyLockProvider(url, ssl_check_hostname=False):
        pass


async def test_a_plain_url_to_a_tls_port_fails_with_a_hint(tls_port: int) -> None:
    with pytest.raises(ProviderError, match="use valkeys:// or rediss://") as info:
        async with ValkeyLockProvider(f"valkey://:{SECRET}@127.0.0.1:{tls_port}/0"):
            pass
    assert f"127.0.0.1:{tls_port}" in str(info.value)
    assert SECRET not in str(info.value)


def test_tls_options_on_a_plain_url_are_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"ssl_ca_certs .* only apply to TLS"):
        ValkeyLockProvider("valkey://127.0.0.1:6379/0?ssl_ca_certs=/etc/ca.pem")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ssl_ca_certs=/no/such/ca.pem", "ssl_ca_certs .* names no readable file: '/no/such"),
        ("ssl_ca_path=/no/such/dir", "ssl_ca_path .* names no readable directory"),
        ("ssl_certfile=/no/such/client.pem", "ssl_certfile .* names no readable file"),
        ("ssl_cert_reqs=maybe", "ssl_cert_reqs .* must be one of none, optional, required"),
        ("ssl_check_hostname=perhaps", "ssl_check_hostname .* must be true or false"),
        ("ssl_cert_reqs=none&ssl_check_hostname=true", "ssl_check_hostname .* needs"),
        ("ssl_ca_cert=/etc/ca.pem", "unknown parameter"),
    ],
)
def test_bad_tls_options_are_refused_naming_the_option(query: str, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected) as info:
        ValkeyQueueProvider(f"rediss://:{SECRET}@127.0.0.1:6379/0?{query}")
    assert SECRET not in str(info.value)


def test_a_key_without_its_certificate_is_refused(certs: Certs) -> None:
    with pytest.raises(ConfigurationError, match=r"ssl_keyfile .* needs ssl_certfile"):
        ValkeyLockProvider("rediss://127.0.0.1:6379/0", ssl_keyfile=str(certs.client_key))


async def test_unverified_tls_connects_when_asked_for(tls_port: int) -> None:
    """``ssl_cert_reqs=none`` (encryption without verification) is explicit, never the
    default."""
    async with ValkeyLockProvider(f"rediss://127.0.0.1:{tls_port}/0?ssl_cert_reqs=none"):
        pass
