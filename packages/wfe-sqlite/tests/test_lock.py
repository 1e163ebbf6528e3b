"""SqliteLockProvider: exclusive expiring leases with growing fencing tokens."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import attrs
import pytest
import trio

from wfe.core import ConfigurationError
from wfe.core.protocols import DistributedLockProvider
from wfe.sqlite import SqliteLockProvider
from wfe.sqlite._writer import Job

TTL = timedelta(seconds=30)
SHORT = timedelta(milliseconds=100)


async def test_is_a_lock_provider(locks: SqliteLockProvider) -> None:
    assert isinstance(locks, DistributedLockProvider)


async def test_a_held_resource_is_refused_without_waiting(locks: SqliteLockProvider) -> None:
    lease = await locks.acquire("wf-1", TTL)
    assert lease is not None
    assert lease.resource == "wf-1"
    with trio.fail_after(1):
        assert await locks.acquire("wf-1", TTL) is None
    assert await locks.acquire("wf-2", TTL) is not None


async def test_tokens_grow_with_every_acquisition(locks: SqliteLockProvider) -> None:
    tokens = []
    for _ in range(3):
        lease = await locks.acquire("r", TTL)
        assert lease is not None
        tokens.append(lease.fencing_token)
        await locks.release(lease)
    assert tokens == sorted(set(tokens))


async def test_an_expired_lease_frees_the_resource(locks: SqliteLockProvider) -> None:
    old = await locks.acquire("r", SHORT)
    assert old is not None
    await trio.sleep(0.15)
    new = await locks.acquire("r", TTL)
    assert new is not None
    assert new.fencing_token > old.fencing_token
    assert not await locks.renew(old)
    await locks.release(old)  # must not release the new holder
    assert await locks.acquire("r", TTL) is None
    assert await locks.renew(new)


async def test_renew_extends_a_held_lease(locks: SqliteLockProvider) -> None:
    # Lease expiry is on the wall clock stored in the file. Three renewals 0.4 s apart
    # outlive the 1 s TTL (so renew extended it) and leave 0.6 s for a late wake-up.
    lease = await locks.acquire("r", timedelta(seconds=1))
    assert lease is not None
    for _ in range(3):
        await trio.sleep(0.4)
        assert await locks.renew(lease)
    assert await locks.acquire("r", TTL) is None


async def test_release_is_harmless_twice(locks: SqliteLockProvider) -> None:
    lease = await locks.acquire("r", TTL)
    assert lease is not None
    await locks.release(lease)
    await locks.release(lease)
    assert not await locks.renew(lease)
    again = await locks.acquire("r", TTL)
    assert again is not None


async def test_bad_ttl_is_a_configuration_error(locks: SqliteLockProvider) -> None:
    with pytest.raises(ConfigurationError, match="ttl"):
        await locks.acquire("r", timedelta(0))


async def test_providers_on_one_file_exclude_each_other(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'locks.db'}"
    async with SqliteLockProvider(url) as a, SqliteLockProvider(url) as b:
        la = await a.acquire("r", TTL)
        assert la is not None
        assert await b.acquire("r", TTL) is None
        await b.release(attrs.evolve(la, owner="someone-else"))
        assert await b.acquire("r", TTL) is None
        await a.release(la)
        lb = await b.acquire("r", TTL)
        assert lb is not None
        assert lb.fencing_token == la.fencing_token + 1


async def test_tokens_keep_growing_after_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'locks.db'}"
    async with SqliteLockProvider(url) as a:
        first = await a.acquire("r", TTL)
        assert first is not None
        await a.release(first)
    async with SqliteLockProvider(url) as a:
        second = await a.acquire("r", TTL)
        assert second is not None
        assert second.fencing_token > first.fencing_token


async def test_concurrent_acquirers_get_one_lease(locks: SqliteLockProvider) -> None:
    won = []

    async def grab() -> None:
        lease = await locks.acquire("hot", TTL)
        if lease is not None:
            won.append(lease)

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(grab)
    assert len(won) == 1


async def test_a_release_held_behind_a_busy_writer_is_committed_at_close(tmp_path: Path) -> None:
    """A release is posted, not awaited; while the writer thread is busy (a WAL
    checkpoint, say) it waits on the trio side. Leaving the provider right then must
    still commit it, or the next host would wait out the lease's ttl."""
    url = f"sqlite:///{tmp_path / 'l.db'}"
    async with SqliteLockProvider(url) as first:
        lease = await first.acquire("r", timedelta(hours=1))
        assert lease is not None
        busy = threading.Event()

        def occupy(_conn: object) -> None:
            busy.set()
            time.sleep(0.3)

        db = first._db
        assert db._thread is not None
        db._thread.submit(Job(occupy, posted=True))
        await trio.to_thread.run_sync(busy.wait)
        await first.release(lease)
    async with SqliteLockProvider(url) as second:
        assert await second.acquire("r", timedelta(hours=1)) is not None
