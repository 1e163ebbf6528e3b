"""Fluent configuration of a :class:`WorkflowHost`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Self

from wfe.core import Clock, ConfigurationError
from wfe.core.executor import LogSink, StepMiddleware

from ._config import HostConfig
from ._host import WorkflowHost
from ._steplogs import StepLogLimits


class WorkflowHostBuilder:
    """Collects providers, definitions and options, then :meth:`build` a host.

    Providers are given as URLs (resolved through entry points by scheme) or as
    provider objects (an object always wins). Locks, queues and search default to the
    persistence provider's own; persistence defaults to ``memory://``.
    """

    def __init__(self) -> None:
        self._config = HostConfig()

    def persistence(self, provider: Any, **options: Any) -> Self:
        """The store of record: ``sqlite:///wfe.db``, ``postgresql://...``, or an object."""
        self._config.persistence = provider
        self._config.persistence_options = options
        return self

    def locks(self, provider: Any, **options: Any) -> Self:
        """The distributed lock provider (default: the persistence provider's own)."""
        self._config.locks = provider
        self._config.locks_options = options
        return self

    def queues(self, provider: Any, **options: Any) -> Self:
        """The queue provider (default: the persistence provider's own)."""
        self._config.queues = provider
        self._config.queues_options = options
        return self

    def search(self, provider: Any, **options: Any) -> Self:
        """The search index (default: the persistence provider's own)."""
        self._config.search = provider
        self._config.search_options = options
        return self

    def lifecycle_publisher(self, publisher: Any) -> Self:
        """Also send every lifecycle event to ``publisher.publish(event)`` (in order)."""
        self._config.publishers.append(publisher)
        return self

    def register(self, definition: Any) -> Self:
        """Register a workflow definition (or a compiled YAML workflow)."""
        self._config.definitions.append(definition)
        return self

    def use_step_middleware(self, middleware: StepMiddleware) -> Self:
        """Wrap every step body run: ``async def mw(ctx, body, next)``; the first
        registered is the outermost."""
        self._config.step_middleware.append(middleware)
        return self

    def use_workflow_middleware(self, phase: str, middleware: Any = None) -> Any:
        """Run ``middleware`` in a workflow phase (``pre``, ``execute``, ``post``)."""
        if phase not in ("pre", "execute", "post"):
            raise ConfigurationError(
                f"unknown workflow middleware phase {phase!r}; use 'pre', 'execute' or 'post'"
            )

        def add(fn: Any) -> Any:
            self._config.workflow_middleware.setdefault(phase, []).append(fn)
            return fn

        if middleware is None:
            return add
        add(middleware)
        return self

    def run_workflows(self, enabled: bool = True) -> Self:
        """With ``False`` the host is a client: it can start, publish, read, suspend,
        resume and terminate workflows in the store, but consumes no queue and runs no
        workflow (so it need not know every stored workflow's definition)."""
        self._config.run_workflows = enabled
        return self

    def eager_start(self, enabled: bool = True) -> Self:
        """On (the default), a workflow this host starts runs here at once while it has
        a free workflow slot, and an event it publishes is delivered by it at once: no
        queue round trip. Off, every start and event goes through the queue, taken by
        whichever host of a fleet is first. (A host that only starts workflows for a
        fleet is better made a client: ``run_workflows(False)``.)"""
        self._config.eager_start = enabled
        return self

    def max_concurrent_workflows(self, n: int) -> Self:
        """How many workflows this host runs at once."""
        if n < 1:
            raise ConfigurationError(f"max_concurrent_workflows must be >= 1, got {n}")
        self._config.max_concurrent_workflows = n
        return self

    def max_parallel_steps(self, n: int) -> Self:
        """How many steps of one workflow run at once (parallel branches, for-each)."""
        if n < 1:
            raise ConfigurationError(f"max_parallel_steps must be >= 1, got {n}")
        self._config.max_parallel_steps = n
        return self

    def poll_interval(self, interval: timedelta) -> Self:
        """How often the store is polled for due work queue items may have missed."""
        if interval <= timedelta(0):
            raise ConfigurationError(f"poll_interval must be positive, got {interval}")
        self._config.poll_interval = interval
        return self

    def lease_ttl(self, ttl: timedelta) -> Self:
        """How long a workflow lease lasts without renewal (a dead host's work waits this)."""
        if ttl <= timedelta(0):
            raise ConfigurationError(f"lease_ttl must be positive, got {ttl}")
        self._config.lease_ttl = ttl
        return self

    def grace_period(self, grace: timedelta) -> Self:
        """How long leaving the host waits for in-flight steps."""
        self._config.grace_period = grace
        return self

    def clock(self, clock: Clock) -> Self:
        """The time source (``TrioClock()`` with trio's MockClock gives virtual time)."""
        self._config.clock = clock
        return self

    def log_sink(self, sink: LogSink) -> Self:
        """Receives ``(stream, line)`` of step output (shell and Deno steps stream here)."""
        self._config.log_sink = sink
        return self

    def step_log_limits(self, *, max_lines: int = 10_000, max_line_length: int = 8_192) -> Self:
        """How much output of each step attempt is kept in a store that keeps step logs
        (``max_lines=0``: none)."""
        if max_lines < 0 or max_line_length < 1:
            raise ConfigurationError("step_log_limits: max_lines >= 0, max_line_length >= 1")
        self._config.step_log_limits = StepLogLimits(
            max_lines=max_lines, max_line_length=max_line_length
        )
        return self

    def tracer_provider(self, provider: Any) -> Self:
        """The OpenTelemetry tracer provider (default: the global one)."""
        self._config.tracer_provider = provider
        return self

    def build(self) -> WorkflowHost:
        """A new host; enter it with ``async with``."""
        return WorkflowHost(self._config)
