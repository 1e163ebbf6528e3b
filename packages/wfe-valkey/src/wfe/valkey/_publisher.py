"""Lifecycle events of every host on one pub/sub channel, as JSON."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import attrs

from wfe.core import LifecycleEvent

from ._base import ValkeyProvider
from ._changes import STATUS_EVENTS, _first_to_publish


def event_json(event: LifecycleEvent) -> str:
    """``{"type": "WorkflowCompleted", "workflow_instance_id": ..., "time": ISO-8601, ...}``."""
    fields: dict[str, Any] = {"type": type(event).__name__}
    for name, value in attrs.asdict(event, recurse=False).items():
        fields[name] = value.isoformat() if isinstance(value, datetime) else value
    return json.dumps(fields, separators=(",", ":"), default=str)


class ValkeyLifecyclePublisher(ValkeyProvider):
    """A :class:`~wfe.core.protocols.LifecycleEventPublisher` publishing every lifecycle
    event as JSON (:func:`event_json`) on the channel ``<prefix>lifecycle``, for
    dashboards and other processes (``SUBSCRIBE wfe:lifecycle``).

    Use it with ``WorkflowHostBuilder().lifecycle_publisher(ValkeyLifecyclePublisher(url))``.
    Status changes also go to ``<prefix>changes``, and it is a change feed, like the
    lock and queue providers. Pub/sub delivers to whoever is subscribed at that moment:
    a subscriber that is away misses events (the store keeps the state, not the feed).
    """

    @property
    def lifecycle_channel(self) -> str:
        """The channel every lifecycle event is published on."""
        return self.prefix + "lifecycle"

    async def publish(self, event: LifecycleEvent) -> None:
        """Publish ``event``; a server that cannot be reached is logged, not raised."""
        messages = [(self.lifecycle_channel, event_json(event))]
        if isinstance(event, STATUS_EVENTS) and _first_to_publish(
            event, self._server.settings.server_key
        ):
            messages.append((self.changes_channel, event.workflow_instance_id))
        await self._publish_raw(messages)
