"""Lifecycle events: what happened to a workflow, published in order."""

from __future__ import annotations

from datetime import datetime

import attrs

from ._models import utcnow


@attrs.frozen(kw_only=True)
class LifecycleEvent:
    """Base of every lifecycle event."""

    workflow_instance_id: str
    definition_id: str
    version: int
    reference: str | None = None
    time: datetime = attrs.field(factory=utcnow)

    @property
    def workflow_id(self) -> str:
        """The workflow's id (the same as ``workflow_instance_id``)."""
        return self.workflow_instance_id


@attrs.frozen(kw_only=True)
class WorkflowStarted(LifecycleEvent):
    """A workflow instance was created and is runnable."""


@attrs.frozen(kw_only=True)
class WorkflowCompleted(LifecycleEvent):
    """A workflow reached its end (or an ``end_workflow`` step)."""


@attrs.frozen(kw_only=True)
class WorkflowTerminated(LifecycleEvent):
    """A workflow was terminated (by a caller or an error behaviour)."""


@attrs.frozen(kw_only=True)
class WorkflowSuspended(LifecycleEvent):
    """A workflow was suspended (by a caller or an error behaviour)."""


@attrs.frozen(kw_only=True)
class WorkflowResumed(LifecycleEvent):
    """A suspended workflow was resumed."""


@attrs.frozen(kw_only=True)
class WorkflowError(LifecycleEvent):
    """A step failed; ``message`` says how."""

    message: str = ""
    step_id: int | None = None
    pointer_id: str | None = None


@attrs.frozen(kw_only=True)
class StepStarted(LifecycleEvent):
    """A step body is about to run: published for every attempt (``attempt`` is 1 for
    the first run, 2 for the first retry, ...) and when a step cut short by a stopped
    host runs again; not when a waiting step (delay, event, container) continues."""

    step_id: int = 0
    step_name: str | None = None
    pointer_id: str = ""
    attempt: int = 1


@attrs.frozen(kw_only=True)
class StepCompleted(LifecycleEvent):
    """A step body finished and its result was processed."""

    step_id: int = 0
    step_name: str | None = None
    pointer_id: str = ""
