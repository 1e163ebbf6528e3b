"""``valkeys://...?cluster=true`` against a private three-master Redis 7 Cluster that
speaks TLS only (client ports and cluster bus): the lock contract, the change feed, two
hosts running workflows, and a wrong CA named clearly."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from valkey.cluster import ValkeyCluster

from wfe.core import ProviderError
from wfe.core.testing import LockContract
from wfe.valkey import ValkeyLockProvider

sys.path.insert(0, str(Path(__file__).parent))
from private_servers import Certs, Unavailable, make_certs, tls_cluster
from transport_checks import check_change_feed, check_hosts_run_workflows
from valkey_support import unavailable


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    try:
        return make_certs(tmp_path_factory.mktemp("certs"))
    except Unavailable as exc:
        unavailable(str(exc))
        raise


@pytest.fixture(scope="module")
def tls_cluster_ports(
    tmp_path_factory: pytest.TempPathFactory, certs: Certs
) -> Iterator[list[int]]:
    try:
        with tls_cluster(tmp_path_factory.mktemp("tls-cluster"), certs) as ports:
            yield ports
    except Unavailable as exc:
        unavailable(str(exc))


def url_for(port: int, ca: Path) -> str:
    return f"valkeys://127.0.0.1:{port}/0?cluster=true&ssl_ca_certs={quote(str(ca))}"


@pytest.fixture
def server_url(tls_cluster_ports: list[int], certs: Certs) -> str:
    """Replaces conftest's server list: TLS to a cluster, through one of its nodes."""
    return url_for(tls_cluster_ports[0], certs.ca)


@pytest.fixture
def prefix() -> str:
    """A prefix of the test's own; the private cluster is dropped with the module."""
    return f"wfe-test:{secrets.token_hex(6)}:"


class TestLocksOnTlsCluster(LockContract):
    pass


async def test_the_change_feed_works_on_a_tls_cluster(server_url: str, prefix: str) -> None:
    await check_change_feed(server_url, prefix)


async def test_two_hosts_run_workflows_on_a_tls_cluster(
    server_url: str, prefix: str, tmp_path: Path, tls_cluster_ports: list[int], certs: Certs
) -> None:
    def subscriber() -> ValkeyCluster:
        return ValkeyCluster(
            host="127.0.0.1", port=tls_cluster_ports[1], ssl=True, ssl_ca_certs=str(certs.ca)
        )

    await check_hosts_run_workflows(server_url, "{" + prefix + "}", tmp_path, subscriber)


async def test_a_wrong_ca_for_a_tls_cluster_names_the_node_and_the_verification(
    tls_cluster_ports: list[int], certs: Certs
) -> None:
    with pytest.raises(ProviderError, match="certificate verify failed") as info:
        async with ValkeyLockProvider(url_for(tls_cluster_ports[0], certs.other_ca)):
            pass
    assert f"127.0.0.1:{tls_cluster_ports[0]}" in str(info.value)
    assert "ssl_ca_certs" in str(info.value)


async def test_a_plain_cluster_url_to_tls_ports_fails_with_a_hint(
    tls_cluster_ports: list[int],
) -> None:
    with pytest.raises(ProviderError, match="use valkeys:// or rediss://"):
        async with ValkeyLockProvider(f"valkey://127.0.0.1:{tls_cluster_ports[0]}/0?cluster=true"):
            pass
