"""Valkey leases beyond the contract: races across connections, millisecond TTLs, keys."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
import trio
import trio.lowlevel
import valkey

from wfe.core import ConfigurationError
from wfe.valkey import ValkeyLockProvider


async def test_many_tasks_on_several_connections_never_see_two_holders(
    server_url: str, prefix: str
) -> None:
    resource = "contended"
    holders: list[str] = []
    tokens: list[int] = []
    overlaps: list[tuple[str, str]] = []
    wanted = 150

    async def contend(locks: ValkeyLockProvider, name: str) -> None:
        while len(tokens) < wanted:
            lease = await locks.acquire(resource, timedelta(seconds=10))
            if lease is None:
                await trio.lowlevel.checkpoint()
                continue
            if holders:
                overlaps.append((holders[0], name))
            holders.append(name)
            tokens.append(lease.fencing_token)
            await trio.lowlevel.checkpoint()  # let every other task try while this one holds it
            holders.remove(name)
            await locks.release(lease)

    async with (
        ValkeyLockProvider(server_url, prefix=prefix) as a,
        ValkeyLockProvider(server_url, prefix=prefix) as b,
        ValkeyLockProvider(server_url, prefix=prefix, pool_size=4) as c,
        trio.open_nursery() as nursery,
    ):
        for i, locks in enumerate(itertools.islice(itertools.cycle((a, b, c)), 30)):
            nursery.start_soon(contend, locks, f"task-{i}")
    assert overlaps == []
    assert len(tokens) >= wanted
    assert all(x < y for x, y in itertools.pairwise(tokens)), "tokens did not grow"


async def test_ttl_is_kept_in_milliseconds(server_url: str, prefix: str) -> None:
    async with ValkeyLockProvider(server_url, prefix=prefix) as locks:
        lease = await locks.acquire("ms", timedelta(milliseconds=1500))
        assert lease is not None
        client = valkey.Valkey.from_url(server_url)
        try:
            pttl = client.pttl(prefix + "lock:ms")
            assert 0 < pttl <= 1500
            assert client.get(prefix + "lock:ms") == lease.owner.encode()
        finally:
            client.close()
        # The server's clock, on this machine: within seconds of ours.
        assert abs(lease.expires_at - (datetime.now(UTC) + lease.ttl)) < timedelta(seconds=5)
        await locks.release(lease)


async def test_each_acquisition_gets_its_own_owner_token(server_url: str, prefix: str) -> None:
    async with ValkeyLockProvider(server_url, prefix=prefix) as locks:
        first = await locks.acquire("r", timedelta(seconds=5))
        assert first is not None
        await locks.release(first)
        second = await locks.acquire("r", timedelta(seconds=5))
        assert second is not None
        assert second.owner != first.owner
        await locks.release(second)


async def test_prefixes_keep_two_deployments_apart(server_url: str, prefix: str) -> None:
    async with (
        ValkeyLockProvider(server_url, prefix=prefix + "a:") as a,
        ValkeyLockProvider(f"{server_url}?prefix={prefix}b:") as b,
    ):
        held_a = await a.acquire("same", timedelta(seconds=5))
        held_b = await b.acquire("same", timedelta(seconds=5))
        assert held_a is not None
        assert held_b is not None
        await a.release(held_a)
        await b.release(held_b)


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(microseconds=500), 5])
async def test_bad_ttl_is_refused(server_url: str, prefix: str, ttl: object) -> None:
    async with ValkeyLockProvider(server_url, prefix=prefix) as locks:
        with pytest.raises(ConfigurationError, match="ttl"):
            await locks.acquire("r", ttl)  # type: ignore[arg-type]
