"""A parent whose sub_workflow step never got stored still learns how its child ended."""

from __future__ import annotations

from datetime import timedelta

from wfe.core import ProviderError, WorkflowBuilder, WorkflowStatus
from wfe.core.memory import MemoryPersistenceProvider
from wfe.core.primitives import CHILD_FINISHED_EVENT
from wfe.core.protocols import Checkpoint
from wfe.host import WorkflowHostBuilder


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
    parent = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .sub_workflow("kid", 1, data=lambda d, ctx: {"from": "parent"})
        .output("child", lambda step: step.child_status.value)
        .build("mum", 1)
    )
    store = ParentWriteFailsUntilChildEnds()
    host = (
        WorkflowHostBuilder()
        .persistence(store)
        .lease_ttl(timedelta(milliseconds=300))
        .poll_interval(timedelta(milliseconds=50))
        .register(child)
        .register(parent)
        .build()
    )
    async with host:
        wid = await host.start_workflow("mum", 1, {})
        done = await host.wait_for_workflow(wid, timeout=20)
    assert store.refused >= 1, "the scenario did not happen: the parent's wait was stored"
    assert done.status is WorkflowStatus.COMPLETE
    assert done.data["child"] == WorkflowStatus.COMPLETE.value
