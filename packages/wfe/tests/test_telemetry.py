"""OpenTelemetry: a span per execution pass, a child span per step, errors recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
import trio
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from wfe.core import (
    ErrorBehavior,
    PointerStatus,
    StepError,
    StepExecutionContext,
    WorkflowBuilder,
    WorkflowStatus,
)
from wfe.core._telemetry import get_tracer

from .conftest import HostFactory


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


def named(spans: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith(prefix)]


async def test_pass_and_step_spans_with_attributes(
    host_factory: HostFactory, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Each step span is a child of its pass span and carries ids, name and status."""
    user_spans: list[str] = []

    def charge(ctx: StepExecutionContext) -> None:
        # A span the step itself opens nests under the step span.
        with trace.get_tracer("user", tracer_provider=provider).start_as_current_span("inner"):
            user_spans.append("inner")

    definition = (
        WorkflowBuilder(dict)
        .start_with(charge)
        .name("charge")
        .then(lambda ctx: None)
        .name("ship")
        .build("traced", 3)
    )
    async with host_factory(definition, configure=lambda b: b.tracer_provider(provider)) as host:
        wid = await host.start_workflow("traced", 3, {}, reference="R-1")
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    spans = exporter.get_finished_spans()
    passes = named(spans, "wfe.workflow.execute")
    assert passes
    first_pass = passes[0]
    assert first_pass.attributes is not None
    assert first_pass.attributes["wfe.workflow.id"] == wid
    assert first_pass.attributes["wfe.workflow.definition_id"] == "traced"
    assert first_pass.attributes["wfe.workflow.version"] == 3
    assert first_pass.attributes["wfe.workflow.reference"] == "R-1"
    assert passes[-1].attributes is not None
    assert passes[-1].attributes["wfe.workflow.status"] == WorkflowStatus.COMPLETE.value

    steps = {s.name: s for s in named(spans, "wfe.step ")}
    assert set(steps) == {"wfe.step charge", "wfe.step ship"}
    pass_ids = {p.context.span_id for p in passes if p.context is not None}
    pointers = {p.step_name: p for p in instance.execution_pointers}
    for name, span in [("charge", steps["wfe.step charge"]), ("ship", steps["wfe.step ship"])]:
        assert span.parent is not None
        assert span.parent.span_id in pass_ids
        assert span.context is not None
        assert span.parent.trace_id == span.context.trace_id
        attrs = span.attributes
        assert attrs is not None
        assert attrs["wfe.step.name"] == name
        assert attrs["wfe.step.id"] == pointers[name].step_id
        assert attrs["wfe.pointer.id"] == pointers[name].id
        assert attrs["wfe.workflow.id"] == wid
        assert attrs["wfe.step.status"] == WorkflowStatus.COMPLETE.value
        assert span.status.status_code is StatusCode.UNSET

    (inner,) = named(spans, "inner")
    charge_span = steps["wfe.step charge"]
    assert inner.parent is not None
    assert charge_span.context is not None
    assert inner.parent.span_id == charge_span.context.span_id
    assert user_spans == ["inner"]


async def test_failing_step_span_records_error(
    host_factory: HostFactory, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A failed step's span has status ERROR and the exception as an event."""

    def boom(ctx: StepExecutionContext) -> None:
        raise StepError("card declined")

    definition = (
        WorkflowBuilder(dict)
        .start_with(boom)
        .name("charge")
        .on_error(ErrorBehavior.suspend())
        .build("traced-error", 1)
    )
    async with host_factory(definition, configure=lambda b: b.tracer_provider(provider)) as host:
        wid = await host.start_workflow("traced-error", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.SUSPENDED
    (span,) = named(exporter.get_finished_spans(), "wfe.step charge")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description is not None
    assert "card declined" in span.status.description
    (event,) = [e for e in span.events if e.name == "exception"]
    assert event.attributes is not None
    assert str(event.attributes["exception.type"]).endswith("StepError")
    assert event.attributes["exception.message"] == "card declined"
    assert span.attributes is not None
    assert span.attributes["wfe.step.status"] == PointerStatus.FAILED.value


async def test_event_resumed_step_is_child_of_its_own_pass(
    host_factory: HostFactory, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A step started after an event arrives belongs to a pass of the same workflow."""
    definition = (
        WorkflowBuilder(dict)
        .wait_for("go", lambda data, ctx: ctx.workflow.id)
        .name("wait")
        .then(lambda ctx: None)
        .name("after")
        .build("traced-event", 1)
    )
    async with host_factory(
        definition,
        configure=lambda b: b.tracer_provider(provider).poll_interval(timedelta(seconds=1)),
    ) as host:
        wid = await host.start_workflow("traced-event", 1, {})
        with trio.fail_after(10):
            while not named(exporter.get_finished_spans(), "wfe.step wait"):
                await trio.sleep(0.01)
        await host.publish_event("go", wid)
        await host.wait_for_workflow(wid, timeout=10)
    spans = exporter.get_finished_spans()
    passes = {
        p.context.span_id: p for p in named(spans, "wfe.workflow.execute") if p.context is not None
    }
    (after,) = named(spans, "wfe.step after")
    assert after.parent is not None
    parent = passes[after.parent.span_id]
    assert parent.attributes is not None
    assert parent.attributes["wfe.workflow.id"] == wid


def test_default_tracer_is_the_global_one() -> None:
    """Without a provider, the global tracer (a no-op without an SDK) is used, and its
    spans do not record."""
    tracer = get_tracer(None)
    with tracer.start_as_current_span("x") as span:
        assert isinstance(span, trace.Span)
    assert get_tracer(TracerProvider()) is not None
