"""An event published on a worker host with a free event slot is delivered there at
once, and ``publish_event`` returns once it is: a burst of events is delivered as fast
as it is published instead of piling up behind the publisher. The delivery runs in a
task of the host's, so a publisher cancelled meanwhile does not interrupt it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import trio

from wfe.core import PointerStatus, WorkflowBuilder, WorkflowStatus
from wfe.core.memory import MemoryLockProvider
from wfe.core.protocols import Lease
from wfe.host import WorkflowHost, WorkflowHostBuilder


def _waiting(name: str) -> Any:
    return (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .wait_for("go", lambda data, ctx: data["key"])
        .then(lambda ctx: None)
        .build(name, 1)
    )


async def _park(host: WorkflowHost, name: str, keys: list[str]) -> list[str]:
    """Start one workflow per key and return their ids once each waits for its event
    and its pass here is over (a pass checks, after its last checkpoint, for events
    already pending: one published meanwhile would be offered twice)."""
    ids = [await host.start_workflow(name, 1, {"key": key}) for key in keys]
    for wid in ids:
        while not any(
            p.status is PointerStatus.WAITING_FOR_EVENT
            for p in (await host.get_workflow(wid)).execution_pointers
        ):
            await trio.sleep(0.005)
    while host.statistics().running_workflows:
        await trio.sleep(0.005)
    return ids


async def test_when_publish_returns_the_waiting_workflow_has_its_event(
    host_factory: Any,
) -> None:
    async with host_factory(_waiting("burst")) as host:
        keys = [f"k{i}" for i in range(12)]
        ids = await _park(host, "burst", keys)
        for key in keys:  # back to back, as a burst
            event_id = await host.publish_event("go", key, {"key": key})
            # Delivered before publish_event returned: its subscription is closed and
            # the event marked processed, in the store.
            assert await host.persistence.get_subscriptions("go", key, host.clock.now()) == []
            assert (await host.persistence.get_event(event_id)).processed
        for wid in ids:
            assert (await host.wait_for_workflow(wid, 30)).status is WorkflowStatus.COMPLETE


class _GatedLocks(MemoryLockProvider):
    """In-process locks whose event-lock acquisitions wait at a gate once it is closed
    (:meth:`close`); :attr:`reached` tells that one is waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.reached = trio.Event()
        self.gate = trio.Event()
        self.gate.set()

    def close(self) -> None:
        self.gate = trio.Event()
        self.reached = trio.Event()

    async def acquire(self, resource: str, ttl: timedelta) -> Lease | None:
        if resource.startswith("wfe:event:"):
            self.reached.set()
            await self.gate.wait()
        return await super().acquire(resource, ttl)


def _gated_host(tmp_path: Any, name: str, locks: _GatedLocks) -> WorkflowHost:
    """A SQLite host on ``locks`` running ``_waiting(name)``, whose poller (every five
    minutes) is never what delivers an event here."""
    return (
        WorkflowHostBuilder()
        .persistence(f"sqlite:///{tmp_path / 'wfe.db'}")
        .locks(locks)
        .poll_interval(timedelta(minutes=5))
        .register(_waiting(name))
        .build()
    )


async def test_a_publisher_cancelled_during_the_delivery_does_not_interrupt_it(
    tmp_path: Any,
) -> None:
    locks = _GatedLocks()
    async with _gated_host(tmp_path, "cancelled", locks) as host:
        (wid,) = await _park(host, "cancelled", ["k"])
        locks.close()
        with trio.CancelScope() as publisher:

            async def cancel_once_delivering() -> None:
                await locks.reached.wait()
                publisher.cancel()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(cancel_once_delivering)
                await host.publish_event("go", "k", {"key": "k"})
        assert publisher.cancelled_caught
        locks.gate.set()
        assert (await host.wait_for_workflow(wid, 30)).status is WorkflowStatus.COMPLETE


async def test_with_every_event_slot_taken_an_event_is_queued_and_still_delivered(
    tmp_path: Any,
) -> None:
    locks = _GatedLocks()
    host = _gated_host(tmp_path, "queued", locks)
    host.config.event_workers = 1
    async with host:
        first, second = await _park(host, "queued", ["a", "b"])
        locks.close()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(host.publish_event, "go", "a", {"key": "a"})
            await locks.reached.wait()
            # The only event slot is busy delivering "a": "b" is queued, and
            # publish_event returns without waiting for it.
            await host.publish_event("go", "b", {"key": "b"})
            assert await host.persistence.get_subscriptions("go", "b", host.clock.now())
            locks.gate.set()
        for wid in (first, second):
            assert (await host.wait_for_workflow(wid, 30)).status is WorkflowStatus.COMPLETE
