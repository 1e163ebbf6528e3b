"""A parent whose sub_workflow step never got stored still learns how its child ended."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import trio

from wfe.core import (
    Event,
    ProviderError,
    WorkflowBuilder,
    WorkflowDefinition,
    WorkflowStatus,
)
from wfe.core.memory import MemoryPersistenceProvider
from wfe.core.primitives import CHILD_FINISHED_EVENT
from wfe.core.protocols import Checkpoint
from wfe.host import WorkflowHost, WorkflowHostBuilder

_ENDED = (WorkflowStatus.COMPLETE, WorkflowStatus.TERMINATED)


def _host(store: MemoryPersistenceProvider, child: WorkflowDefinition) -> WorkflowHost:
    """A host of ``store`` running ``child`` ("kid") and a parent ("mum") that starts it
    as a sub-workflow and keeps how it ended as its ``child`` datum."""
    parent = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .sub_workflow("kid", 1, data=lambda d, ctx: {"from": "parent"})
        .output("child", lambda step: step.child_status.value)
        .build("mum", 1)
    )
    return (
        WorkflowHostBuilder()
        .persistence(store)
        .lease_ttl(timedelta(milliseconds=300))
        .poll_interval(timedelta(milliseconds=50))
        .register(child)
        .register(parent)
        .build()
    )


class ParentWriteFailsUntilChildEnds(MemoryPersistenceProvider):
    """Refuses the parent's checkpoint that would open its wait for the child (as if the
    parent's host died after starting the child) for as long as the child is not
    finished, so the child ends while nobody waits for it."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    async def persist_checkpoint(self, checkpoint: Checkpoint) -> None:
        for sub in checkpoint.opened_subscriptions:
            child = self._instances.get(sub.event_key)
            waits_for_child = sub.event_name == CHILD_FINISHED_EVENT
            if waits_for_child and (child is None or child.row.status is WorkflowStatus.RUNNABLE):
                self.refused += 1
                raise ProviderError("simulated crash before the parent's wait was stored")
        await super().persist_checkpoint(checkpoint)


async def test_a_child_that_ended_before_its_parent_waited_still_finishes_the_parent() -> None:
    child = WorkflowBuilder(dict).start_with(lambda ctx: None).build("kid", 1)
    store = ParentWriteFailsUntilChildEnds()
    host = _host(store, child)
    async with host:
        wid = await host.start_workflow("mum", 1, {})
        done = await host.wait_for_workflow(wid, timeout=20)
    assert store.refused >= 1, "the scenario did not happen: the parent's wait was stored"
    assert done.status is WorkflowStatus.COMPLETE
    assert done.data["child"] == WorkflowStatus.COMPLETE.value


class ChildEndsWhileParentWaitIsWritten(MemoryPersistenceProvider):
    """The parent's first checkpoint that would open its wait for the child is refused
    (its host died after starting the child); the re-run finds the child running. The
    child has begun its final checkpoint before the parent's wait is stored.
    ``parent_sees_end``: the wait is stored once the child's end is, so the parent's
    look for a pending notice finds it; otherwise the child's end is stored only once
    that look has found none, so only the child's own delivery of its notice can reach
    the wait."""

    def __init__(self, *, parent_sees_end: bool) -> None:
        super().__init__()
        self.parent_sees_end = parent_sees_end
        self.refused = 0
        self.held = 0
        self.parent_writing = trio.Event()
        self.child_finishing = trio.Event()
        self.child_ended = trio.Event()
        self.wait_stored = False
        self.parent_looked = trio.Event()

    async def persist_checkpoint(self, checkpoint: Checkpoint) -> None:
        if checkpoint.instance.definition_id == "kid" and checkpoint.instance.status in _ENDED:
            self.child_finishing.set()
            if not self.parent_sees_end:
                await self.parent_looked.wait()
            await super().persist_checkpoint(checkpoint)
            self.child_ended.set()
            return
        waits = [s for s in checkpoint.opened_subscriptions if s.event_name == CHILD_FINISHED_EVENT]
        if waits and not self.refused:
            self.refused += 1
            raise ProviderError("simulated crash before the parent's wait was stored")
        if waits and not self.child_finishing.is_set():
            self.held += 1
            self.parent_writing.set()
            await (self.child_ended if self.parent_sees_end else self.child_finishing).wait()
        await super().persist_checkpoint(checkpoint)
        if waits:
            self.wait_stored = True

    async def get_pending_events(
        self, event_name: str, event_key: str, as_of: datetime, limit: int = 1000
    ) -> list[Event]:
        pending = await super().get_pending_events(event_name, event_key, as_of, limit)
        if event_name == CHILD_FINISHED_EVENT and self.wait_stored:
            self.parent_looked.set()
        return pending


@pytest.mark.parametrize("parent_sees_end", [True, False], ids=["parent-sees", "child-sees"])
async def test_a_child_that_ends_while_its_parent_s_wait_is_written_finishes_the_parent(
    parent_sees_end: bool,
) -> None:
    child = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .wait_for("release", lambda data, ctx: "kid")
        .build("kid", 1)
    )
    store = ChildEndsWhileParentWaitIsWritten(parent_sees_end=parent_sees_end)
    host = _host(store, child)
    async with host:
        wid = await host.start_workflow("mum", 1, {})
        with trio.fail_after(20):
            await store.parent_writing.wait()
        await host.publish_event("release", "kid", None)
        done = await host.wait_for_workflow(wid, timeout=20)
    assert (store.refused, store.held) == (1, 1), "the scenario did not happen"
    assert store.parent_looked.is_set() or parent_sees_end
    assert done.status is WorkflowStatus.COMPLETE
    assert done.data["child"] == WorkflowStatus.COMPLETE.value
