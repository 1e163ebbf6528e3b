"""OpenTelemetry spans for execution passes and steps (``opentelemetry-api`` only).

One span per execution pass of an instance (``wfe.workflow.execute``) and, as its
children, one span per step run (``wfe.step <name>``). Without an SDK the API hands
out non-recording spans; attributes are only built when ``span.is_recording()``, so
tracing costs a few microseconds per step when nobody listens.

The step span is parented explicitly on the pass span (not on whatever span is
current) because a step task may be started from another task, such as the one
delivering an event, whose context does not hold the pass span.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import trio
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode, Tracer

if TYPE_CHECKING:
    from ._models import ExecutionPointer, WorkflowInstance
    from ._step import WorkflowStep

TRACER_NAME = "wfe"
PASS_SPAN = "wfe.workflow.execute"
STEP_SPAN_PREFIX = "wfe.step"


def get_tracer(provider: Any = None) -> Tracer:
    """The wfe tracer from ``provider`` (a ``TracerProvider``), else the global one."""
    if provider is not None:
        tracer: Tracer = provider.get_tracer(TRACER_NAME)
        return tracer
    return trace.get_tracer(TRACER_NAME)


@contextmanager
def pass_span(tracer: Tracer | None, instance: WorkflowInstance) -> Iterator[Span]:
    """A current span around one execution pass of ``instance``."""
    if tracer is None:
        yield trace.INVALID_SPAN
        return
    span = tracer.start_span(PASS_SPAN, kind=trace.SpanKind.INTERNAL)
    if span.is_recording():
        span.set_attributes(
            {
                "wfe.workflow.id": instance.id,
                "wfe.workflow.definition_id": instance.definition_id,
                "wfe.workflow.version": instance.version,
            }
        )
        if instance.reference is not None:
            span.set_attribute("wfe.workflow.reference", instance.reference)
    with _used(span):
        yield span
        if span.is_recording():
            span.set_attribute("wfe.workflow.status", instance.status.value)


@contextmanager
def step_span(
    tracer: Tracer | None,
    parent: Span | None,
    instance: WorkflowInstance,
    step: WorkflowStep,
    pointer: ExecutionPointer,
) -> Iterator[Span]:
    """A current span around one step run, a child of the pass span ``parent``.

    On exit it carries the pointer's resulting status (``wfe.step.status``).
    """
    if tracer is None or (parent is not None and not parent.get_span_context().is_valid):
        # No tracing (or a pass span from a no-op tracer, as without an SDK, whose
        # children would be no-ops too): skip the span machinery, ~10 µs a step.
        yield trace.INVALID_SPAN
        return
    context = trace.set_span_in_context(parent) if parent is not None else None
    span = tracer.start_span(
        f"{STEP_SPAN_PREFIX} {step.display_name}", context=context, kind=trace.SpanKind.INTERNAL
    )
    if span.is_recording():
        span.set_attributes(
            {
                "wfe.workflow.id": instance.id,
                "wfe.step.id": step.id,
                "wfe.step.name": step.display_name,
                "wfe.pointer.id": pointer.id,
                "wfe.pointer.retry_count": pointer.retry_count,
            }
        )
    with _used(span):
        yield span
        if span.is_recording():
            span.set_attribute("wfe.step.status", pointer.status.value)
            if pointer.outcome is not None:
                span.set_attribute("wfe.step.outcome", str(pointer.outcome))


@contextmanager
def _used(span: Span) -> Iterator[None]:
    """Make ``span`` current and end it on exit; an exception marks it failed, a
    cancellation (a stopped workflow, a draining host) does not."""
    with trace.use_span(
        span, end_on_exit=True, record_exception=False, set_status_on_exception=False
    ):
        try:
            yield
        except trio.Cancelled:
            if span.is_recording():
                span.set_attribute("wfe.cancelled", True)
            raise
        except Exception as exc:
            record_step_error(span, exc)
            raise


def record_step_error(span: Span, exc: BaseException) -> None:
    """Mark a span failed with ``exc`` (exception event + status ERROR)."""
    if span.is_recording():
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
