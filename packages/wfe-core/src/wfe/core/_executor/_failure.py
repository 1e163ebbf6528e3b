"""What happens when a step raises: retry, suspend, terminate or compensate.

Compensation runs the compensating steps of the failed scope one after another, in
reverse order of completion (by ``end_sequence``, never timestamps): the failed step's
own compensation first, then the completed steps of each enclosing saga, innermost
first. What follows the compensations (retrying the saga, terminating, resuming the
flow after a compensated saga) is attached to the last compensation pointer and
applied when it ends.
"""

from __future__ import annotations

import traceback
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .._errors import StepError
from .._lifecycle import WorkflowError
from .._models import ExecutionError, ExecutionPointer, PointerStatus, WorkflowStatus
from .._results import DEFAULT_ERROR_BEHAVIOR, ErrorBehavior, ErrorBehaviorType
from .._step import WorkflowStep
from ._outcomes import (
    AFTER_COMPENSATION,
    cancel_pointer,
    finish_workflow,
    follow_outcomes,
    suspend_workflow,
)

if TYPE_CHECKING:
    from ._run import InstanceRun


def describe(exc: BaseException) -> str:
    """A one-line message for an exception (the step's own words for StepError)."""
    if isinstance(exc, StepError):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_saga(step: WorkflowStep) -> bool:
    return bool(getattr(step.body, "is_saga", False))


def _in_saga(run: InstanceRun, p: ExecutionPointer) -> bool:
    return any(_is_saga(run.state.step(run.state.pointers[s])) for s in p.scope)


def effective_behavior(run: InstanceRun, p: ExecutionPointer, step: WorkflowStep) -> ErrorBehavior:
    default = run.state.definition.default_error_behavior or DEFAULT_ERROR_BEHAVIOR
    if step.error_behavior is not None:
        behavior = step.error_behavior
    elif step.is_compensation:
        behavior = default
    elif step.compensation_step_id is not None or _in_saga(run, p):
        behavior = ErrorBehavior.compensate()
    else:
        behavior = default
    if behavior.type is ErrorBehaviorType.COMPENSATE and not (
        step.compensation_step_id is not None or _in_saga(run, p)
    ):
        # Nothing to compensate: fall back to the definition's behaviour.
        if default.type is ErrorBehaviorType.COMPENSATE:
            return ErrorBehavior.suspend()
        return default
    return behavior


def record_error(run: InstanceRun, p: ExecutionPointer | None, message: str) -> None:
    now = run.now()
    run.errors.append(
        ExecutionError(
            workflow_id=run.instance.id,
            pointer_id=p.id if p else None,
            time=now,
            message=message,
        )
    )
    run.publish_after_flush(
        WorkflowError(
            **run.lifecycle_fields(),
            message=message,
            step_id=p.step_id if p else None,
            pointer_id=p.id if p else None,
        )
    )


def handle_failure(
    run: InstanceRun, p: ExecutionPointer, step: WorkflowStep, exc: BaseException
) -> None:
    message = describe(exc)
    if not isinstance(exc, StepError):
        tb = traceback.extract_tb(exc.__traceback__)
        if tb:
            frame = tb[-1]
            message = f"{message} (at {frame.filename}:{frame.lineno})"
    prefix = f"step {step.display_name!r}"
    # Step errors that already name their step (shell steps do) are not prefixed twice.
    record_error(run, p, message if message.startswith(prefix) else f"{prefix}: {message}")
    behavior = effective_behavior(run, p, step)
    now = run.now()
    state = run.state
    match behavior.type:
        case ErrorBehaviorType.RETRY:
            p.retry_count += 1
            if behavior.max_retries is not None and p.retry_count > behavior.max_retries:
                _fail_and_suspend(run, p)
            else:
                p.status = PointerStatus.SLEEPING
                p.sleep_until = now + behavior.interval
                state.touch(p)
        case ErrorBehaviorType.SUSPEND:
            _fail_and_suspend(run, p)
        case ErrorBehaviorType.TERMINATE:
            state.end(p, PointerStatus.FAILED, now)
            finish_workflow(run, WorkflowStatus.TERMINATED, p)
        case ErrorBehaviorType.COMPENSATE:
            compensate(run, p, step)


def _fail_and_suspend(run: InstanceRun, p: ExecutionPointer) -> None:
    """The pointer stays open as FAILED: resuming the workflow runs it again."""
    p.status = PointerStatus.FAILED
    p.sleep_until = None
    run.state.touch(p)
    suspend_workflow(run)


def compensate(run: InstanceRun, p: ExecutionPointer, step: WorkflowStep) -> None:
    state = run.state
    now = run.now()
    chain: list[ExecutionPointer] = []
    state.end(p, PointerStatus.FAILED, now)
    if step.compensation_step_id is not None:
        chain.append(p)
    action: dict[str, Any] | None = None
    in_saga = False
    for scope_id in p.scope:
        container = state.pointers[scope_id]
        cstep = state.step(container)
        if not _is_saga(cstep):
            continue
        in_saga = True
        inside = state.descendants(container.id)
        done = [
            x
            for x in inside
            if x.status is PointerStatus.COMPLETE
            and state.step(x).compensation_step_id is not None
            and x not in chain
        ]
        done.sort(key=lambda x: x.end_sequence or 0, reverse=True)
        chain.extend(done)
        for x in inside:
            if x.end_time is None:
                cancel_pointer(run, x, now)
        state.end(container, PointerStatus.FAILED, now)
        behavior = cstep.error_behavior
        kind = behavior.type if behavior is not None else ErrorBehaviorType.COMPENSATE
        if kind is ErrorBehaviorType.RETRY and behavior is not None:
            action = {
                "action": "retry",
                "pointer": container.id,
                "interval": behavior.interval.total_seconds(),
                "max_retries": behavior.max_retries,
            }
            break
        if kind is ErrorBehaviorType.TERMINATE:
            action = {"action": "terminate"}
            break
        if kind is ErrorBehaviorType.SUSPEND:
            action = {"action": "suspend", "pointer": container.id}
            break
        if cstep.compensation_step_id is not None:
            chain.append(container)
            action = {"action": "resume", "pointer": container.id}
            break
        # A saga without its own handler: the failure moves to the enclosing scope.
    if not in_saga and step.compensation_step_id is not None:
        action = {"action": "resume", "pointer": p.id}
    _start_chain(run, chain, action)


def _start_chain(
    run: InstanceRun, chain: list[ExecutionPointer], action: dict[str, Any] | None
) -> None:
    state = run.state
    previous: ExecutionPointer | None = None
    for source in chain:
        comp_step = state.step(source).compensation_step_id
        assert comp_step is not None
        comp = state.add_pointer(
            comp_step,
            scope=source.scope,
            predecessor_id=previous.id if previous else source.id,
            context_item=source.context_item,
            status=PointerStatus.PENDING if previous is None else PointerStatus.PENDING_PREDECESSOR,
        )
        if source.end_time is not None:
            source.status = PointerStatus.COMPENSATED
            state.touch(source)
        previous = comp
    if action is None:
        return
    if previous is None:
        apply_after_compensation(run, action)
    else:
        previous.extension[AFTER_COMPENSATION] = action
        state.touch(previous)


def apply_after_compensation(run: InstanceRun, action: dict[str, Any]) -> None:
    state = run.state
    kind = action["action"]
    if kind == "terminate":
        finish_workflow(run, WorkflowStatus.TERMINATED)
        return
    target = state.pointers[action["pointer"]]
    if kind == "resume":
        follow_outcomes(run, target, state.step(target), None)
        return
    retry_count = target.retry_count + 1
    if kind == "retry":
        max_retries = action.get("max_retries")
        if max_retries is not None and retry_count > max_retries:
            kind = "suspend"
    sleep_until = None
    if kind == "retry":
        sleep_until = run.now() + timedelta(seconds=float(action["interval"]))
    again = state.add_pointer(
        target.step_id,
        scope=target.scope,
        predecessor_id=target.predecessor_id,
        context_item=target.context_item,
        status=PointerStatus.SLEEPING if sleep_until else PointerStatus.PENDING,
        sleep_until=sleep_until,
        retry_count=retry_count,
    )
    state.touch(again)
    if kind == "suspend":
        suspend_workflow(run)
