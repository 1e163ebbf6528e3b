"""Result processing: what a step's :class:`ExecutionResult` does to the instance."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .._lifecycle import StepCompleted
from .._models import EventSubscription, ExecutionPointer, PointerStatus, WorkflowStatus, as_utc
from .._results import ExecutionResult
from .._step import WorkflowStep
from ._compensation import AFTER_COMPENSATION, apply_after_compensation, continuation_of
from ._transitions import finish_workflow, follow_outcomes, start_children

if TYPE_CHECKING:
    from ._run import InstanceRun

EVERY_EVENT = datetime(1, 1, 1, tzinfo=UTC)
"""``as_of`` of a subscription that accepts any pending event, whenever published."""


def process_result(
    run: InstanceRun, p: ExecutionPointer, step: WorkflowStep, result: ExecutionResult
) -> None:
    state = run.state
    now = run.now()
    if result.proceed:
        p.outcome = result.outcome_value
        p.persistence_data = result.persistence_data
        complete_pointer(run, p, step)
        if step.body.ends_workflow:
            finish_workflow(run, WorkflowStatus.COMPLETE, p)
            return
        if not step.is_compensation and AFTER_COMPENSATION not in p.extension:
            follow_outcomes(run, p, step, result.outcome_value)
        return
    p.persistence_data = result.persistence_data
    if result.event_name is not None:
        sub = EventSubscription(
            workflow_id=run.instance.id,
            step_id=step.id,
            pointer_id=p.id,
            event_name=result.event_name,
            event_key=result.event_key or "",
            as_of=as_utc(result.event_as_of) if result.event_as_of else EVERY_EVENT,
        )
        p.status = PointerStatus.WAITING_FOR_EVENT
        p.event_name = sub.event_name
        p.event_key = sub.event_key
        p.event_published = False
        p.event_data = None
        p.extension["subscription_id"] = sub.id
        state.deactivate(p)
        run.pending.opened_subscriptions.append(sub)
    elif result.sleep_for is not None:
        p.sleep_until = now + result.sleep_for
        p.status = PointerStatus.SLEEPING
    else:
        p.sleep_until = None
        p.status = PointerStatus.RUNNING
    if result.branch_values is not None:
        start_children(run, p, step, list(result.branch_values))
    state.touch(p)


def complete_pointer(run: InstanceRun, p: ExecutionPointer, step: WorkflowStep) -> None:
    run.state.end(p, PointerStatus.COMPLETE, run.now())
    run.pending.publish(
        StepCompleted(
            **run.lifecycle_fields(),
            step_id=step.id,
            step_name=step.display_name,
            pointer_id=p.id,
        )
    )
    release_waiters(run, p)


def release_waiters(run: InstanceRun, p: ExecutionPointer) -> None:
    """Start pointers chained after ``p`` (compensation runs one step after another),
    and apply the continuation when ``p`` was the last of a compensation chain."""
    for wid in run.state.waiters.pop(p.id, []):
        w = run.state.pointers[wid]
        if w.status is PointerStatus.PENDING_PREDECESSOR and w.end_time is None:
            w.status = PointerStatus.PENDING
            run.state.activate(w)
    after = continuation_of(p)
    if after is not None and p.end_time is not None:
        apply_after_compensation(run, after)
