"""A minimal host for wfe-core's tests: the memory store, its locks and virtual time.

:class:`Engine` plays the part ``wfe.host`` plays in production, through the executor's
public seam only: it starts instances as the host does, claims due ones under a lease
and runs a pass (:class:`~wfe.core.executor.InstanceRun`), hands due events to their
subscriptions, and jumps virtual time to the next ``next_execution`` until the instance
leaves RUNNABLE. Tests run under trio's ``MockClock(autojump_threshold=0)`` (the
``autojump_clock`` fixture), so days pass instantly and every run is deterministic.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import trio
import trio.testing

from wfe.core import (
    Event,
    ExecutionPointer,
    LifecycleEvent,
    ProviderError,
    TrioClock,
    WorkflowDefinition,
    WorkflowInstance,
    WorkflowNotFoundError,
    WorkflowStatus,
)
from wfe.core.executor import Command, ExecutorEnv, InstanceRun
from wfe.core.memory import MemoryPersistenceProvider
from wfe.core.primitives import CHILD_FINISHED_EVENT
from wfe.core.protocols import Checkpoint, EventDelivery

LEASE_TTL = timedelta(seconds=30)


class RecordingPersistence(MemoryPersistenceProvider):
    """The memory store, keeping a snapshot of every checkpoint it is asked to store.

    ``fail_at=N`` refuses the N-th checkpoint (1-based) with a :class:`ProviderError`
    before anything of it is stored, as a store that loses its connection would.
    """

    def __init__(self, *, fail_at: int | None = None) -> None:
        super().__init__()
        self.checkpoints: list[Checkpoint] = []
        self.fail_at = fail_at
        self.attempts = 0

    async def persist_checkpoint(self, checkpoint: Checkpoint) -> None:
        self.attempts += 1
        if self.attempts == self.fail_at:
            raise ProviderError(f"injected failure of checkpoint {self.attempts}")
        await super().persist_checkpoint(checkpoint)
        # The executor keeps mutating its instance and pointers: keep what was written.
        self.checkpoints.append(copy.deepcopy(checkpoint))


class Engine:
    """Drives instances of ``definitions`` through the executor; see module docs."""

    def __init__(
        self, persistence: MemoryPersistenceProvider, *definitions: WorkflowDefinition
    ) -> None:
        self.persistence = persistence
        self.locks = persistence.default_locks()
        self.clock = TrioClock()
        self.lifecycle: list[LifecycleEvent] = []
        self.definitions = {(d.id, d.version): d for d in definitions}
        self.env = ExecutorEnv(
            persistence=persistence,
            clock=self.clock,
            publish=self.lifecycle.append,
            services=self,
            finish_events=self._finish_events,
        )

    async def start(
        self, definition: WorkflowDefinition, data: Any = None, *, workflow_id: str | None = None
    ) -> str:
        """Create an instance at its first step, due now (as ``start_workflow`` does)."""
        # Retries and delays of minutes or days must never wait in real time.
        assert isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock), (
            "run engine tests on virtual time: request the autojump_clock fixture"
        )
        self.definitions[(definition.id, definition.version)] = definition
        now = self.clock.now()
        first = definition.steps[0]
        instance = WorkflowInstance(
            definition_id=definition.id,
            version=definition.version,
            data=data,
            next_execution=now,
            create_time=now,
            fingerprint=definition.fingerprint,
            execution_pointers=[
                ExecutionPointer(step_id=first.id, step_name=first.name, sequence=1)
            ],
        )
        if workflow_id is not None:
            instance.id = workflow_id
        return await self.persistence.create_workflow(instance)

    async def publish(
        self, name: str, key: str, data: Any = None, effective_date: datetime | None = None
    ) -> str:
        """Store an event; :meth:`deliver_events` hands it out once it is due."""
        event = Event(name=name, key=key, data=data, time=effective_date or self.clock.now())
        return await self.persistence.create_event(event)

    @contextlib.asynccontextmanager
    async def lease(self, workflow_id: str) -> AsyncIterator[int]:
        """Hold the workflow's lease; yields its fencing token."""
        lease = await self.locks.acquire(f"wfe:workflow:{workflow_id}", LEASE_TTL)
        assert lease is not None, f"workflow {workflow_id} is already leased"
        try:
            yield lease.fencing_token
        finally:
            await self.locks.release(lease)

    async def run_pass(self, workflow_id: str) -> WorkflowInstance:
        """Claim the instance and run one pass over it; returns the run's instance."""
        async with self.lease(workflow_id) as token:
            instance = await self.persistence.claim_workflow(workflow_id, token)
            if instance.status is WorkflowStatus.RUNNABLE:
                definition = self.definitions[(instance.definition_id, instance.version)]
                await InstanceRun(self.env, instance, definition, token).run()
            return instance

    async def control(self, workflow_id: str, command: Command) -> bool:
        """Suspend, resume or terminate, in a run made for the command alone."""
        async with self.lease(workflow_id) as token:
            instance = await self.persistence.claim_workflow(workflow_id, token)
            definition = self.definitions.get((instance.definition_id, instance.version))
            return await InstanceRun(self.env, instance, definition, token).apply(command)

    async def deliver_events(self) -> int:
        """Hand every due event to the open subscriptions that take it (each takes its
        earliest eligible event), as the host's event consumer does; returns how many
        deliveries were stored."""
        delivered = 0
        store = self.persistence
        for event_id in await store.get_runnable_events(self.clock.now()):
            event = await store.get_event(event_id)
            takers = []
            for sub in await store.get_subscriptions(event.name, event.key, event.time):
                first = await store.get_pending_events(event.name, event.key, sub.as_of, 1)
                if first and first[0].id == event.id:
                    takers.append(sub)
            for i, sub in enumerate(takers):
                async with self.lease(sub.workflow_id) as token:
                    delivery = EventDelivery(
                        event_id=event.id,
                        subscription_id=sub.id,
                        workflow_id=sub.workflow_id,
                        pointer_id=sub.pointer_id,
                        time=self.clock.now(),
                        mark_processed=i == len(takers) - 1,
                        fencing_token=token,
                    )
                    delivered += await store.deliver_event(delivery)
        return delivered

    async def run(self, workflow_id: str, *, max_rounds: int = 200) -> WorkflowInstance:
        """Deliver events, run due passes and jump to the next wake until the instance
        is no longer RUNNABLE, or waits for an event nobody published yet."""
        for _ in range(max_rounds):
            await self.deliver_events()
            due = await self.persistence.get_runnable_instances(self.clock.now())
            for wid in due:
                await self.run_pass(wid)
            instance = await self.persistence.get_workflow(workflow_id)
            if instance.status is not WorkflowStatus.RUNNABLE:
                return instance
            if due:
                continue
            runnable = await self.persistence.list_workflows(status=WorkflowStatus.RUNNABLE)
            wakes = [w.next_execution for w in runnable if w.next_execution is not None]
            if not wakes:
                return instance  # parked on an event nobody published yet
            await self.clock.sleep_until(min(wakes))
        raise AssertionError(f"workflow {workflow_id} still RUNNABLE after {max_rounds} rounds")

    async def advance(self, delta: timedelta) -> None:
        """Let ``delta`` of virtual time pass."""
        await self.clock.sleep_until(self.clock.now() + delta)

    # -- what the host offers sub-workflows ------------------------------------------

    async def start_child(
        self, definition_id: str, version: int | None, data: Any, child_id: str, parent_id: str
    ) -> str:
        """Create the child (idempotent by id); :meth:`run` picks it up when due."""
        with contextlib.suppress(WorkflowNotFoundError):
            await self.persistence.get_workflow(child_id)
            return child_id
        candidates = [d for (i, _v), d in self.definitions.items() if i == definition_id]
        definition = (
            max(candidates, key=lambda d: d.version)
            if version is None
            else (self.definitions[(definition_id, version)])
        )
        return await self.start(definition, data, workflow_id=child_id)

    async def _finish_events(self, instance: WorkflowInstance) -> list[Event]:
        now = self.clock.now()
        subs = await self.persistence.get_subscriptions(CHILD_FINISHED_EVENT, instance.id, now)
        if not subs:
            return []
        data = {"status": instance.status.value, "data": instance.data}
        return [Event(name=CHILD_FINISHED_EVENT, key=instance.id, data=data, time=now)]
