"""Provider protocols: what a store, lock, queue, search index or publisher must guarantee.

Every provider is an async context manager: ``async with provider:`` connects and
creates its schema (idempotently); leaving closes it. Methods are async and never
block the trio loop (sync drivers run in worker threads). Conformance is checked by
the contract suites in :mod:`wfe.core.testing`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

import attrs

from ._lifecycle import LifecycleEvent
from ._models import (
    Event,
    EventSubscription,
    ExecutionError,
    ExecutionPointer,
    ScheduledCommand,
    WorkflowInstance,
    WorkflowStatus,
)


@runtime_checkable
class AsyncProvider(Protocol):
    """Connects on enter, closes on exit."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class PersistenceProvider(AsyncProvider, Protocol):
    """The store of record for workflows, events, subscriptions and errors.

    Guarantees:

    - Every write is atomic: after a failure (or cancellation) either all of a call's
      changes are stored or none are.
    - Returned objects are copies: mutating them changes nothing until persisted.
    - Execution pointers come back in their stored order (``sequence``), so a scope's
      order is kept.
    - ``persist_workflow`` with ``pointers`` writes only those pointers (inserting new
      ones, replacing changed ones) and the instance row; pointers not listed are
      untouched, so the cost does not grow with the instance's history.
    - With ``fencing_token`` the write is refused with :class:`StaleLeaseError` when a
      write with a greater token was stored for the instance before (a lost lease).
    """

    async def ensure_store_exists(self) -> None:
        """Create tables/indexes if missing; safe to call any number of times."""
        ...

    async def create_workflow(self, instance: WorkflowInstance) -> str:
        """Store a new instance with all its pointers; returns its id."""
        ...

    async def persist_workflow(
        self,
        instance: WorkflowInstance,
        pointers: Sequence[ExecutionPointer] | None = None,
        *,
        subscriptions: Sequence[EventSubscription] = (),
        fencing_token: int | None = None,
    ) -> None:
        """Save the instance row and ``pointers`` (all pointers when ``None``), and
        create ``subscriptions`` in the same transaction."""
        ...

    async def get_workflow(self, workflow_id: str) -> WorkflowInstance:
        """The instance with its pointers; :class:`WorkflowNotFoundError` if absent."""
        ...

    async def get_workflows(self, workflow_ids: Sequence[str]) -> list[WorkflowInstance]:
        """The instances that exist among ``workflow_ids`` (missing ids are skipped)."""
        ...

    async def get_runnable_instances(self, as_of: datetime) -> list[str]:
        """Ids of RUNNABLE instances whose ``next_execution`` is at or before ``as_of``."""
        ...

    async def list_workflows(
        self,
        *,
        status: WorkflowStatus | None = None,
        definition_id: str | None = None,
        skip: int = 0,
        take: int = 100,
    ) -> list[WorkflowInstance]:
        """Instances filtered by status/definition, newest first, without pointers."""
        ...

    async def create_event(self, event: Event) -> str:
        """Store a new event; returns its id."""
        ...

    async def get_event(self, event_id: str) -> Event:
        """The event; :class:`WfeError` subclass if absent."""
        ...

    async def get_runnable_events(self, as_of: datetime) -> list[str]:
        """Ids of unprocessed events with time at or before ``as_of`` that an open
        subscription would accept (same name and key, ``sub.as_of <= event.time``),
        earliest first. Events nobody can take yet are not listed (they stay pending)."""
        ...

    async def get_pending_events(
        self, event_name: str, event_key: str, as_of: datetime
    ) -> list[Event]:
        """Unprocessed events with this name and key and time at or after ``as_of``,
        earliest first."""
        ...

    async def mark_event_processed(self, event_id: str) -> None:
        """Flag the event as delivered."""
        ...

    async def mark_event_unprocessed(self, event_id: str) -> None:
        """Flag the event as pending again."""
        ...

    async def create_subscription(self, subscription: EventSubscription) -> str:
        """Store a subscription on its own (usually they come with ``persist_workflow``)."""
        ...

    async def get_subscriptions(
        self, event_name: str, event_key: str, as_of: datetime
    ) -> list[EventSubscription]:
        """Open subscriptions with this name and key whose ``as_of`` is at or before
        ``as_of``, oldest first."""
        ...

    async def terminate_subscription(self, subscription_id: str) -> None:
        """Close a subscription; closing an unknown or closed one is harmless."""
        ...

    async def get_subscription(self, subscription_id: str) -> EventSubscription | None:
        """The subscription (open or closed), or ``None``."""
        ...

    async def persist_errors(self, errors: Sequence[ExecutionError]) -> None:
        """Append execution errors."""
        ...

    async def get_errors(self, workflow_id: str) -> list[ExecutionError]:
        """Errors recorded for a workflow, oldest first."""
        ...

    async def schedule_command(self, command: ScheduledCommand) -> None:
        """Store a command to run at its ``execute_time`` (same name+data: kept once)."""
        ...

    async def take_due_commands(self, as_of: datetime) -> list[ScheduledCommand]:
        """Remove and return the commands due at ``as_of``, earliest first."""
        ...


@attrs.frozen(kw_only=True)
class Lease:
    """Proof of holding ``resource`` until ``expires_at`` (provider's clock).

    ``fencing_token`` grows strictly with every acquisition of the same resource, so
    a store can refuse writes from an older holder.
    """

    resource: str
    owner: str
    fencing_token: int
    ttl: timedelta
    expires_at: datetime


@runtime_checkable
class DistributedLockProvider(AsyncProvider, Protocol):
    """Exclusive, expiring leases on named resources.

    - ``acquire`` never blocks: it returns ``None`` when another live lease holds the
      resource. An expired lease no longer holds it.
    - ``renew`` extends a lease still held by its owner by its ``ttl`` and returns
      ``True``; for an expired, released or superseded lease it returns ``False``
      and changes nothing.
    - ``release`` of a lease that is not held (released twice, expired, taken by
      another owner, unknown) is harmless and never releases someone else's lease.
    """

    async def acquire(self, resource: str, ttl: timedelta) -> Lease | None: ...

    async def renew(self, lease: Lease) -> bool: ...

    async def release(self, lease: Lease) -> None: ...


class QueueKind(enum.StrEnum):
    """The queues the host uses."""

    WORKFLOW = "workflow"
    EVENT = "event"
    INDEX = "index"


@attrs.frozen(kw_only=True)
class QueueItem:
    """A dequeued item; ``receipt`` identifies this delivery for ``ack``."""

    kind: QueueKind
    item_id: str
    receipt: str = ""


@runtime_checkable
class QueueProvider(AsyncProvider, Protocol):
    """Work queues per :class:`QueueKind`, at-least-once.

    - FIFO per kind; kinds are isolated.
    - Enqueueing an id already waiting in the same kind may be coalesced into one
      delivery (items are hints: "look at this id").
    - ``dequeue`` waits up to ``timeout`` seconds and returns ``None`` when empty;
      cancelling it loses no item.
    - An item not acked within the provider's visibility timeout (its taker died) is
      delivered again. Acking twice, or acking a redelivered item's old receipt, is
      harmless.
    """

    async def enqueue(self, kind: QueueKind, item_id: str) -> None: ...

    async def dequeue(self, kind: QueueKind, timeout: float) -> QueueItem | None: ...

    async def ack(self, item: QueueItem) -> None: ...


@attrs.frozen(kw_only=True)
class SearchFilters:
    """Narrow a search; every set field must match."""

    status: WorkflowStatus | None = None
    definition_id: str | None = None
    reference: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    completed_from: datetime | None = None
    completed_to: datetime | None = None


@attrs.frozen(kw_only=True)
class SearchResult:
    """One matching workflow, as indexed."""

    id: str
    definition_id: str
    version: int
    status: WorkflowStatus
    reference: str | None
    description: str | None
    create_time: datetime
    complete_time: datetime | None
    data: Any = None


@attrs.frozen(kw_only=True)
class Page:
    """A page of search results and the total number of matches."""

    items: list[SearchResult]
    total: int


@runtime_checkable
class SearchIndex(AsyncProvider, Protocol):
    """Full-text search over workflow instances.

    ``index`` replaces any earlier entry for the same id. ``search`` matches every
    term (case-insensitive) against reference, description, definition id, status
    and the text of the data; an empty ``terms`` matches all. Results are newest
    first; ``skip``/``take`` page them and ``Page.total`` counts every match.
    """

    async def index(self, instance: WorkflowInstance) -> None: ...

    async def search(
        self,
        terms: str,
        filters: SearchFilters | None = None,
        skip: int = 0,
        take: int = 100,
    ) -> Page: ...


@runtime_checkable
class ProvidesCompanions(Protocol):
    """Optional: a persistence provider that can also serve locks, queues and search
    from the same store. The host uses these when no lock/queue/search provider is
    configured. Each returns a new, not yet entered provider (or ``None``) sharing
    the persistence provider's database; it is entered after the persistence
    provider and left before it."""

    def default_locks(self) -> DistributedLockProvider | None: ...

    def default_queues(self) -> QueueProvider | None: ...

    def default_search(self) -> SearchIndex | None: ...


@runtime_checkable
class LifecycleEventPublisher(Protocol):
    """Receives lifecycle events in the order they happen on one host."""

    async def publish(self, event: LifecycleEvent) -> None: ...


__all__ = [
    "AsyncProvider",
    "DistributedLockProvider",
    "Lease",
    "LifecycleEventPublisher",
    "Page",
    "PersistenceProvider",
    "ProvidesCompanions",
    "QueueItem",
    "QueueKind",
    "QueueProvider",
    "SearchFilters",
    "SearchIndex",
    "SearchResult",
]
