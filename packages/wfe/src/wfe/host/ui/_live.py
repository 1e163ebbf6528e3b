"""Live updates: which workflows changed, as soon as the host hears of it.

The host tells :class:`ChangeBroker` about every lifecycle event it publishes (steps
starting and completing, status changes of the workflows it runs) and about every
status change its providers' change feeds report from other processes. Each open page
waits on the broker for its workflow (or for any, on the list page); where nothing
would tell (a worker in another process finishing a step, on a store without a feed)
the page's stream re-reads the workflow on a slow poll instead.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from .._host import WorkflowHost

ANY = "*"
"""The key of the waiters woken by a change of any workflow."""


class ChangeBroker:
    """Wakes the waiters of a workflow (and those of any workflow) on each change."""

    def __init__(self) -> None:
        self._waiters: dict[str, trio.Event] = {}
        self.changes = 0
        """How many changes were noted (the list page compares it)."""

    def notify(self, workflow_id: str) -> None:
        """``workflow_id`` changed: wake whoever waits for it or for any workflow."""
        self.changes += 1
        for key in (workflow_id, ANY):
            event = self._waiters.pop(key, None)
            if event is not None:
                event.set()

    def waiter(self, workflow_id: str = ANY) -> trio.Event:
        """An event set on the next change of ``workflow_id`` (take it before reading,
        so a change in between is not missed)."""
        event = self._waiters.get(workflow_id)
        if event is None:
            event = self._waiters[workflow_id] = trio.Event()
        return event

    async def serve(self, host: WorkflowHost) -> None:
        """Forward the host's lifecycle events and change-feed calls until cancelled."""
        host._change_listeners.append(self.notify)
        try:
            async for event in host.lifecycle_events(replay=False):
                self.notify(event.workflow_instance_id)
        finally:
            with contextlib.suppress(ValueError):
                host._change_listeners.remove(self.notify)
