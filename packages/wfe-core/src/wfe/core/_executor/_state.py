"""In-memory indexes over one workflow instance, kept while a host holds it.

Every operation here costs O(scope depth) or O(active pointers), never O(history):
that is what keeps per-step cost flat for instances with 100,000 finished pointers.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from .._errors import ConfigurationError
from .._models import ExecutionPointer, PointerStatus, WorkflowInstance
from .._step import WorkflowDefinition, WorkflowStep

RUNNABLE_STATUSES = frozenset(
    {PointerStatus.PENDING, PointerStatus.RUNNING, PointerStatus.SLEEPING}
)


class InstanceState:
    """Indexes of one instance's pointers plus the set of changes not yet persisted."""

    def __init__(self, instance: WorkflowInstance, definition: WorkflowDefinition | None) -> None:
        self.instance = instance
        self.definition = definition
        self.pointers: dict[str, ExecutionPointer] = {}
        self.open_in_scope: dict[str, int] = defaultdict(int)
        self.open_total = 0
        self.active: set[str] = set()
        self.waiters: dict[str, list[str]] = defaultdict(list)
        self.cancellable: set[str] = set()
        self.dirty: dict[str, ExecutionPointer] = {}
        self.sequence = 0
        self.end_sequence = 0
        for p in instance.execution_pointers:
            self._index(p)

    def _index(self, p: ExecutionPointer) -> None:
        self.pointers[p.id] = p
        self.sequence = max(self.sequence, p.sequence)
        if p.end_sequence is not None:
            self.end_sequence = max(self.end_sequence, p.end_sequence)
        if p.end_time is None:
            self.open_total += 1
            for s in p.scope:
                self.open_in_scope[s] += 1
            if p.active:
                self.active.add(p.id)
            if p.status is PointerStatus.PENDING_PREDECESSOR and p.predecessor_id:
                self.waiters[p.predecessor_id].append(p.id)
            if self.definition is not None and self.step(p).cancel_condition is not None:
                self.cancellable.add(p.id)

    def definition_or_fail(self) -> WorkflowDefinition:
        """The definition; control commands run without one, and never need it."""
        if self.definition is None:
            raise ConfigurationError(
                f"workflow {self.instance.id}: definition {self.instance.definition_id!r} "
                f"version {self.instance.version} is not registered on this host"
            )
        return self.definition

    def step(self, p: ExecutionPointer) -> WorkflowStep:
        return self.definition_or_fail().steps[p.step_id]

    def touch(self, p: ExecutionPointer) -> None:
        """Mark a pointer changed, to be written by the next flush."""
        self.dirty[p.id] = p

    def add_pointer(
        self,
        step_id: int,
        *,
        scope: list[str],
        predecessor_id: str | None = None,
        context_item: Any = None,
        status: PointerStatus = PointerStatus.PENDING,
        sleep_until: datetime | None = None,
        retry_count: int = 0,
        extension: dict[str, Any] | None = None,
    ) -> ExecutionPointer:
        step = self.definition_or_fail().steps[step_id]
        self.sequence += 1
        p = ExecutionPointer(
            step_id=step_id,
            step_name=step.name,
            status=status,
            active=status is not PointerStatus.PENDING_PREDECESSOR,
            scope=list(scope),
            predecessor_id=predecessor_id,
            context_item=context_item,
            sleep_until=sleep_until,
            retry_count=retry_count,
            sequence=self.sequence,
            extension=extension or {},
        )
        self.instance.execution_pointers.append(p)
        self._index(p)
        self.touch(p)
        return p

    def end(self, p: ExecutionPointer, status: PointerStatus, now: datetime) -> None:
        """Finish a pointer (complete, failed, compensated, cancelled, skipped)."""
        was_open = p.end_time is None
        p.status = status
        p.active = False
        p.sleep_until = None
        if was_open:
            p.end_time = now
            self.end_sequence += 1
            p.end_sequence = self.end_sequence
            self.open_total -= 1
            for s in p.scope:
                self.open_in_scope[s] -= 1
        self.active.discard(p.id)
        self.cancellable.discard(p.id)
        self.touch(p)

    def activate(self, p: ExecutionPointer) -> None:
        p.active = True
        self.active.add(p.id)
        self.touch(p)

    def deactivate(self, p: ExecutionPointer) -> None:
        p.active = False
        self.active.discard(p.id)
        self.touch(p)

    def branch_complete(self, container_id: str) -> bool:
        return self.open_in_scope.get(container_id, 0) == 0

    def descendants(self, container_id: str) -> list[ExecutionPointer]:
        """Every pointer inside a container (scans the instance: failure paths only)."""
        return [p for p in self.pointers.values() if container_id in p.scope]

    def is_runnable(self, p: ExecutionPointer, now: datetime) -> bool:
        if not p.active or p.status not in RUNNABLE_STATUSES:
            return False
        if p.sleep_until is not None:
            return p.sleep_until <= now
        return not self._waits_for_children(p)

    def _waits_for_children(self, p: ExecutionPointer) -> bool:
        """A container is not polled: it waits until its last child has ended."""
        if self.definition is None:
            return False
        return bool(self.step(p).children) and not self.branch_complete(p.id)

    def next_wake(self, now: datetime) -> datetime | None:
        """When this instance next has work: ``now``, a sleep's end, or never (``None``)."""
        wake: datetime | None = None
        for pid in self.active:
            p = self.pointers[pid]
            if p.status not in RUNNABLE_STATUSES:
                continue
            if p.sleep_until is not None:
                if wake is None or p.sleep_until < wake:
                    wake = p.sleep_until
            elif not self._waits_for_children(p):
                return now
        return wake
