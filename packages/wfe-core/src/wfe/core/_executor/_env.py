"""What an instance run needs from its host."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs

from .._clock import Clock
from .._lifecycle import LifecycleEvent
from .._results import ExecutionResult
from .._step import LogSink, StepBody, StepExecutionContext, WorkflowServices

if TYPE_CHECKING:
    from .._models import Event, EventSubscription, WorkflowInstance
    from ..protocols import PersistenceProvider

StepMiddleware = Callable[
    [StepExecutionContext, StepBody, Callable[[], Awaitable[ExecutionResult | None]]],
    Awaitable[ExecutionResult | None],
]
"""``async def mw(ctx, body, next) -> ExecutionResult | None``: wraps each step body run."""


def _discard(_event: LifecycleEvent) -> None:
    return None


async def _noop_subs(_subs: list[EventSubscription], _found: Mapping[str, str] | None) -> None:
    return None


async def _noop_finished(_instance: WorkflowInstance, _events: list[Event]) -> None:
    return None


async def _no_events(_instance: WorkflowInstance) -> list[Event]:
    return []


@attrs.define(kw_only=True)
class ExecutorEnv:
    """Collaborators of :class:`InstanceRun`, supplied by the host."""

    persistence: PersistenceProvider
    clock: Clock
    publish: Callable[[LifecycleEvent], None] = _discard
    log_sink: LogSink | None = None
    services: WorkflowServices | None = None
    step_middleware: Sequence[StepMiddleware] = ()
    step_log: Callable[[StepExecutionContext, str, str], None] | None = None
    """Called with each line a step body sends to ``ctx.log`` (its context, stream and
    line), after the sink every step middleware installed: the innermost sink, at no
    cost of a middleware layer per step."""
    max_parallel_steps: int = 16
    hold_window: timedelta = timedelta(seconds=1)
    on_subscribed: Callable[
        [list[EventSubscription], Mapping[str, str] | None], Awaitable[None]
    ] = _noop_subs
    """After a checkpoint that opened subscriptions is stored (hand them pending events),
    with what the store found pending for them in that checkpoint (see
    ``pending_in_checkpoints``; ``None``: not looked for)."""
    pending_in_checkpoints: bool = False
    """Whether ``persistence`` finds the pending events of the subscriptions a checkpoint
    opens in the checkpoint's own transaction
    (:class:`~wfe.core.protocols.PendingInCheckpoints`, switched on)."""
    finish_events: Callable[[WorkflowInstance], Awaitable[list[Event]]] = _no_events
    """Events a finishing instance publishes, stored with its final checkpoint (a
    finished child's notice to a waiting parent), so no crash separates the two."""
    on_finished: Callable[[WorkflowInstance, list[Event]], Awaitable[None]] = _noop_finished
    """After the final checkpoint is stored, with the events it stored."""
    tracer: Any = None
