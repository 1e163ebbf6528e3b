"""Result processing: what a step's :class:`ExecutionResult` does to the instance."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .._lifecycle import StepCompleted, WorkflowCompleted, WorkflowSuspended, WorkflowTerminated
from .._models import (
    EventSubscription,
    ExecutionPointer,
    PointerStatus,
    WorkflowStatus,
    as_utc,
)
from .._results import ExecutionResult
from .._step import WorkflowStep

if TYPE_CHECKING:
    from ._run import InstanceRun

EVERY_EVENT = datetime(1, 1, 1, tzinfo=UTC)
"""``as_of`` of a subscription that accepts any pending event, whenever published."""

AFTER_COMPENSATION = "after_compensation"


def process_result(
    run: InstanceRun, p: ExecutionPointer, step: WorkflowStep, result: ExecutionResult
) -> None:
    state = run.state
    now = run.now()
    if result.proceed:
        p.outcome = result.outcome_value
        p.persistence_data = result.persistence_data
        complete_pointer(run, p, step)
        if getattr(step.body, "ends_workflow", False):
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
        run.new_subscriptions.append(sub)
    elif result.sleep_for is not None:
        p.sleep_until = now + result.sleep_for
        p.status = PointerStatus.SLEEPING
    else:
        p.sleep_until = None
        p.status = PointerStatus.RUNNING
    if result.branch_values is not None:
        start_children(run, p, step, list(result.branch_values))
    state.touch(p)


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


def complete_pointer(run: InstanceRun, p: ExecutionPointer, step: WorkflowStep) -> None:
    run.state.end(p, PointerStatus.COMPLETE, run.now())
    run.publish_after_flush(
        StepCompleted(
            **run.lifecycle_fields(),
            step_id=step.id,
            step_name=step.display_name,
            pointer_id=p.id,
        )
    )
    release_waiters(run, p)


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


def release_waiters(run: InstanceRun, p: ExecutionPointer) -> None:
    """Start pointers chained after ``p`` (compensation runs one step after another)."""
    for wid in run.state.waiters.pop(p.id, []):
        w = run.state.pointers[wid]
        if w.status is PointerStatus.PENDING_PREDECESSOR and w.end_time is None:
            w.status = PointerStatus.PENDING
            run.state.activate(w)
    action = p.extension.get(AFTER_COMPENSATION)
    if action is not None and p.end_time is not None:
        from ._failure import apply_after_compensation

        apply_after_compensation(run, action)


def finish_workflow(
    run: InstanceRun, status: WorkflowStatus, current: ExecutionPointer | None = None
) -> None:
    """Complete or terminate the instance: every open pointer is cancelled."""
    inst = run.instance
    if inst.status in (WorkflowStatus.COMPLETE, WorkflowStatus.TERMINATED):
        return
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
    run.instance_dirty = True
    fields = run.lifecycle_fields()
    if status is WorkflowStatus.COMPLETE:
        run.publish_after_flush(WorkflowCompleted(**fields))
    else:
        run.publish_after_flush(WorkflowTerminated(**fields))


def suspend_workflow(run: InstanceRun) -> None:
    inst = run.instance
    if inst.status is not WorkflowStatus.RUNNABLE:
        return
    inst.status = WorkflowStatus.SUSPENDED
    run.instance_dirty = True
    run.publish_after_flush(WorkflowSuspended(**run.lifecycle_fields()))


def open_subscription(p: ExecutionPointer) -> str | None:
    """The id of the subscription ``p`` waits on, if no event was delivered to it yet."""
    sub_id = p.extension.get("subscription_id")
    return str(sub_id) if sub_id and not p.event_published else None


def close_subscription(run: InstanceRun, p: ExecutionPointer) -> None:
    sub_id = open_subscription(p)
    if sub_id is not None:
        run.closed_subscriptions.append(sub_id)


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
