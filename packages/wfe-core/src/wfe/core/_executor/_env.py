"""What an instance run needs from its host."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs

from .._clock import Clock
from .._lifecycle import LifecycleEvent
from .._results import ExecutionResult
from .._step import LogSink, StepBody, StepExecutionContext, WorkflowServices

if TYPE_CHECKING:
    from .._models import EventSubscription, WorkflowInstance
    from ..protocols import PersistenceProvider

StepMiddleware = Callable[
    [StepExecutionContext, StepBody, Callable[[], Awaitable[ExecutionResult | None]]],
    Awaitable[ExecutionResult | None],
]
"""``async def mw(ctx, body, next) -> ExecutionResult | None``: wraps each step body run."""


def _discard(_event: LifecycleEvent) -> None:
    return None


async def _noop_subs(_subs: list[EventSubscription]) -> None:
    return None


async def _noop_finished(_instance: WorkflowInstance) -> None:
    return None


@attrs.define(kw_only=True)
class ExecutorEnv:
    """Collaborators of :class:`InstanceRun`, supplied by the host."""

    persistence: PersistenceProvider
    clock: Clock
    publish: Callable[[LifecycleEvent], None] = _discard
    log_sink: LogSink | None = None
    services: WorkflowServices | None = None
    step_middleware: Sequence[StepMiddleware] = ()
    max_parallel_steps: int = 16
    hold_window: timedelta = timedelta(seconds=1)
    on_subscribed: Callable[[list[EventSubscription]], Awaitable[None]] = _noop_subs
    on_finished: Callable[[WorkflowInstance], Awaitable[None]] = _noop_finished
    tracer: Any = None
