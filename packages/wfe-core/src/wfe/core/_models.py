"""Persistent state of workflows: instances, execution pointers, events, subscriptions."""

from __future__ import annotations

import enum
import os
import threading
from datetime import UTC, datetime
from typing import Any

import attrs


class _Random(threading.local):
    """Random bytes of the operating system, taken a page at a time: one system call
    (which also hands the GIL over) per 256 identifiers, not one per identifier."""

    def __init__(self) -> None:
        self.pool = b""
        self.at = 0


_random = _Random()


def _forget_random() -> None:
    # A forked child must not hand out the identifiers its parent will.
    global _random
    _random = _Random()


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere no process forks
    os.register_at_fork(after_in_child=_forget_random)


def new_id() -> str:
    """A fresh random identifier (UUID4 hex, 32 characters)."""
    r = _random
    at = r.at
    if at >= len(r.pool):
        r.pool, at = os.urandom(4096), 0
    r.at = at + 16
    b = bytearray(r.pool[at : at + 16])
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    return b.hex()


def utcnow() -> datetime:
    """The current wall-clock time, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """``moment`` as timezone-aware UTC; a naive datetime is read as local time (as
    ``datetime.now()`` gives it), so callers need not think about time zones."""
    return moment.astimezone(UTC)


class WorkflowStatus(enum.StrEnum):
    """Where a workflow instance stands."""

    RUNNABLE = "RUNNABLE"
    SUSPENDED = "SUSPENDED"
    COMPLETE = "COMPLETE"
    TERMINATED = "TERMINATED"


class PointerStatus(enum.StrEnum):
    """Where one execution pointer (one visit of a step) stands."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    SKIPPED = "SKIPPED"
    SLEEPING = "SLEEPING"
    WAITING_FOR_EVENT = "WAITING_FOR_EVENT"
    FAILED = "FAILED"
    COMPENSATED = "COMPENSATED"
    CANCELLED = "CANCELLED"
    PENDING_PREDECESSOR = "PENDING_PREDECESSOR"


@attrs.define(kw_only=True)
class ExecutionPointer:
    """One visit of one step of a workflow instance.

    ``scope`` lists the ids of the enclosing container pointers, innermost first.
    ``sequence`` orders pointers by creation; ``end_sequence`` by completion, and is
    what compensation uses to run in reverse completion order (never timestamps).
    """

    id: str = attrs.field(factory=new_id)
    step_id: int
    step_name: str | None = None
    status: PointerStatus = PointerStatus.PENDING
    active: bool = True
    sleep_until: datetime | None = None
    persistence_data: Any = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    event_name: str | None = None
    event_key: str | None = None
    event_published: bool = False
    event_data: Any = None
    retry_count: int = 0
    children: list[str] = attrs.field(factory=list)
    context_item: Any = None
    predecessor_id: str | None = None
    outcome: Any = None
    scope: list[str] = attrs.field(factory=list)
    sequence: int = 0
    end_sequence: int | None = None
    extension: dict[str, Any] = attrs.field(factory=dict)

    def awaits_event(self) -> bool:
        """Whether this pointer waits for an event that has not been delivered yet."""
        return self.status is PointerStatus.WAITING_FOR_EVENT and not self.event_published

    def receive_event(self, data: Any) -> None:
        """Take a delivered event: the step becomes runnable again and sees ``data``."""
        self.event_published = True
        self.event_data = data
        self.status = PointerStatus.PENDING
        self.active = True


@attrs.define(kw_only=True)
class WorkflowInstance:
    """A running (or finished) workflow: its status, data and execution pointers."""

    id: str = attrs.field(factory=new_id)
    definition_id: str
    version: int
    description: str | None = None
    reference: str | None = None
    status: WorkflowStatus = WorkflowStatus.RUNNABLE
    data: Any = None
    execution_pointers: list[ExecutionPointer] = attrs.field(factory=list)
    next_execution: datetime | None = None
    create_time: datetime = attrs.field(factory=utcnow)
    complete_time: datetime | None = None
    fingerprint: str | None = None

    def pointer(self, pointer_id: str) -> ExecutionPointer:
        """The pointer with this id (``KeyError`` if absent)."""
        for p in self.execution_pointers:
            if p.id == pointer_id:
                return p
        raise KeyError(pointer_id)


@attrs.define(kw_only=True)
class Event:
    """An external event published to the host, kept until delivered."""

    id: str = attrs.field(factory=new_id)
    name: str
    key: str
    data: Any = None
    time: datetime = attrs.field(factory=utcnow)
    processed: bool = False


@attrs.define(kw_only=True)
class EventSubscription:
    """A workflow pointer waiting for an event named ``event_name`` with ``event_key``.

    It accepts events whose time is at or after ``as_of``.
    """

    id: str = attrs.field(factory=new_id)
    workflow_id: str
    step_id: int
    pointer_id: str
    event_name: str
    event_key: str
    as_of: datetime
    terminated: bool = False


@attrs.frozen
class ExecutionError:
    """One recorded failure of a step (or of the workflow as a whole)."""

    workflow_id: str
    pointer_id: str | None
    time: datetime
    message: str


@attrs.frozen
class ScheduledCommand:
    """A command to run at ``execute_time`` (for example: process a workflow)."""

    name: str
    data: str
    execute_time: datetime

    PROCESS_WORKFLOW = "ProcessWorkflow"
    PROCESS_EVENT = "ProcessEvent"
