"""An event published while the workflow it wakes is letting its lease go on this host
(its pass over, its last checkpoint stored) waits for that release and is delivered at
once: no failed attempt at the lease, no retry a retry interval later."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import trio
import trio.testing

from wfe.core import WorkflowStatus
from wfe.core.memory import MemoryLockProvider
from wfe.core.protocols import Lease

from .test_publish_here import _waiting


class _SlowLetGo(MemoryLockProvider):
    """In-process locks whose first release of a workflow lease, once :attr:`armed`,
    waits until a delivery has read the subscriptions of an event (:attr:`read`) and
    then until every task is blocked: a delivery that tries to take the workflow's
    lease meanwhile finds it held (recorded in :attr:`held`)."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = True
        self.releasing = trio.Event()
        self.event_taken = trio.Event()
        self.read = trio.Event()
        self.held: list[str] = []

    async def acquire(self, resource: str, ttl: timedelta) -> Lease | None:
        lease = await super().acquire(resource, ttl)
        if lease is None:
            self.held.append(resource)
        if resource.startswith("wfe:event:"):
            self.event_taken.set()
        return lease

    async def release(self, lease: Lease) -> None:
        if self.armed and lease.resource.startswith("wfe:workflow:"):
            self.armed = False
            self.releasing.set()
            await self.read.wait()
            await trio.testing.wait_all_tasks_blocked()
        await super().release(lease)


def _signal_reads(persistence: Any, locks: _SlowLetGo) -> None:
    """Set ``locks.read`` once a read of an event's subscriptions (either way the host
    reads them) has returned after the event's lease was taken."""
    for name in ("get_subscriptions_with_pending", "get_pending_events"):
        method = getattr(persistence, name, None)
        if method is None:
            continue

        async def signalled(*args: Any, _method: Any = method, **kw: Any) -> Any:
            found = await _method(*args, **kw)
            if locks.event_taken.is_set():
                locks.read.set()
            return found

        setattr(persistence, name, signalled)


async def test_a_delivery_waits_for_the_run_here_letting_the_lease_go(
    host_factory: Any,
) -> None:
    locks = _SlowLetGo()
    async with host_factory(_waiting("letgo"), configure=lambda b: b.locks(locks)) as host:
        _signal_reads(host.persistence, locks)
        wid = await host.start_workflow("letgo", 1, {"key": "k"})
        # The first pass has parked the workflow and is letting its lease go.
        await locks.releasing.wait()
        event_id = await host.publish_event("go", "k", {"n": 1})
        # Delivered before publish_event returned, with no failed try at the lease.
        assert (await host.persistence.get_event(event_id)).processed
        assert await host.persistence.get_subscriptions("go", "k", host.clock.now()) == []
        assert [r for r in locks.held if r.startswith("wfe:workflow:")] == []
        assert (await host.wait_for_workflow(wid, 30)).status is WorkflowStatus.COMPLETE
