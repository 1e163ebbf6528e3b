"""The in-memory store of record: complete, copy-safe, for tests and single-process use."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import attrs
import trio

from .._errors import ProviderError, StaleLeaseError, WorkflowNotFoundError
from .._models import (
    Event,
    EventSubscription,
    ExecutionError,
    WorkflowInstance,
    WorkflowStatus,
    as_utc,
)
from ..primitives import CHILD_FINISHED_EVENT
from ..protocols import Checkpoint, EventDelivery, StepLogLine, check_purge_statuses
from ..serialization import loads
from ._locks import LockTable, MemoryLockProvider
from ._queue import MemoryQueueProvider, QueueState
from ._records import StoredEvent, StoredInstance, StoredPointer, instance_row
from ._search import MemorySearchIndex, SearchState


class MemoryPersistenceProvider:
    """A :class:`~wfe.core.protocols.PersistenceProvider` that keeps everything in memory.

    Values are stored as JSON text (see :mod:`wfe.core.serialization`), so returned
    objects never alias stored ones and unstorable data is refused when written. Its
    companions (:meth:`default_locks`, :meth:`default_queues`, :meth:`default_search`)
    share this provider's state, so several hosts given the same object coordinate as
    they would through a shared database. ``visibility_timeout`` (seconds) is that of
    the companion queue.
    """

    def __init__(self, *, visibility_timeout: float = 30.0) -> None:
        self._instances: dict[str, StoredInstance] = {}
        self._events: dict[str, StoredEvent] = {}
        self._unprocessed: dict[str, None] = {}  # ordered set of unprocessed event ids
        self._subscriptions: dict[str, EventSubscription] = {}
        self._subscription_order: dict[str, int] = {}
        self._errors: dict[str, list[ExecutionError]] = {}
        self._counter = itertools.count()
        self._lock_table = LockTable()
        self._queue_state = QueueState(visibility_timeout=visibility_timeout)
        self._search_state = SearchState()
        self._step_logs: dict[str, list[StepLogLine]] = {}
        self._log_seq = itertools.count(1)

    @classmethod
    def from_url(cls, url: str = "memory://", **options: Any) -> MemoryPersistenceProvider:
        """Entry-point factory for the ``memory`` scheme (the URL carries nothing)."""
        return cls(**options)

    async def __aenter__(self) -> Self:
        await self.ensure_store_exists()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await trio.lowlevel.checkpoint()

    # -- companions ------------------------------------------------------------------

    def default_locks(self) -> MemoryLockProvider:
        """A lock provider (with its own owner id) over this store's lock table."""
        return MemoryLockProvider.sharing(self._lock_table)

    def default_queues(self) -> MemoryQueueProvider:
        """A queue provider over this store's queues."""
        return MemoryQueueProvider.sharing(self._queue_state)

    def default_search(self) -> MemorySearchIndex:
        """A search index over this store's index."""
        return MemorySearchIndex.sharing(self._search_state)

    # -- workflows -------------------------------------------------------------------

    async def ensure_store_exists(self) -> None:
        """Nothing to create in memory; safe to call any number of times."""
        await trio.lowlevel.checkpoint()

    async def create_workflow(self, instance: WorkflowInstance) -> str:
        """Store a new instance with all its pointers; returns its id."""
        # Taken before the first await (see persist_checkpoint).
        row, data = instance_row(instance)
        pointers = [(p.id, StoredPointer.from_pointer(p, 0)) for p in instance.execution_pointers]
        await trio.lowlevel.checkpoint()
        if instance.id in self._instances:
            raise ProviderError(f"workflow {instance.id!r} already exists")
        stored = StoredInstance(row=row, data=data)
        stored.pointers = self._placed(stored, pointers)
        self._instances[instance.id] = stored
        return instance.id

    def _fenced(self, workflow_id: str, token: int | None) -> StoredInstance:
        """The stored instance, if a write with ``token`` may change it."""
        stored = self._instances.get(workflow_id)
        if stored is None:
            raise WorkflowNotFoundError(f"no workflow instance with id {workflow_id!r}")
        highest = stored.fencing_token
        if token is not None and highest is not None and token < highest:
            raise StaleLeaseError(
                f"write to workflow {workflow_id!r} refused: fencing token "
                f"{token} is older than {highest} (the lease passed to another holder)"
            )
        return stored

    @staticmethod
    def _raise_fence(stored: StoredInstance, token: int | None) -> None:
        if token is not None:
            stored.fencing_token = max(token, stored.fencing_token or token)

    async def claim_workflow(self, workflow_id: str, fencing_token: int) -> WorkflowInstance:
        """Record ``fencing_token`` as the holder and return the instance with pointers."""
        await trio.lowlevel.checkpoint()
        stored = self._fenced(workflow_id, fencing_token)
        self._raise_fence(stored, fencing_token)
        return stored.to_instance()

    async def persist_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store the checkpoint as a whole, or nothing (stale token, unstorable data)."""
        # The instance and pointers are the engine's own, still changing while this
        # runs (other steps, the next checkpoint's changes): taken before the first
        # await, as the SQL stores take their statement's parameters. Taken after it,
        # a checkpoint stored the instance's newer status with its older pointers.
        # Everything that can fail (serialisation) happens before any change is made.
        instance = checkpoint.instance
        row, data = instance_row(instance)
        pointers = [(p.id, StoredPointer.from_pointer(p, 0)) for p in checkpoint.pointers]
        subs = [attrs.evolve(s) for s in checkpoint.opened_subscriptions]
        events = [StoredEvent.from_event(e) for e in checkpoint.events]
        await trio.lowlevel.checkpoint()
        stored = self._fenced(instance.id, checkpoint.fencing_token)
        for e in events:
            if e.event.id in self._events:
                raise ProviderError(f"event {e.event.id!r} already exists")
        stored.row = row
        stored.data = data
        stored.pointers.update(self._placed(stored, pointers))
        self._raise_fence(stored, checkpoint.fencing_token)
        for sub in subs:
            self._add_subscription(sub)
        for sub_id in checkpoint.closed_subscriptions:
            self._close_subscription(sub_id)
        for event_id in checkpoint.processed_events:
            self._mark_processed(event_id)
        for error in checkpoint.errors:
            self._errors.setdefault(error.workflow_id, []).append(error)
        for e in events:
            self._add_event(e)

    async def deliver_event(self, delivery: EventDelivery) -> bool:
        """Give the event to the waiting pointer, close the subscription, mark the event."""
        await trio.lowlevel.checkpoint()
        stored = self._fenced(delivery.workflow_id, delivery.fencing_token)
        # The token passed the fence: a lease this new exists, so older holders are out
        # whether or not the delivery changes anything (as the SQL stores do, in the
        # statement that checks the fence).
        self._raise_fence(stored, delivery.fencing_token)
        sub = self._subscriptions.get(delivery.subscription_id)
        event = self._events.get(delivery.event_id)
        old = stored.pointers.get(delivery.pointer_id)
        if sub is None or sub.terminated or event is None or event.event.processed:
            return False
        if old is None:
            return False
        pointer = old.to_pointer()
        if not pointer.awaits_event():
            return False
        pointer.receive_event(loads(event.data, "event.data"))
        stored.pointers[pointer.id] = StoredPointer.from_pointer(pointer, old.insertion)
        if stored.row.status is WorkflowStatus.RUNNABLE:
            stored.row = attrs.evolve(stored.row, next_execution=delivery.time)
        self._close_subscription(sub.id)
        if delivery.mark_processed:
            self._mark_processed(event.event.id)
        return True

    def _placed(
        self, stored: StoredInstance, pointers: list[tuple[str, StoredPointer]]
    ) -> dict[str, StoredPointer]:
        """``pointers`` with their insertion order: a stored pointer keeps its own."""
        out: dict[str, StoredPointer] = {}
        for pid, p in pointers:
            old = stored.pointers.get(pid) or out.get(pid)
            insertion = old.insertion if old is not None else next(self._counter)
            out[pid] = attrs.evolve(p, insertion=insertion)
        return out

    async def get_workflow(
        self, workflow_id: str, *, with_pointers: bool = True
    ) -> WorkflowInstance:
        """The instance (with its pointers in stored order unless ``with_pointers`` is false)."""
        await trio.lowlevel.checkpoint()
        stored = self._instances.get(workflow_id)
        if stored is None:
            raise WorkflowNotFoundError(f"no workflow instance with id {workflow_id!r}")
        return stored.to_instance(with_pointers=with_pointers)

    async def get_workflows(
        self, workflow_ids: Sequence[str], *, with_pointers: bool = True
    ) -> list[WorkflowInstance]:
        """The instances of ``workflow_ids`` that exist, in that order, each once."""
        await trio.lowlevel.checkpoint()
        found = (self._instances.get(wid) for wid in dict.fromkeys(workflow_ids))
        return [s.to_instance(with_pointers=with_pointers) for s in found if s is not None]

    async def get_runnable_instances(self, as_of: datetime, limit: int = 1000) -> list[str]:
        """Ids of RUNNABLE instances due at ``as_of``, earliest due first, then those
        nothing would pick up (no wake time, no open subscription)."""
        await trio.lowlevel.checkpoint()
        runnable = [
            s.row for s in self._instances.values() if s.row.status is WorkflowStatus.RUNNABLE
        ]
        due = [r for r in runnable if r.next_execution is not None and r.next_execution <= as_of]
        due.sort(key=lambda r: r.next_execution or as_of)
        waiting = {s.workflow_id for s in self._subscriptions.values() if not s.terminated}
        stranded = [r for r in runnable if r.next_execution is None and r.id not in waiting]
        return [r.id for r in [*due, *stranded][:limit]]

    async def list_workflows(
        self,
        *,
        status: WorkflowStatus | None = None,
        definition_id: str | None = None,
        skip: int = 0,
        take: int = 100,
    ) -> list[WorkflowInstance]:
        """Instances filtered by status/definition, newest first, without pointers."""
        await trio.lowlevel.checkpoint()
        rows = [
            s
            for s in self._instances.values()
            if (status is None or s.row.status == status)
            and (definition_id is None or s.row.definition_id == definition_id)
        ]
        rows.reverse()  # equal create times: most recently stored first
        rows.sort(key=lambda s: s.row.create_time, reverse=True)
        return [s.to_instance(with_pointers=False) for s in rows[skip : skip + take]]

    # -- events ----------------------------------------------------------------------

    def _add_event(self, stored: StoredEvent) -> None:
        self._events[stored.event.id] = stored
        if not stored.event.processed:
            self._unprocessed[stored.event.id] = None

    async def create_event(self, event: Event) -> str:
        """Store a new event; returns its id."""
        await trio.lowlevel.checkpoint()
        if event.id in self._events:
            raise ProviderError(f"event {event.id!r} already exists")
        self._add_event(StoredEvent.from_event(event))
        return event.id

    async def get_event(self, event_id: str) -> Event:
        """The event; :class:`ProviderError` if absent."""
        await trio.lowlevel.checkpoint()
        stored = self._events.get(event_id)
        if stored is None:
            raise ProviderError(f"no event with id {event_id!r}")
        return stored.to_event()

    async def get_runnable_events(self, as_of: datetime, limit: int = 1000) -> list[str]:
        """Unprocessed due events that an open subscription would accept, earliest first."""
        await trio.lowlevel.checkpoint()
        open_subs: dict[tuple[str, str], datetime] = {}
        for sub in self._subscriptions.values():
            if not sub.terminated:
                k = (sub.event_name, sub.event_key)
                open_subs[k] = min(sub.as_of, open_subs.get(k, sub.as_of))
        found = []
        for event_id in self._unprocessed:
            e = self._events[event_id].event
            earliest = open_subs.get((e.name, e.key))
            if e.time <= as_of and earliest is not None and earliest <= e.time:
                found.append(e)
        found.sort(key=lambda e: e.time)
        return [e.id for e in found[:limit]]

    async def get_pending_events(
        self, event_name: str, event_key: str, as_of: datetime, limit: int = 1000
    ) -> list[Event]:
        """Unprocessed events with this name and key at or after ``as_of``, earliest first."""
        await trio.lowlevel.checkpoint()
        found = [
            self._events[i]
            for i in self._unprocessed
            if self._events[i].event.name == event_name
            and self._events[i].event.key == event_key
            and self._events[i].event.time >= as_of
        ]
        found.sort(key=lambda s: s.event.time)
        return [s.to_event() for s in found[:limit]]

    def _mark_processed(self, event_id: str) -> None:
        stored = self._events.get(event_id)
        if stored is not None:
            self._events[event_id] = attrs.evolve(
                stored, event=attrs.evolve(stored.event, processed=True)
            )
            self._unprocessed.pop(event_id, None)

    # -- subscriptions ---------------------------------------------------------------

    def _add_subscription(self, sub: EventSubscription) -> None:
        if sub.id not in self._subscription_order:
            self._subscription_order[sub.id] = next(self._counter)
        self._subscriptions[sub.id] = sub

    async def get_subscriptions(
        self, event_name: str, event_key: str, as_of: datetime
    ) -> list[EventSubscription]:
        """Open subscriptions with this name and key from ``as_of`` or earlier, oldest first."""
        await trio.lowlevel.checkpoint()
        found = [
            s
            for s in self._subscriptions.values()
            if not s.terminated
            and s.event_name == event_name
            and s.event_key == event_key
            and s.as_of <= as_of
        ]
        found.sort(key=lambda s: (s.as_of, self._subscription_order[s.id]))
        return [attrs.evolve(s) for s in found]

    def _close_subscription(self, subscription_id: str) -> None:
        sub = self._subscriptions.get(subscription_id)
        if sub is not None:
            self._subscriptions[subscription_id] = attrs.evolve(sub, terminated=True)

    # -- errors and commands ---------------------------------------------------------

    async def get_errors(self, workflow_id: str) -> list[ExecutionError]:
        """Errors recorded for a workflow, oldest first."""
        await trio.lowlevel.checkpoint()
        return sorted(self._errors.get(workflow_id, []), key=lambda e: e.time)

    # -- retention ----------------------------------------------------------------------

    def _purgeable(self, before: datetime, statuses: Sequence[WorkflowStatus]) -> list[str]:
        chosen = check_purge_statuses(statuses)
        cutoff = as_utc(before)
        found: list[tuple[datetime, str]] = []
        for workflow_id, stored in self._instances.items():
            row = stored.row
            ended = row.complete_time or row.create_time
            if row.status in chosen and as_utc(ended) < cutoff:
                found.append((as_utc(ended), workflow_id))
        return [workflow_id for _, workflow_id in sorted(found)]

    async def purge_workflows(
        self, before: datetime, statuses: Sequence[WorkflowStatus], limit: int = 1000
    ) -> list[str]:
        """Delete up to ``limit`` ended instances with everything that is theirs."""
        await trio.lowlevel.checkpoint()
        doomed = self._purgeable(before, statuses)[: max(limit, 0)]
        gone = set(doomed)
        for workflow_id in doomed:
            del self._instances[workflow_id]
            self._errors.pop(workflow_id, None)
            self._step_logs.pop(workflow_id, None)
        for sub_id in [k for k, v in self._subscriptions.items() if v.workflow_id in gone]:
            del self._subscriptions[sub_id]
            self._subscription_order.pop(sub_id, None)
        # A child's notice to its parent never taken goes with the child.
        for event_id in [
            k
            for k, stored in self._events.items()
            if (e := stored.event).name == CHILD_FINISHED_EVENT
            and e.key in gone
            and not e.processed
        ]:
            del self._events[event_id]
        return doomed

    async def count_purgeable(self, before: datetime, statuses: Sequence[WorkflowStatus]) -> int:
        """How many instances :meth:`purge_workflows` would delete."""
        await trio.lowlevel.checkpoint()
        return len(self._purgeable(before, statuses))

    async def purge_events(self, before: datetime, limit: int = 1000) -> int:
        """Delete up to ``limit`` processed events older than ``before``."""
        await trio.lowlevel.checkpoint()
        cutoff = as_utc(before)
        old = sorted(
            (as_utc(e.event.time), event_id)
            for event_id, e in self._events.items()
            if e.event.processed and as_utc(e.event.time) < cutoff
        )[: max(limit, 0)]
        for _, event_id in old:
            del self._events[event_id]
        return len(old)

    # -- step logs (the optional StepLogStore capability) ---------------------------

    async def append_step_logs(self, lines: Sequence[StepLogLine]) -> None:
        """Keep step output lines, numbered in order (see :class:`StepLogStore`)."""
        await trio.lowlevel.checkpoint()
        for line in lines:
            stored = attrs.evolve(line, seq=next(self._log_seq))
            self._step_logs.setdefault(line.workflow_id, []).append(stored)

    async def read_step_logs(
        self,
        workflow_id: str,
        *,
        step: str | None = None,
        after: int = 0,
        limit: int = 1000,
    ) -> list[StepLogLine]:
        """A page of a workflow's step lines after ``after``."""
        await trio.lowlevel.checkpoint()
        found = [
            x
            for x in self._step_logs.get(workflow_id, [])
            if x.seq > after and (step is None or x.step_name == step)
        ]
        return found[: max(0, limit)]
