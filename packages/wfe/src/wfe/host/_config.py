"""Host settings collected by :class:`WorkflowHostBuilder`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs

from wfe.core import Clock, SystemClock
from wfe.core.executor import LogSink, StepMiddleware

from ._steplogs import StepLogLimits

WorkflowMiddleware = Any
"""See :mod:`wfe.host._middleware` for the phases and signatures."""


@attrs.define(kw_only=True)
class HostConfig:
    """Everything a :class:`WorkflowHost` is built from."""

    persistence: Any = "memory://"
    persistence_options: dict[str, Any] = attrs.field(factory=dict)
    locks: Any = None
    locks_options: dict[str, Any] = attrs.field(factory=dict)
    queues: Any = None
    queues_options: dict[str, Any] = attrs.field(factory=dict)
    search: Any = None
    search_options: dict[str, Any] = attrs.field(factory=dict)
    publishers: list[Any] = attrs.field(factory=list)
    definitions: list[Any] = attrs.field(factory=list)
    step_middleware: list[StepMiddleware] = attrs.field(factory=list)
    workflow_middleware: dict[str, list[WorkflowMiddleware]] = attrs.field(factory=dict)
    run_workflows: bool = True
    eager_start: bool = True
    max_concurrent_workflows: int = 16
    max_parallel_steps: int = 16
    # Events delivered at once: each delivery is a chain of short store round trips,
    # so more of them in flight share group commits (measured: 16 cut event latency by
    # about a third against 4 with 100 waiting workflows, tools/bench/bench.py event).
    event_workers: int = 16
    poll_interval: timedelta = timedelta(seconds=10)
    lease_ttl: timedelta = timedelta(seconds=30)
    grace_period: timedelta = timedelta(seconds=30)
    clock: Clock = attrs.field(factory=SystemClock)
    log_sink: LogSink | None = None
    lifecycle_history: int = 10_000
    tracer_provider: Any = None
    step_log_limits: StepLogLimits = attrs.field(factory=StepLogLimits)
