"""Queue and lock providers agree with the memory providers on random operation sequences
(hypothesis state machine): SQLite, PostgreSQL and Valkey/Redis, each example on fresh
state (a new SQLite file, a new PostgreSQL schema, a new Valkey key prefix).

Queues: ids are unique (enqueueing an id already waiting may be coalesced, so a duplicate
would leave the result unspecified) and the visibility timeout is far longer than an
example, so what a dequeue returns is fully specified: the oldest waiting item of its kind.
Locks: two owners per store contend for a few resources with long TTLs (expiry depends on
real time and is covered by the contract suite); every lease's fencing token is higher
than every earlier one of its resource on that store.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import trio
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from wfe.core.memory import MemoryPersistenceProvider
from wfe.core.protocols import Lease, QueueItem, QueueKind

from . import pg_support
from .property_support import PROFILE, call, new_schema, postgres_available

VALKEY_URL = os.environ.get("WFE_TEST_VALKEY_URL", "redis://127.0.0.1:6379/0")
TTL = timedelta(seconds=60)
RESOURCES = ["res-a", "res-b", "res-c"]
KINDS = list(QueueKind)


def valkey_available() -> bool:
    """Whether wfe-valkey is installed and its server answers; fails instead of skipping
    when ``WFE_REQUIRE_SERVICES`` names valkey."""
    try:
        import valkey
    except ImportError:
        return False
    client = valkey.Valkey.from_url(VALKEY_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except valkey.ValkeyError as exc:
        names = {n.strip() for n in os.environ.get("WFE_REQUIRE_SERVICES", "").split(",")}
        if "valkey" in names:
            raise AssertionError(
                f"no Valkey/Redis at WFE_TEST_VALKEY_URL={VALKEY_URL}: {exc} "
                "(WFE_REQUIRE_SERVICES names valkey)"
            ) from exc
        return False
    finally:
        client.close()
    return True


def delete_prefix(prefix: str) -> None:
    import valkey

    client = valkey.Valkey.from_url(VALKEY_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class _Stores:
    """One example's providers: per store a queue and two lock providers (two owners)."""

    def __init__(self, tmp: Path, postgres: bool, valkey: bool) -> None:
        self.tmp, self.postgres, self.valkey = tmp, postgres, valkey
        self.count = 0
        self.stack = contextlib.AsyncExitStack()
        self.schema: str | None = None
        self.prefix: str | None = None

    async def open(self) -> dict[str, tuple[Any, Any, Any]]:
        self.count += 1
        enter = self.stack.enter_async_context
        stores: dict[str, Any] = {"memory": await enter(MemoryPersistenceProvider())}
        from wfe.sqlite import SqlitePersistenceProvider

        path = self.tmp / f"queues-{self.count}.db"
        stores["sqlite"] = await enter(SqlitePersistenceProvider(f"sqlite:///{path}"))
        if self.postgres:
            from wfe.postgres import PostgresPersistenceProvider

            self.schema = new_schema()
            url = pg_support.with_schema(pg_support.URL, self.schema)
            stores["postgres"] = await enter(PostgresPersistenceProvider(url, pool_size=2))
        out = {}
        for name, store in stores.items():
            out[name] = (
                await enter(store.default_queues()),
                await enter(store.default_locks()),
                await enter(store.default_locks()),
            )
        if self.valkey:
            from wfe.valkey import ValkeyLockProvider, ValkeyQueueProvider

            self.prefix = f"wfe-props:{secrets.token_hex(6)}:"
            out["valkey"] = (
                await enter(ValkeyQueueProvider(VALKEY_URL, prefix=self.prefix, block=0.01)),
                await enter(ValkeyLockProvider(VALKEY_URL, prefix=self.prefix)),
                await enter(ValkeyLockProvider(VALKEY_URL, prefix=self.prefix)),
            )
        return out

    async def close(self) -> None:
        await self.stack.aclose()
        if self.schema is not None:
            schema, self.schema = self.schema, None
            await trio.to_thread.run_sync(pg_support.drop_schema, schema)
        if self.prefix is not None:
            prefix, self.prefix = self.prefix, None
            await trio.to_thread.run_sync(delete_prefix, prefix)


class QueueLockMachine(RuleBasedStateMachine):
    opener: _Stores

    def __init__(self) -> None:
        super().__init__()
        self.providers = call(self.opener.open)
        self.ids = itertools.count()
        # Per store: items taken and not acked yet; leases held by (owner, resource).
        self.taken: dict[str, list[QueueItem]] = {name: [] for name in self.providers}
        self.leases: dict[str, dict[tuple[int, str], Lease]] = {n: {} for n in self.providers}
        self.tokens: dict[str, dict[str, int]] = {name: {} for name in self.providers}

    def teardown(self) -> None:
        call(self.opener.close)

    # -- queues ----------------------------------------------------------------------------

    @rule(kind=st.sampled_from(KINDS), count=st.integers(1, 3), many=st.booleans())
    def enqueue(self, kind: QueueKind, count: int, many: bool) -> None:
        fresh = [f"item-{next(self.ids)}" for _ in range(count)]
        for queue, _, _ in self.providers.values():
            if many:
                call(lambda q: q.enqueue_many(kind, fresh), queue)
            else:
                for item_id in fresh:
                    call(lambda q, i=item_id: q.enqueue(kind, i), queue)

    @rule(kind=st.sampled_from(KINDS))
    def dequeue(self, kind: QueueKind) -> None:
        got: dict[str, str | None] = {}
        for name, (queue, _, _) in self.providers.items():
            # An item that is waiting comes at once; an empty queue waits out the timeout.
            item = call(lambda q: q.dequeue(kind, 0.01), queue)
            if item is not None:
                assert item.kind == kind, f"{name}: dequeue({kind}) gave {item}"
                self.taken[name].append(item)
            got[name] = None if item is None else item.item_id
        model = got["memory"]
        for name, item_id in got.items():
            assert item_id == model, f"dequeue({kind}): {name} gave {item_id}, memory {model}"

    @rule(data=st.data(), twice=st.booleans())
    def ack(self, data: st.DataObject, twice: bool) -> None:
        count = len(self.taken["memory"])
        if not count:
            return
        index = data.draw(st.integers(0, count - 1), label="item")
        for name, (queue, _, _) in self.providers.items():
            item = self.taken[name].pop(index)
            call(lambda q, i=item: q.ack(i), queue)
            if twice:  # acking again is harmless
                call(lambda q, i=item: q.ack(i), queue)

    # -- locks -----------------------------------------------------------------------------

    @rule(owner=st.integers(1, 2), resource=st.sampled_from(RESOURCES))
    def acquire(self, owner: int, resource: str) -> None:
        granted: dict[str, bool] = {}
        for name, providers in self.providers.items():
            lease = call(lambda p: p.acquire(resource, TTL), providers[owner])
            granted[name] = lease is not None
            if lease is not None:
                last = self.tokens[name].get(resource)
                assert last is None or lease.fencing_token > last, (
                    f"{name}: token {lease.fencing_token} for {resource} after {last}"
                )
                self.tokens[name][resource] = lease.fencing_token
                self.leases[name][(owner, resource)] = lease
        model = granted["memory"]
        for name, ok in granted.items():
            assert ok == model, f"acquire({resource}) by owner {owner}: {name} {ok}, memory {model}"

    @rule(owner=st.integers(1, 2), resource=st.sampled_from(RESOURCES), renew=st.booleans())
    def renew_or_release(self, owner: int, resource: str, renew: bool) -> None:
        """Renew or release the last lease this owner got on ``resource`` (it may have
        been released already, or be held by the other owner now)."""
        results: dict[str, Any] = {}
        for name, providers in self.providers.items():
            lease = self.leases[name].get((owner, resource))
            if lease is None:
                return  # never acquired by this owner: the same on every store
            action = providers[owner].renew if renew else providers[owner].release
            results[name] = call(action, lease)
        model = results["memory"]
        for name, got in results.items():
            action = "renew" if renew else "release"
            assert got == model, f"{action}({resource}) by {owner}: {name} {got}, memory {model}"

    @rule(owner=st.integers(1, 2), resource=st.sampled_from(RESOURCES))
    def release_by_the_other_owner(self, owner: int, resource: str) -> None:
        """Releasing through the provider of the owner that does not hold the lease."""
        other = 3 - owner
        for name, providers in self.providers.items():
            lease = self.leases[name].get((owner, resource))
            if lease is not None:
                call(lambda p, lease=lease: p.release(lease), providers[other])


async def test_queues_and_locks_agree_with_memory(tmp_path: Path) -> None:
    """Random enqueue/dequeue/ack and acquire/renew/release sequences give the same
    results on SQLite, PostgreSQL and Valkey/Redis as on the memory providers, and
    fencing tokens only grow."""
    opener = _Stores(tmp_path, postgres_available(), valkey_available())
    machine = type("Machine", (QueueLockMachine,), {"opener": opener})
    chosen = settings(PROFILE, max_examples=10, stateful_step_count=25)
    await trio.to_thread.run_sync(lambda: run_state_machine_as_test(machine, settings=chosen))
