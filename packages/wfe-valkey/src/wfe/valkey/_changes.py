"""Cross-host wake-ups over pub/sub: status changes published, watched by every host.

Each host publishes the id of a workflow whose status it stored (completed, terminated,
suspended, resumed) on the channel ``<prefix>changes``; every host subscribed to it wakes
its ``wait_for_workflow`` waiters. Pub/sub is fire-and-forget: a host that is not
subscribed at that moment (reconnecting) misses the message and finds the change by its
slower polling instead, which the change-feed protocol allows.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from wfe.core import (
    LifecycleEvent,
    ProviderError,
    WorkflowCompleted,
    WorkflowResumed,
    WorkflowSuspended,
    WorkflowTerminated,
)

from ._connection import DRIVER_ERRORS, close_client, is_connection_error, translate

if TYPE_CHECKING:
    from ._connection import Server

log = logging.getLogger("wfe.valkey")

STATUS_EVENTS = (WorkflowCompleted, WorkflowTerminated, WorkflowSuspended, WorkflowResumed)
"""The lifecycle events that mean a workflow's stored status changed."""

_POLL = 0.2  # seconds the subscriber thread waits for a message before checking its stop flag
_MAX_BACKOFF = 2.0

# A host hands each lifecycle event to every publisher it has; when its lock and queue
# providers are two objects on the same keyspace, only the first publishes the change.
_published: weakref.WeakKeyDictionary[LifecycleEvent, set[tuple[Any, ...]]] = (
    weakref.WeakKeyDictionary()
)
_published_lock = threading.Lock()
# Likewise one subscription per (keyspace, host callback): the second feed just waits.
_watching: set[tuple[Any, ...]] = set()


def _first_to_publish(event: LifecycleEvent, server_key: tuple[Any, ...]) -> bool:
    with _published_lock:
        seen = _published.setdefault(event, set())
        if server_key in seen:
            return False
        seen.add(server_key)
        return True


class ChangeFeed:
    """Mixin: :class:`~wfe.core.protocols.LifecycleEventPublisher` for status changes and
    :class:`~wfe.core.protocols.WorkflowChangeFeed` on the ``<prefix>changes`` channel."""

    _server: Server

    @property
    def changes_channel(self) -> str:
        """The pub/sub channel carrying the ids of workflows whose status changed."""
        return self._server.settings.prefix + "changes"

    async def publish(self, event: LifecycleEvent) -> None:
        """Tell other hosts that ``event``'s workflow changed status (other events are
        ignored here). A failure to reach the server only costs other hosts latency, so
        it is logged, not raised."""
        if not isinstance(event, STATUS_EVENTS) or not _first_to_publish(
            event, self._server.settings.server_key
        ):
            await trio.lowlevel.checkpoint()
            return
        await self._publish_raw([(self.changes_channel, event.workflow_instance_id)])

    async def _publish_raw(self, messages: list[tuple[str, str]]) -> None:
        if self._server.failed_recently():
            # Unreachable a moment ago: drop the message rather than queue events behind
            # connection timeouts (other hosts still poll).
            await trio.lowlevel.checkpoint()
            return

        cluster = self._server.settings.cluster

        def send(client: Any) -> None:
            if len(messages) == 1 or cluster:
                # A cluster client refuses PUBLISH in a pipeline; these are at most two.
                for channel, message in messages:
                    client.publish(channel, message)
                return
            pipe = client.pipeline(transaction=False)
            for channel, message in messages:
                pipe.publish(channel, message)
            pipe.execute()

        try:
            await self._server.run(send, "publishing a lifecycle event")
        except ProviderError as exc:
            # An outage is logged once by the server; anything else (a refused command)
            # is worth a warning each time.
            unreachable = exc.__cause__ is not None and is_connection_error(exc.__cause__)
            log.log(logging.DEBUG if unreachable else logging.WARNING, "%s", exc)

    async def watch_workflows(self, changed: Callable[[str], None]) -> None:
        """Until cancelled, call ``changed(workflow_id)`` for every id published on the
        changes channel by any host; reconnects by itself after the server went away."""
        key = (self._server.settings.server_key, changed)
        if key in _watching:
            # Another provider of the same host already watches this keyspace.
            await trio.sleep_forever()
        _watching.add(key)
        stop = threading.Event()
        token = trio.lowlevel.current_trio_token()
        try:
            await trio.to_thread.run_sync(
                self._listen,
                changed,
                token,
                stop,
                abandon_on_cancel=True,
                limiter=trio.CapacityLimiter(1),
            )
        finally:
            stop.set()
            _watching.discard(key)

    def _listen(
        self, changed: Callable[[str], None], token: trio.lowlevel.TrioToken, stop: threading.Event
    ) -> None:
        """The subscriber thread: a short timeout loop, so ``stop`` is seen quickly."""
        settings = self._server.settings
        backoff = 0.05
        failing = False
        while not stop.is_set():
            client: Any = None
            pubsub: Any = None
            try:
                client = self._server.make_client(max_connections=2, health_check_interval=5)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.changes_channel)
                if failing:
                    log.warning("subscribed to %s again", settings.label)
                    failing = False
                backoff = 0.05
                while not stop.is_set():
                    message = pubsub.get_message(timeout=_POLL)
                    if message is None or message.get("type") != "message":
                        continue
                    data = message.get("data")
                    workflow_id = data.decode("utf-8", "replace") if isinstance(data, bytes) else ""
                    if workflow_id:
                        try:
                            token.run_sync_soon(changed, workflow_id)
                        except trio.RunFinishedError:
                            return
            except DRIVER_ERRORS as exc:
                # Never raised into the host: without the feed it still polls.
                if not failing:
                    log.log(
                        logging.WARNING if is_connection_error(exc) else logging.ERROR,
                        "lost the change feed on %s (%s); reconnecting",
                        settings.label,
                        translate(exc, settings, "listening for changes"),
                    )
                    failing = True
                stop.wait(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
            finally:
                try:
                    if pubsub is not None:
                        pubsub.close()
                    if client is not None:
                        close_client(client)
                except DRIVER_ERRORS:
                    pass
