"""The changes of one pass not yet written, and how they become one checkpoint."""

from __future__ import annotations

from datetime import datetime

import attrs

from .._lifecycle import LifecycleEvent
from .._models import (
    Event,
    EventSubscription,
    ExecutionError,
    ExecutionPointer,
    WorkflowInstance,
)
from ..protocols import Checkpoint
from ._state import InstanceState


@attrs.define
class PendingChanges:
    """What the next checkpoint writes besides the changed pointers (which
    :class:`InstanceState` tracks), and the lifecycle events published once it is
    stored: a lifecycle event never announces a change that a crash could undo."""

    opened_subscriptions: list[EventSubscription] = attrs.Factory(list)
    closed_subscriptions: list[str] = attrs.Factory(list)
    processed_events: list[str] = attrs.Factory(list)
    errors: list[ExecutionError] = attrs.Factory(list)
    events: list[Event] = attrs.Factory(list)
    lifecycle: list[LifecycleEvent] = attrs.Factory(list)
    instance_dirty: bool = False
    wake_at: datetime | None = None  # overrides the computed next_execution (backoff)

    def publish(self, event: LifecycleEvent) -> None:
        """Publish ``event`` after the next checkpoint is stored."""
        self.lifecycle.append(event)

    def any(self, state: InstanceState) -> bool:
        """Whether there is anything to write."""
        return bool(
            state.dirty
            or self.instance_dirty
            or self.wake_at is not None
            or self.opened_subscriptions
            or self.closed_subscriptions
            or self.processed_events
            or self.errors
            or self.events
        )

    def checkpoint(
        self,
        instance: WorkflowInstance,
        pointers: list[ExecutionPointer],
        fencing_token: int | None,
        data_json: str | None = None,
        *,
        find_pending: bool = False,
    ) -> Checkpoint:
        """These changes, with the changed ``pointers``, as one checkpoint;
        ``find_pending``: ask the store for the events pending for the subscriptions it
        opens (see :class:`~wfe.core.protocols.PendingInCheckpoints`)."""
        return Checkpoint(
            instance=instance,
            pointers=pointers,
            opened_subscriptions=self.opened_subscriptions,
            closed_subscriptions=self.closed_subscriptions,
            processed_events=self.processed_events,
            errors=self.errors,
            events=self.events,
            fencing_token=fencing_token,
            data_json=data_json,
            found_pending={} if find_pending and self.opened_subscriptions else None,
        )
