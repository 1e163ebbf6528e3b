"""State transitions shared by result processing, failure handling and control
commands: finishing, suspending, resuming, cancelling, following outcomes.

Nothing here calls back into result processing or compensation, so those modules
import this one and never each other in a circle.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .._lifecycle import WorkflowCompleted, WorkflowResumed, WorkflowSuspended, WorkflowTerminated
from .._models import ExecutionPointer, PointerStatus, WorkflowStatus
from .._step import WorkflowStep

if TYPE_CHECKING:
    from ._run import InstanceRun

FINISHED = (WorkflowStatus.COMPLETE, WorkflowStatus.TERMINATED)


def start_children(
    run: InstanceRun, p: ExecutionPointer, step: WorkflowStep, values: list[object]
) -> None:
    """Start one pointer per (branch value x child step) inside container ``p``."""
    scope = [p.id, *p.scope]
    ids: list[str] = []
    for value in values:
        for child in step.children:
            ids.append(run.state.add_pointer(child, scope=scope, context_item=value).id)
    # Replace, not extend: a loop's children stay bounded by one iteration.
    p.children = ids


def follow_outcomes(
    run: InstanceRun, p: ExecutionPointer, step: WorkflowStep, outcome: object
) -> None:
    for edge in step.outcomes:
        if edge.matches(outcome, run.instance.data):
            run.state.add_pointer(
                edge.next_step,
                scope=p.scope,
                predecessor_id=p.id,
                context_item=p.context_item,
            )


def finish_workflow(
    run: InstanceRun, status: WorkflowStatus, current: ExecutionPointer | None = None
) -> bool:
    """Complete or terminate the instance: every open pointer is cancelled. Returns
    whether it changed anything (an instance already finished is left alone)."""
    inst = run.instance
    if inst.status in FINISHED:
        return False
    now = run.now()
    for pid in list(run.state.pointers):
        other = run.state.pointers[pid]
        if other.end_time is None and other is not current:
            run.state.end(other, PointerStatus.CANCELLED, now)
            close_subscription(run, other)
    run.stop_others(current)
    inst.status = status
    inst.complete_time = now
    inst.next_execution = None
    run.pending.instance_dirty = True
    fields = run.lifecycle_fields()
    if status is WorkflowStatus.COMPLETE:
        run.pending.publish(WorkflowCompleted(**fields))
    else:
        run.pending.publish(WorkflowTerminated(**fields))
    return True


def suspend_workflow(run: InstanceRun) -> bool:
    """RUNNABLE -> SUSPENDED: no step is scheduled until it is resumed."""
    inst = run.instance
    if inst.status is not WorkflowStatus.RUNNABLE:
        return False
    inst.status = WorkflowStatus.SUSPENDED
    run.pending.instance_dirty = True
    run.pending.publish(WorkflowSuspended(**run.lifecycle_fields()))
    return True


def resume_workflow(run: InstanceRun) -> bool:
    """SUSPENDED -> RUNNABLE; a failed step (left open as FAILED) runs again."""
    inst = run.instance
    if inst.status is not WorkflowStatus.SUSPENDED:
        return False
    inst.status = WorkflowStatus.RUNNABLE
    for pid in list(run.state.pointers):
        p = run.state.pointers[pid]
        if p.end_time is None and p.status is PointerStatus.FAILED:
            p.status = PointerStatus.PENDING
            p.retry_count = 0
            p.sleep_until = None
            run.state.activate(p)
    run.pending.instance_dirty = True
    run.pending.publish(WorkflowResumed(**run.lifecycle_fields()))
    return True


def open_subscription(p: ExecutionPointer) -> str | None:
    """The id of the subscription ``p`` waits on, if no event was delivered to it yet."""
    sub_id = p.extension.get("subscription_id")
    return str(sub_id) if sub_id and not p.event_published else None


def close_subscription(run: InstanceRun, p: ExecutionPointer) -> None:
    sub_id = open_subscription(p)
    if sub_id is not None:
        run.pending.closed_subscriptions.append(sub_id)


def check_complete(run: InstanceRun) -> None:
    if run.instance.status is WorkflowStatus.RUNNABLE and run.state.open_total == 0:
        finish_workflow(run, WorkflowStatus.COMPLETE)


def cancel_pointer(run: InstanceRun, p: ExecutionPointer, now: datetime) -> None:
    """End ``p`` and everything inside it as CANCELLED; stop it if running."""
    for inner in run.state.descendants(p.id):
        if inner.end_time is None:
            run.state.end(inner, PointerStatus.CANCELLED, now)
            run.cancel_running(inner.id)
            close_subscription(run, inner)
    run.state.end(p, PointerStatus.CANCELLED, now)
    run.cancel_running(p.id)
    close_subscription(run, p)


def check_cancellations(run: InstanceRun) -> None:
    """Cancel pointers whose step's cancel condition now holds."""
    if run.instance.status is not WorkflowStatus.RUNNABLE or not run.state.cancellable:
        return
    now = run.now()
    data = run.instance.data
    for pid in list(run.state.cancellable):
        p = run.state.pointers[pid]
        step = run.state.step(p)
        if p.end_time is not None or step.cancel_condition is None:
            continue
        if not step.cancel_condition(data):
            continue
        cancel_pointer(run, p, now)
        if step.proceed_on_cancel:
            follow_outcomes(run, p, step, None)
