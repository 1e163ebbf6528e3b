"""On a store that keeps the host's leases (SQLite, PostgreSQL), a workflow started and
run here is created with its lease in one write, an event published here is stored with
its lease, its delivery takes the lease on the workflow it wakes and claims it, and the
last checkpoint of each pass gives the lease up: no separate acquire, claim or release.
With a lock provider of its own, the host takes the leases as before. On a store whose
checkpoints find the events pending for the waits they open (SQLite), no read follows
a wait stored."""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import pytest

from wfe.core import WorkflowStatus
from wfe.core.memory import MemoryLockProvider
from wfe.core.protocols import PendingInCheckpoints, PendingSubscriptions
from wfe.host import WorkflowHostBuilder

from .test_publish_here import _park, _waiting

_COUNTED = (
    "create_workflow",
    "create_workflow_leased",
    "create_event",
    "create_event_leased",
    "claim_workflow",
    "deliver_event",
    "deliver_event_claiming",
    "deliver_event_leased",
    "persist_checkpoint_releasing",
)


def _count(provider: Any, names: tuple[str, ...], calls: collections.Counter[str]) -> None:
    """Count each call of ``provider``'s methods ``names`` (``acquire`` and
    ``release`` by the kind of lease)."""
    for name in names:
        method = getattr(provider, name, None)
        if method is None:
            continue

        def counted(*args: Any, _name: str = name, _method: Any = method, **kw: Any) -> Any:
            if _name == "acquire":
                calls[f"acquire {args[0].split(':')[1]}"] += 1
            elif _name == "release":
                calls[f"release {args[0].resource.split(':')[1]}"] += 1
            else:
                calls[_name] += 1
            return _method(*args, **kw)

        setattr(provider, name, counted)


async def _run_one(
    host_factory: Any, configure: Callable[[WorkflowHostBuilder], Any] | None = None
) -> collections.Counter[str]:
    calls: collections.Counter[str] = collections.Counter()
    async with host_factory(_waiting("combined"), configure=configure) as host:
        _count(host.persistence, _COUNTED, calls)
        _count(host.locks, ("acquire", "release"), calls)
        (wid,) = await _park(host, "combined", ["k"])
        await host.publish_event("go", "k", {"n": 1})
        assert (await host.wait_for_workflow(wid, 30)).status is WorkflowStatus.COMPLETE
    return calls


async def test_a_start_and_an_event_run_here_take_their_leases_in_their_writes(
    host_factory: Any, store_url: str
) -> None:
    if store_url.startswith("memory"):
        pytest.skip("the memory store keeps no leases of its own")
    calls = await _run_one(host_factory)
    # The delivery takes the workflow's lease in its write, claims the instance and
    # gives the event's lease up; the workflow's lease goes with the last checkpoint of
    # each of its two passes (parked, then complete).
    assert calls == {
        "create_workflow_leased": 1,
        "create_event_leased": 1,
        "deliver_event_leased": 1,
        "persist_checkpoint_releasing": 2,
    }


async def test_with_a_lock_provider_of_its_own_the_host_takes_each_lease_itself(
    host_factory: Any, store_url: str
) -> None:
    calls = await _run_one(host_factory, lambda b: b.locks(MemoryLockProvider()))
    claiming = not store_url.startswith("memory")
    assert calls == {
        "acquire workflow": 2,
        "release workflow": 2,
        "create_workflow": 1,
        "acquire event": 1,
        "release event": 1,
        "create_event": 1,
        **(
            {"deliver_event_claiming": 1} if claiming else {"deliver_event": 1, "claim_workflow": 1}
        ),
    }


async def test_a_wait_stored_is_read_for_pending_events_only_where_its_checkpoint_is_not(
    host_factory: Any,
) -> None:
    calls: collections.Counter[str] = collections.Counter()
    async with host_factory(_waiting("early")) as host:
        store = host.persistence
        _count(store, ("get_pending_events",), calls)
        # Published before anybody waits: pending until the workflow's wait takes it.
        await host.publish_event("go", "k", {"n": 1})
        wid = await host.start_workflow("early", 1, {"key": "k"})
        done = await host.wait_for_workflow(wid, 30)
    assert done.status is WorkflowStatus.COMPLETE
    assert done.execution_pointers[1].event_data == {"n": 1}
    if isinstance(store, PendingInCheckpoints) and store.finds_pending_in_checkpoints():
        expected = 0  # found by the checkpoint storing the wait
    elif isinstance(store, PendingSubscriptions):
        expected = 1  # after the wait is stored
    else:
        expected = 2  # after the wait is stored, and with the subscription at delivery
    assert calls["get_pending_events"] == expected
