"""Provider protocols: what a store, lock, queue, search index or publisher must guarantee.

Every provider is an async context manager: ``async with provider:`` connects and
creates its schema (idempotently); leaving closes it. Methods are async and never
block the trio loop (sync drivers run in worker threads). Conformance is checked by
the contract suites in :mod:`wfe.core.testing`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

import attrs

from ._errors import ConfigurationError
from ._lifecycle import LifecycleEvent
from ._models import (
    Event,
    EventSubscription,
    ExecutionError,
    ExecutionPointer,
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


@attrs.frozen(kw_only=True)
class Checkpoint:
    """Everything one pass of one instance changed, stored as one fenced unit.

    ``instance`` is the instance row as it is now (status, data, ``next_execution``,
    completion time: completion is decided before the write, so the last step's result
    and COMPLETE arrive together). ``pointers`` are the new or changed pointers only;
    pointers not listed are untouched. ``events`` are new events the pass publishes (a
    finished child's notice to its parent), stored in the same transaction so no crash
    can separate them from the state that implies them.

    Queue items are not part of it: they are hints. Everything a queue item would say
    is derivable from what the checkpoint stores (a due ``next_execution``, an
    unprocessed event an open subscription accepts), and the runnable poller finds it.
    """

    instance: WorkflowInstance
    pointers: Sequence[ExecutionPointer] = ()
    opened_subscriptions: Sequence[EventSubscription] = ()
    closed_subscriptions: Sequence[str] = ()
    processed_events: Sequence[str] = ()
    errors: Sequence[ExecutionError] = ()
    events: Sequence[Event] = ()
    fencing_token: int | None = None
    data_json: str | None = None
    """``instance.data`` already serialised by :func:`wfe.core.serialization.dumps`, when
    the executor has it at hand (it checks every step's data is storable): a store may
    write it instead of serialising the data again. ``None``: serialise ``instance.data``."""
    found_pending: dict[str, str] | None = None
    """Filled by a store that finds pending events in its checkpoints
    (:class:`PendingInCheckpoints`): for each subscription in ``opened_subscriptions``
    that an event already stored takes, the subscription's id and the first such event's
    id, as found in the checkpoint's own transaction. ``None``: nobody asked."""


@attrs.frozen(kw_only=True)
class EventDelivery:
    """Hand ``event_id`` to the pointer waiting on ``subscription_id``, as one write.

    The store, in one transaction and fenced by ``fencing_token`` (the lease on the
    subscriber's workflow): gives the pointer the event's data (``event_published``,
    status PENDING, active), closes the subscription, makes a RUNNABLE instance due at
    ``time``, and, when ``mark_processed``, flags the event as delivered. Only the one
    pointer row is read: no history is loaded.
    """

    event_id: str
    subscription_id: str
    workflow_id: str
    pointer_id: str
    time: datetime
    mark_processed: bool = True
    fencing_token: int | None = None


@runtime_checkable
class PersistenceProvider(AsyncProvider, Protocol):
    """The store of record for workflows, events, subscriptions and errors.

    Guarantees:

    - Every write is atomic: after a failure (or cancellation) either all of a call's
      changes are stored or none are.
    - Returned objects are copies: mutating them changes nothing until persisted.
    - Execution pointers come back in their stored order (``sequence``), so a scope's
      order is kept.
    - **Fencing.** Each instance keeps the highest fencing token that claimed it.
      :meth:`claim_workflow` raises it to the new holder's token in the same
      transaction that reads the instance, so from the moment a new holder has the
      instance in hand every write carrying an older token is refused with
      :class:`StaleLeaseError`, before the new holder has written anything, whichever
      lock provider issued the tokens. A write that reaches the store before the claim
      is ordered before it, and the new holder reads it. Writes without a token
      (``None``) are not fenced (single-process tools).
    - A provider may commit several concurrent calls' checkpoints in one transaction
      (group commit), as long as each is stored or refused as a whole.
    """

    async def ensure_store_exists(self) -> None:
        """Create tables/indexes if missing; safe to call any number of times."""
        ...

    async def create_workflow(self, instance: WorkflowInstance) -> str:
        """Store a new instance with all its pointers; returns its id."""
        ...

    async def get_workflow(
        self, workflow_id: str, *, with_pointers: bool = True
    ) -> WorkflowInstance:
        """The instance, with its pointers unless ``with_pointers`` is false (then the
        read costs the same however long its history); :class:`WorkflowNotFoundError`
        if absent."""
        ...

    async def claim_workflow(self, workflow_id: str, fencing_token: int) -> WorkflowInstance:
        """Record ``fencing_token`` as the instance's current holder and return the
        instance with its pointers, in one transaction. Refused with
        :class:`StaleLeaseError` when a newer token already claimed it."""
        ...

    async def persist_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store everything in ``checkpoint`` in one transaction, or nothing: refused
        as a whole with :class:`StaleLeaseError` under a stale fencing token,
        :class:`WorkflowNotFoundError` when the instance was never created.

        The checkpoint's instance and pointers are the engine's own objects, which it
        goes on changing while the call runs (other steps, the next checkpoint): what
        is stored is their state when the call is made, so a provider reads (or
        copies) them before its first ``await``."""
        ...

    async def deliver_event(self, delivery: EventDelivery) -> bool:
        """Apply ``delivery`` (see :class:`EventDelivery`) in one fenced transaction.
        Returns ``False`` and changes nothing when the subscription is closed, the
        pointer no longer waits, or the event is already processed — except that a
        fencing token that passed the fence is recorded (as by any fenced write): a lease
        that new exists, so older holders are refused from then on."""
        ...

    async def get_runnable_instances(self, as_of: datetime, limit: int = 1000) -> list[str]:
        """Ids of RUNNABLE instances whose ``next_execution`` is at or before ``as_of``,
        earliest first, at most ``limit``. Also lists RUNNABLE instances that nothing
        would ever pick up (no ``next_execution`` and no open subscription), so the
        engine repairs them instead of leaving them stranded."""
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

    async def get_runnable_events(self, as_of: datetime, limit: int = 1000) -> list[str]:
        """Ids of unprocessed events with time at or before ``as_of`` that an open
        subscription would accept (same name and key, ``sub.as_of <= event.time``),
        earliest first, at most ``limit``. Events nobody can take yet are not listed
        (they stay pending)."""
        ...

    async def get_pending_events(
        self, event_name: str, event_key: str, as_of: datetime, limit: int = 1000
    ) -> list[Event]:
        """Unprocessed events with this name and key and time at or after ``as_of``,
        earliest first, at most ``limit``."""
        ...

    async def get_subscriptions(
        self, event_name: str, event_key: str, as_of: datetime
    ) -> list[EventSubscription]:
        """Open subscriptions with this name and key whose ``as_of`` is at or before
        ``as_of``, oldest first."""
        ...

    async def get_errors(self, workflow_id: str) -> list[ExecutionError]:
        """Errors recorded for a workflow, oldest first."""
        ...

    # -- retention ----------------------------------------------------------------------

    async def purge_workflows(
        self, before: datetime, statuses: Sequence[WorkflowStatus], limit: int = 1000
    ) -> list[str]:
        """Delete at most ``limit`` instances that ended before ``before``, with their
        pointers, subscriptions and errors, in one transaction; return their ids. An
        unprocessed child notice keyed by one of them (``CHILD_FINISHED_EVENT``, stored
        with a child's end for a parent that never came to wait) goes too.

        "Ended" is the complete time (a suspended instance: its create time). Only
        instances whose status is one of ``statuses`` go, checked in the delete
        itself, so one resumed meanwhile stays. ``statuses`` naming RUNNABLE is
        refused (:func:`check_purge_statuses`): running workflows are never touched.
        """
        ...

    async def count_purgeable(self, before: datetime, statuses: Sequence[WorkflowStatus]) -> int:
        """How many instances :meth:`purge_workflows` would delete (a dry run)."""
        ...

    async def purge_events(self, before: datetime, limit: int = 1000) -> int:
        """Delete at most ``limit`` processed events whose time is before ``before``;
        return how many. Unprocessed events stay, however old."""
        ...


def check_purge_statuses(statuses: Sequence[WorkflowStatus]) -> tuple[WorkflowStatus, ...]:
    """``statuses`` as a tuple, or a ConfigurationError if empty or naming RUNNABLE."""
    chosen = tuple(WorkflowStatus(s) for s in statuses)
    if not chosen or WorkflowStatus.RUNNABLE in chosen:
        raise ConfigurationError(
            "purge takes COMPLETE, TERMINATED or SUSPENDED instances, never RUNNABLE ones "
            f"(got {', '.join(s.value for s in chosen) or 'none'})"
        )
    return chosen


@runtime_checkable
class BatchPersistence(PersistenceProvider, Protocol):
    """Optional capability of a :class:`PersistenceProvider`: read several instances
    in one call. The host's index consumer reads a batch of changed instances with it
    (one round trip instead of one per instance)."""

    async def get_workflows(
        self, workflow_ids: Sequence[str], *, with_pointers: bool = True
    ) -> list[WorkflowInstance]:
        """The instances of ``workflow_ids`` that exist, in that order (an id listed
        twice comes back once, an unknown one not at all), read in one snapshot; with
        their pointers unless ``with_pointers`` is false."""
        ...


@runtime_checkable
class LeasingPersistence(PersistenceProvider, Protocol):
    """Optional capability of a :class:`PersistenceProvider` whose store also keeps the
    leases of a lock provider (its own companion, say): create an instance, or an
    event, and take a lease in the same write. The host starts a workflow it will run
    at once, and publishes an event it will deliver at once, this way (one write, one
    round trip, instead of an acquire and then a create)."""

    def keeps_leases_of(self, locks: DistributedLockProvider) -> bool:
        """Whether :meth:`create_workflow_leased` can take leases of ``locks`` (its
        leases live in this provider's store, in the same transactions)."""
        ...

    async def create_workflow_leased(
        self,
        instance: WorkflowInstance,
        locks: DistributedLockProvider,
        resource: str,
        ttl: timedelta,
    ) -> Lease | None:
        """Store ``instance`` as :meth:`create_workflow` does and, in the same atomic
        write, take a lease on ``resource`` for ``ttl`` exactly as ``locks.acquire``
        would (renewed and released through ``locks``); ``None`` when a live lease
        holds ``resource`` (the instance is stored all the same). When the instance
        cannot be stored, neither is the lease. Only for a ``locks`` of which
        :meth:`keeps_leases_of` is true."""
        ...

    async def create_event_leased(
        self,
        event: Event,
        locks: DistributedLockProvider,
        resource: str,
        ttl: timedelta,
    ) -> Lease | None:
        """Store ``event`` as :meth:`create_event` does and, in the same atomic write,
        take a lease on ``resource`` as :meth:`create_workflow_leased` does."""
        ...


@runtime_checkable
class IndexingPersistence(PersistenceProvider, Protocol):
    """Optional capability of a :class:`PersistenceProvider` whose store also holds a
    search index (its own companion, say): the checkpoint that ends a workflow also
    writes the workflow's search document, in the same atomic write. The host then
    asks for no index work after a run that ended its workflow (a queue item, its
    dequeue and ack, a read and an index write less per finished workflow), and a
    finished workflow is searchable as soon as its end is stored."""

    def index_ended_in_checkpoints(self, search: SearchIndex) -> bool:
        """If ``search`` keeps its documents in this store: from now on, write the
        document of every workflow a checkpoint ends (status COMPLETE or TERMINATED),
        as ``search.index`` would, in that checkpoint's write, and return ``True``.
        Else change nothing and return ``False``. Either way ``search`` must never let
        a document of a workflow still running replace the document of its end (an
        index write of an older read, arriving late)."""
        ...


@runtime_checkable
class ClaimingDelivery(PersistenceProvider, Protocol):
    """Optional capability of a :class:`PersistenceProvider`: deliver an event and
    claim the instance that received it in one transaction. The host runs a workflow
    woken by an event this way (one write instead of a delivery and then a claim)."""

    async def deliver_event_claiming(self, delivery: EventDelivery) -> WorkflowInstance | None:
        """Apply ``delivery`` as :meth:`~PersistenceProvider.deliver_event` does (its
        ``fencing_token`` must be set) and, when it delivered, return the instance as
        :meth:`~PersistenceProvider.claim_workflow` would for that token, read in the
        same transaction after the delivery: the fence the delivery raised is the
        claim. ``None`` when nothing was delivered (the fence is raised all the same)."""
        ...


@runtime_checkable
class PendingSubscriptions(PersistenceProvider, Protocol):
    """Optional capability of a :class:`PersistenceProvider`: the subscriptions an
    event goes to, each with the earliest pending event it takes first, in one read.
    The host delivers an event this way (one read instead of one per subscription
    more)."""

    async def get_subscriptions_with_pending(
        self, event_name: str, event_key: str, as_of: datetime
    ) -> list[tuple[EventSubscription, str | None]]:
        """What :meth:`~PersistenceProvider.get_subscriptions` returns, in that order,
        each subscription with the id of the first event that
        ``get_pending_events(event_name, event_key, subscription.as_of, 1)`` would
        return (``None``: none), read in one snapshot."""
        ...


@runtime_checkable
class PendingInCheckpoints(PersistenceProvider, Protocol):
    """Optional capability of a :class:`PersistenceProvider` whose write transactions
    run one at a time (SQLite's hold the whole file): no other write can commit between
    a read inside a checkpoint's transaction and that checkpoint's commit. A checkpoint
    that opens subscriptions then also finds the events already pending for them, and
    the host reads nothing after storing a wait (one read less per wait opened). No
    event is missed: one committed before the checkpoint is found by it, and one
    committed after it finds the new subscription when it is delivered."""

    def finds_pending_in_checkpoints(self) -> bool:
        """Whether every checkpoint stored from now on whose ``found_pending`` is a dict
        gets it filled: for each subscription the checkpoint opens, the id of the first
        event ``get_pending_events(name, key, as_of, 1)`` returns in the checkpoint's
        transaction once everything else in it is written (no entry when there is none)."""
        ...


@runtime_checkable
class LeasingDelivery(LeasingPersistence, ClaimingDelivery, Protocol):
    """Optional capability of a store that is both a :class:`LeasingPersistence` and a
    :class:`ClaimingDelivery`: take the workflow's lease, deliver the event and claim
    the instance in one write. The host delivers an event to a workflow it will run at
    once this way (one durable write instead of an acquire and then the delivery)."""

    async def deliver_event_leased(
        self,
        delivery: EventDelivery,
        locks: DistributedLockProvider,
        resource: str,
        ttl: timedelta,
        *,
        release: Lease | None = None,
    ) -> tuple[Lease | None, WorkflowInstance | None]:
        """In one atomic write, take a lease on ``resource`` for ``ttl`` exactly as
        ``locks.acquire`` would and, under its fencing token (``delivery``'s own is
        ignored), apply ``delivery`` as :meth:`ClaimingDelivery.deliver_event_claiming`
        does. ``(None, None)`` when a live lease holds ``resource``: then nothing is
        written. Else the lease (the caller renews and releases it through ``locks``)
        and the claimed instance, or ``None`` when there was nothing to deliver (the
        lease is taken and the fence raised all the same). When the delivery is
        refused, neither is the lease taken. ``release``: another lease of ``locks``
        (the event's own, say) given up as ``locks.release`` would, in the same write,
        exactly when an instance is returned (else the caller still holds it). Only
        for a ``locks`` of which :meth:`~LeasingPersistence.keeps_leases_of` is true."""
        ...


@runtime_checkable
class ReleasingCheckpoint(LeasingPersistence, Protocol):
    """Optional capability of a :class:`LeasingPersistence`: store a checkpoint and give
    a lease up in one write. The host writes the last checkpoint of a pass this way
    (the one after which the run takes no more input and starts no more steps): one
    write instead of the checkpoint and then the release."""

    async def persist_checkpoint_releasing(
        self, checkpoint: Checkpoint, locks: DistributedLockProvider, lease: Lease
    ) -> None:
        """Store ``checkpoint`` as :meth:`~PersistenceProvider.persist_checkpoint`
        does and, in the same atomic write, give ``lease`` up as ``locks.release``
        would. When the checkpoint is refused (its fencing token is stale, say) or
        fails, the lease is not given up by it. Only for a ``locks`` of which
        :meth:`~LeasingPersistence.keeps_leases_of` is true.

        A store that writes documents in checkpoints
        (:meth:`IndexingPersistence.index_ended_in_checkpoints` returned true) also
        writes the instance's search document here, whatever its status: the host
        indexes a workflow when its pass ends, and then asks for no index work."""
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

    async def enqueue_many(self, kind: QueueKind, item_ids: Sequence[str]) -> None:
        """Enqueue several ids of one kind in one round trip (the poller's batches)."""
        ...

    async def dequeue(self, kind: QueueKind, timeout: float) -> QueueItem | None: ...

    async def ack(self, item: QueueItem) -> None: ...


@runtime_checkable
class BatchQueue(QueueProvider, Protocol):
    """Optional capability of a :class:`QueueProvider`: take and acknowledge several
    items of a kind at once.

    When the queue has it, the host's index consumer takes every pending index item
    (up to a batch) in one call and acknowledges them in one, instead of one round
    trip per item."""

    async def dequeue_many(self, kind: QueueKind, limit: int, timeout: float) -> list[QueueItem]:
        """Up to ``limit`` visible items of ``kind``, oldest first, waiting up to
        ``timeout`` seconds for the first; empty when none came. Cancelling it loses
        no item."""
        ...

    async def ack_many(self, items: Sequence[QueueItem]) -> None:
        """:meth:`QueueProvider.ack` of every item, in one round trip."""
        ...


@attrs.frozen
class DataFilter:
    """Match instances whose data holds ``value`` at ``field``.

    ``field`` is a dotted path through mappings and attrs fields
    (``"customer.name"``); a list matches when one of its items does. Values compare
    with their type: numbers by value (``3`` matches ``3.0``), but ``3``, ``"3"`` and
    ``True`` never match one another. Indexes compare the tokens of
    :func:`wfe.core.serialization.search_fields`, so every store agrees.
    """

    field: str
    value: Any


def _data_filters(value: Any) -> tuple[DataFilter, ...]:
    """Data filters from one filter, several, or a mapping of field to value."""
    if isinstance(value, DataFilter):
        return (value,)
    if isinstance(value, Mapping):
        return tuple(DataFilter(str(k), v) for k, v in value.items())
    filters = tuple(value)
    for f in filters:
        if not isinstance(f, DataFilter):
            raise TypeError(f"data filters must be DataFilter objects, got {f!r}")
    return filters


@attrs.frozen(kw_only=True)
class SearchFilters:
    """Narrow a search; every set field must match (and every data filter)."""

    status: WorkflowStatus | None = None
    definition_id: str | None = None
    version: int | None = None
    reference: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    completed_from: datetime | None = None
    completed_to: datetime | None = None
    data: tuple[DataFilter, ...] = attrs.field(default=(), converter=_data_filters)


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

    async def remove(self, workflow_ids: Sequence[str]) -> None:
        """Drop the entries of ``workflow_ids`` (unknown ids are ignored)."""
        ...

    async def search(
        self,
        terms: str,
        filters: SearchFilters | None = None,
        skip: int = 0,
        take: int = 100,
    ) -> Page: ...


@runtime_checkable
class BulkSearchIndex(SearchIndex, Protocol):
    """Optional capability of a :class:`SearchIndex`: index several instances at once.

    When the index has it, the host's index consumer takes every pending index item
    (up to a batch) and hands their instances over in one call, so a remote index
    gets one bulk request instead of one request per change. Returns once all are
    stored; the last of several entries for one id wins."""

    async def index_many(self, instances: Sequence[WorkflowInstance]) -> None: ...


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


@runtime_checkable
class WorkflowChangeFeed(Protocol):
    """Optional capability of any provider: wake-ups from changes made by other processes.

    A host starts :meth:`watch_workflows` for each of its providers that has it
    (persistence, locks, queues, search index, publishers), so that
    ``wait_for_workflow`` learns within milliseconds that an instance running on
    another host has stopped being RUNNABLE, instead of finding out by polling.
    """

    async def watch_workflows(self, changed: Callable[[str], None]) -> None:
        """Run until cancelled, calling ``changed(workflow_id)`` soon after any process
        stores a new status for that workflow.

        Calls may be repeated or spurious (the host re-reads before it trusts one).
        While disconnected a feed reconnects by itself and may miss changes: the host
        still polls, more slowly, so a missed call only costs latency.
        """
        ...


@attrs.frozen(kw_only=True)
class StepLogLine:
    """One line a step wrote (shell stdout/stderr, Deno ``console.log``/``Wfe.log``,
    ``ctx.log``), already masked of secrets. ``seq`` is assigned by the store."""

    workflow_id: str
    pointer_id: str
    step_name: str
    attempt: int
    stream: str
    line: str
    time: datetime
    seq: int = 0


@runtime_checkable
class StepLogStore(Protocol):
    """Optional capability of a persistence provider: it keeps step output lines, so
    ``wfe logs`` works from any machine that reaches the store. A host whose store has
    it writes every step's lines there, in batches (bounded per step attempt)."""

    async def append_step_logs(self, lines: Sequence[StepLogLine]) -> None:
        """Store ``lines`` (of any workflows) in one transaction, giving each a ``seq``
        greater than that of every line stored before (order of ``lines`` kept).
        Not fenced: logs are an account of what ran, written after the fact."""
        ...

    async def read_step_logs(
        self,
        workflow_id: str,
        *,
        step: str | None = None,
        after: int = 0,
        limit: int = 1000,
    ) -> list[StepLogLine]:
        """Lines of ``workflow_id`` with ``seq > after``, in ``seq`` order, at most
        ``limit``; only those of ``step_name == step`` when ``step`` is given. A
        workflow without lines (or unknown) gives ``[]``."""
        ...


__all__ = [
    "AsyncProvider",
    "BatchPersistence",
    "BatchQueue",
    "BulkSearchIndex",
    "Checkpoint",
    "ClaimingDelivery",
    "DataFilter",
    "DistributedLockProvider",
    "EventDelivery",
    "IndexingPersistence",
    "Lease",
    "LeasingDelivery",
    "LeasingPersistence",
    "LifecycleEventPublisher",
    "Page",
    "PendingInCheckpoints",
    "PendingSubscriptions",
    "PersistenceProvider",
    "ProvidesCompanions",
    "QueueItem",
    "QueueKind",
    "QueueProvider",
    "ReleasingCheckpoint",
    "SearchFilters",
    "SearchIndex",
    "SearchResult",
    "StepLogLine",
    "StepLogStore",
    "WorkflowChangeFeed",
    "check_purge_statuses",
]
