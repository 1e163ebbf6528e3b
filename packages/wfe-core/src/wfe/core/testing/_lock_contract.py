"""The contract every :class:`~wfe.core.protocols.DistributedLockProvider` must pass."""

from __future__ import annotations

import itertools
from datetime import timedelta

import attrs
import trio

from ..protocols import DistributedLockProvider, Lease
from ._samples import unique_word


class LockContract:
    """Contract tests for a lock provider.

    Subclass it as ``TestXxx`` and supply an async generator fixture ``locks`` yielding
    an entered provider. Expiry is tested with real sleeps of a few tenths of a second
    (``short_ttl``).
    """

    short_ttl = timedelta(seconds=0.2)
    long_ttl = timedelta(seconds=30)

    async def test_acquire_is_exclusive_per_resource(self, locks: DistributedLockProvider) -> None:
        resource = unique_word("res")
        lease = await locks.acquire(resource, self.long_ttl)
        assert lease is not None
        assert lease.resource == resource
        assert lease.ttl == self.long_ttl
        assert await locks.acquire(resource, self.long_ttl) is None, "two holders at once"
        await locks.release(lease)

    async def test_resources_are_independent(self, locks: DistributedLockProvider) -> None:
        a = await locks.acquire(unique_word("res"), self.long_ttl)
        b = await locks.acquire(unique_word("res"), self.long_ttl)
        assert a is not None
        assert b is not None
        await locks.release(a)
        await locks.release(b)

    async def test_release_lets_the_next_acquirer_in(self, locks: DistributedLockProvider) -> None:
        resource = unique_word("res")
        first = await locks.acquire(resource, self.long_ttl)
        assert first is not None
        await locks.release(first)
        second = await locks.acquire(resource, self.long_ttl)
        assert second is not None, "release did not free the resource"
        assert second.fencing_token > first.fencing_token
        await locks.release(second)

    async def test_concurrent_acquirers_get_one_lease(self, locks: DistributedLockProvider) -> None:
        resource = unique_word("res")
        won: list[Lease] = []

        async def contend() -> None:
            lease = await locks.acquire(resource, self.long_ttl)
            if lease is not None:
                won.append(lease)

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(contend)
        assert len(won) == 1, f"{len(won)} tasks hold the same resource"
        await locks.release(won[0])

    async def test_fencing_tokens_strictly_increase(self, locks: DistributedLockProvider) -> None:
        resource = unique_word("res")
        tokens = []
        for _ in range(5):
            lease = await locks.acquire(resource, self.long_ttl)
            assert lease is not None
            tokens.append(lease.fencing_token)
            await locks.release(lease)
        assert all(a < b for a, b in itertools.pairwise(tokens)), tokens

    async def test_release_of_unknown_or_released_lease_is_harmless(
        self, locks: DistributedLockProvider
    ) -> None:
        resource = unique_word("res")
        lease = await locks.acquire(resource, self.long_ttl)
        assert lease is not None
        await locks.release(lease)
        await locks.release(lease)
        unknown = attrs.evolve(lease, resource=unique_word("res"))
        await locks.release(unknown)
        held = await locks.acquire(resource, self.long_ttl)
        assert held is not None
        await locks.release(lease)  # the old lease must not free the new holder
        assert await locks.acquire(resource, self.long_ttl) is None
        forged = attrs.evolve(held, owner=unique_word("owner"))
        await locks.release(forged)  # another owner's lease must not free it either
        assert await locks.acquire(resource, self.long_ttl) is None
        assert await locks.renew(held)
        await locks.release(held)

    async def test_expired_lease_lets_another_in_and_cannot_release_it(
        self, locks: DistributedLockProvider
    ) -> None:
        resource = unique_word("res")
        old = await locks.acquire(resource, self.short_ttl)
        assert old is not None
        await trio.sleep(self.short_ttl.total_seconds() * 2)
        new = await locks.acquire(resource, self.long_ttl)
        assert new is not None, "an expired lease still holds the resource"
        assert new.fencing_token > old.fencing_token
        await locks.release(old)
        assert await locks.acquire(resource, self.long_ttl) is None, "stale release freed it"
        assert not await locks.renew(old), "a superseded lease was renewed"
        assert await locks.renew(new)
        await locks.release(new)

    async def test_renew_extends_the_lease(self, locks: DistributedLockProvider) -> None:
        resource = unique_word("res")
        ttl = self.short_ttl * 2
        lease = await locks.acquire(resource, ttl)
        assert lease is not None
        for _ in range(3):
            await trio.sleep(ttl.total_seconds() * 0.6)
            assert await locks.renew(lease), "renew of a held lease failed"
        # 1.8 ttl has passed since acquisition: only the renewals keep it held.
        assert await locks.acquire(resource, self.long_ttl) is None
        await locks.release(lease)

    async def test_stale_lease_cannot_renew(self, locks: DistributedLockProvider) -> None:
        resource = unique_word("res")
        lease = await locks.acquire(resource, self.short_ttl)
        assert lease is not None
        await trio.sleep(self.short_ttl.total_seconds() * 2)
        assert not await locks.renew(lease), "an expired lease was renewed"
        released = await locks.acquire(resource, self.long_ttl)
        assert released is not None
        await locks.release(released)
        assert not await locks.renew(released), "a released lease was renewed"
