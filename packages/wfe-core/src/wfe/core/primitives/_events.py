"""Waiting primitives: wait for an event, run a sub-workflow."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from .._models import WorkflowStatus
from .._results import ExecutionResult
from .._step import StepBody, StepExecutionContext

CHILD_FINISHED_EVENT = "wfe.workflow-finished"
"""Published (key: the child's id) when a workflow someone waits on reaches a terminal status."""


class WaitFor(StepBody):
    """Parks until an event ``event_name``/``event_key`` arrives; exposes ``event_data``."""

    replayable = True
    event_name: str = ""
    event_key: Any = None
    effective_date: datetime | None = None
    event_data: Any = None

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        if not ctx.pointer.event_published:
            return ExecutionResult.wait_for_event(
                self.event_name, str(self.event_key), self.effective_date
            )
        self.event_data = ctx.pointer.event_data
        return ExecutionResult.next()


class SubWorkflow(StepBody):
    """Starts a child workflow and waits until it ends (complete or terminated).

    Exposes ``child_id``, ``child_status`` and ``child_data``. The child's id is derived
    from this pointer's id, so a re-run after a crash never starts a second child.
    """

    definition_id: str = ""
    version: int | None = None
    data: Any = None
    child_id: str | None = None
    child_status: WorkflowStatus | None = None
    child_data: Any = None

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        child_id = uuid.uuid5(uuid.NAMESPACE_URL, f"wfe:child:{ctx.pointer.id}").hex
        self.child_id = child_id
        if ctx.pointer.event_published:
            payload = ctx.pointer.event_data or {}
            self.child_status = WorkflowStatus(str(payload.get("status")))
            self.child_data = payload.get("data")
            return ExecutionResult.next()
        if ctx.services is None:
            raise RuntimeError("sub_workflow needs a host to start the child workflow")
        await ctx.services.start_child(
            self.definition_id, self.version, self.data, child_id, ctx.workflow.id
        )
        return ExecutionResult(
            proceed=False,
            event_name=CHILD_FINISHED_EVENT,
            event_key=child_id,
            persistence_data={"child_id": child_id},
        )
