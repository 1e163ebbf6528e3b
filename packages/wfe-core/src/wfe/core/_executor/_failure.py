"""What happens when a step raises: retry, suspend, terminate or compensate; and the
one way an error is recorded (an :class:`ExecutionError` plus a ``WorkflowError``)."""

from __future__ import annotations

import traceback
from datetime import datetime
from typing import TYPE_CHECKING

from .._errors import StepError
from .._lifecycle import WorkflowError
from .._models import (
    ExecutionError,
    ExecutionPointer,
    PointerStatus,
    WorkflowInstance,
    WorkflowStatus,
)
from .._results import DEFAULT_ERROR_BEHAVIOR, ErrorBehavior, ErrorBehaviorType
from .._step import WorkflowStep
from ._compensation import compensate, in_saga
from ._transitions import finish_workflow, suspend_workflow

if TYPE_CHECKING:
    from ._run import InstanceRun


def describe(exc: BaseException) -> str:
    """A one-line message for an exception (the step's own words for StepError)."""
    if isinstance(exc, StepError):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def error_records(
    instance: WorkflowInstance, pointer: ExecutionPointer | None, message: str, now: datetime
) -> tuple[ExecutionError, WorkflowError]:
    """The stored error and the lifecycle event for one failure of ``instance``."""
    error = ExecutionError(
        workflow_id=instance.id,
        pointer_id=pointer.id if pointer else None,
        time=now,
        message=message,
    )
    event = WorkflowError(
        workflow_instance_id=instance.id,
        definition_id=instance.definition_id,
        version=instance.version,
        reference=instance.reference,
        time=now,
        message=message,
        step_id=pointer.step_id if pointer else None,
        pointer_id=pointer.id if pointer else None,
    )
    return error, event


def record_error(run: InstanceRun, p: ExecutionPointer | None, message: str) -> None:
    """Record ``message`` with the next checkpoint (and publish it after that write)."""
    error, event = error_records(run.instance, p, message, run.now())
    run.pending.errors.append(error)
    run.pending.publish(event)


def effective_behavior(run: InstanceRun, p: ExecutionPointer, step: WorkflowStep) -> ErrorBehavior:
    default = run.state.definition_or_fail().default_error_behavior or DEFAULT_ERROR_BEHAVIOR
    compensable = step.compensation_step_id is not None or in_saga(run, p)
    if step.error_behavior is not None:
        behavior = step.error_behavior
    elif step.is_compensation:
        behavior = default
    elif compensable:
        behavior = ErrorBehavior.compensate()
    else:
        behavior = default
    if behavior.type is ErrorBehaviorType.COMPENSATE and not compensable:
        # Nothing to compensate: fall back to the definition's behaviour.
        if default.type is ErrorBehaviorType.COMPENSATE:
            return ErrorBehavior.suspend()
        return default
    return behavior


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
