"""Compensation: undo the completed steps of a failed scope, one after another.

Compensating steps run in reverse order of completion (by ``end_sequence``, never
timestamps): the failed step's own compensation first, then the completed steps of
each enclosing saga, innermost first. What follows the compensations (retrying the
saga, terminating, suspending, continuing the flow after a compensated saga) is an
:class:`AfterCompensation` stored on the last compensation pointer and applied when
that pointer ends.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from .._models import ExecutionPointer, PointerStatus, WorkflowStatus
from .._results import ErrorBehaviorType
from .._step import WorkflowStep
from ._transitions import cancel_pointer, finish_workflow, follow_outcomes, suspend_workflow

if TYPE_CHECKING:
    from ._run import InstanceRun

AFTER_COMPENSATION = "after_compensation"
"""The pointer ``extension`` key holding the :class:`AfterCompensation`."""


class Continuation(enum.StrEnum):
    """What happens once a failed scope's compensations have all run."""

    RETRY = "retry"  # run the saga again after ``interval`` (up to ``max_retries``)
    SUSPEND = "suspend"  # run the saga again when the workflow is resumed
    TERMINATE = "terminate"
    RESUME = "resume"  # continue the flow after ``pointer`` (its own compensate_with)


@attrs.frozen(kw_only=True)
class AfterCompensation:
    """The continuation of a compensated scope, kept with its last compensation."""

    action: Continuation
    pointer: str | None = None
    interval: float | None = None  # seconds, for RETRY
    max_retries: int | None = None

    def to_extension(self) -> dict[str, Any]:
        return {k: v for k, v in attrs.asdict(self).items() if v is not None}

    @classmethod
    def from_extension(cls, value: Mapping[str, Any]) -> AfterCompensation:
        return cls(
            action=Continuation(value["action"]),
            pointer=value.get("pointer"),
            interval=value.get("interval"),
            max_retries=value.get("max_retries"),
        )


def is_saga(step: WorkflowStep) -> bool:
    return step.body.is_saga


def in_saga(run: InstanceRun, p: ExecutionPointer) -> bool:
    return any(is_saga(run.state.step(run.state.pointers[s])) for s in p.scope)


def compensate(run: InstanceRun, p: ExecutionPointer, step: WorkflowStep) -> None:
    state = run.state
    now = run.now()
    chain: list[ExecutionPointer] = []
    state.end(p, PointerStatus.FAILED, now)
    if step.compensation_step_id is not None:
        chain.append(p)
    after: AfterCompensation | None = None
    inside_saga = False
    for scope_id in p.scope:
        container = state.pointers[scope_id]
        cstep = state.step(container)
        if not is_saga(cstep):
            continue
        inside_saga = True
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
            after = AfterCompensation(
                action=Continuation.RETRY,
                pointer=container.id,
                interval=behavior.interval.total_seconds(),
                max_retries=behavior.max_retries,
            )
            break
        if kind is ErrorBehaviorType.TERMINATE:
            after = AfterCompensation(action=Continuation.TERMINATE)
            break
        if kind is ErrorBehaviorType.SUSPEND:
            after = AfterCompensation(action=Continuation.SUSPEND, pointer=container.id)
            break
        if cstep.compensation_step_id is not None:
            chain.append(container)
            after = AfterCompensation(action=Continuation.RESUME, pointer=container.id)
            break
        # A saga without its own handler: the failure moves to the enclosing scope.
    if inside_saga and after is None:
        _end_enclosing(run, p, now)
    if not inside_saga and step.compensation_step_id is not None:
        after = AfterCompensation(action=Continuation.RESUME, pointer=p.id)
    _start_chain(run, chain, after)


def _end_enclosing(run: InstanceRun, p: ExecutionPointer, now: datetime) -> None:
    """No saga on the way up handles the failure: the flow it broke does not go on.

    Every container around the failed saga ends FAILED and its other open pointers are
    cancelled, so an ``if`` or ``parallel`` around it does not carry on after it and a
    ``while`` does not run its body again (forever, when its counter comes after the
    saga). At the top level that is what an unhandled saga failure always did: the
    steps after it never run. The compensations, started next, still run.
    """
    state = run.state
    for scope_id in p.scope:
        container = state.pointers[scope_id]
        if container.end_time is not None:
            continue
        for x in state.descendants(container.id):
            if x.end_time is None:
                cancel_pointer(run, x, now)
        state.end(container, PointerStatus.FAILED, now)


def _start_chain(
    run: InstanceRun, chain: list[ExecutionPointer], after: AfterCompensation | None
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
    if after is None:
        return
    if previous is None:
        apply_after_compensation(run, after)
    else:
        previous.extension[AFTER_COMPENSATION] = after.to_extension()
        state.touch(previous)


def continuation_of(p: ExecutionPointer) -> AfterCompensation | None:
    """The continuation stored on a compensation pointer, if it is the chain's last."""
    value = p.extension.get(AFTER_COMPENSATION)
    return None if value is None else AfterCompensation.from_extension(value)


def apply_after_compensation(run: InstanceRun, after: AfterCompensation) -> None:
    state = run.state
    if after.action is Continuation.TERMINATE:
        finish_workflow(run, WorkflowStatus.TERMINATED)
        return
    assert after.pointer is not None
    target = state.pointers[after.pointer]
    if after.action is Continuation.RESUME:
        follow_outcomes(run, target, state.step(target), None)
        return
    retry_count = target.retry_count + 1
    action = after.action
    exhausted = after.max_retries is not None and retry_count > after.max_retries
    if action is Continuation.RETRY and exhausted:
        action = Continuation.SUSPEND
    sleep_until = None
    if action is Continuation.RETRY:
        sleep_until = run.now() + timedelta(seconds=float(after.interval or 0))
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
    if action is Continuation.SUSPEND:
        suspend_workflow(run)
