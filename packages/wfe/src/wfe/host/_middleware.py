"""Workflow middleware: code the host runs around a workflow's life, by phase.

Registered with ``WorkflowHostBuilder.use_workflow_middleware(phase, fn)`` (or as a
decorator, ``@builder.use_workflow_middleware(phase)``). Within a phase, the first
registered runs first (for ``execute``: is the outermost). Each function may be
sync or async.

``pre`` — ``async def mw(instance: WorkflowInstance) -> None``
    Runs once per workflow, in ``start_workflow``, before the instance is stored
    (so before its first step). It may change ``instance.data`` (or
    ``instance.reference``/``description``); the result must still be storable. To
    reject the start, raise: the exception propagates from ``start_workflow``
    unchanged and nothing is stored.

``execute`` — ``async def mw(instance: WorkflowInstance, next: NextPass) -> None``
    (``NextPass = Callable[[], Awaitable[None]]``)
    Wraps each execution pass of an instance on this host (a pass runs the
    instance's runnable steps while the host holds its lease). Call ``await next()``
    to run the pass; code before and after it runs around the pass (a context
    variable, a log context, a timer). Not calling ``next`` skips the pass; the
    instance stays due and the runnable poller offers it again. An exception is
    recorded as an ``ExecutionError`` and a ``WorkflowError`` event, and the instance
    is retried with backoff.

``post`` — ``async def mw(instance: WorkflowInstance) -> None``
    Runs once after the workflow completes or is terminated, on the host that
    finished it, with the final instance. An exception is logged and recorded as
    an ``ExecutionError`` and a ``WorkflowError`` event; it does not affect the
    workflow or the host. It runs after the final state is stored but is not
    itself durable: if the host dies in between, it does not run.
"""

from __future__ import annotations

import inspect
import logging
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from wfe.core import WfeError, WorkflowInstance
from wfe.core.executor import error_records
from wfe.core.protocols import Checkpoint

if TYPE_CHECKING:
    from ._services import HostServices

log = logging.getLogger("wfe.host")

PHASES = ("pre", "execute", "post")

PreMiddleware = Callable[[WorkflowInstance], Awaitable[None] | None]
ExecuteMiddleware = Callable[
    [WorkflowInstance, Callable[[], Awaitable[None]]], Awaitable[None] | None
]
PostMiddleware = Callable[[WorkflowInstance], Awaitable[None] | None]


async def _call(fn: Callable[..., Any], *args: Any) -> None:
    outcome = fn(*args)
    if inspect.isawaitable(outcome):
        await outcome


def middleware_name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", None) or type(fn).__qualname__)


async def run_pre(middleware: Sequence[PreMiddleware], instance: WorkflowInstance) -> None:
    """Run the ``pre`` phase in order; an exception rejects the start."""
    for mw in middleware:
        await _call(mw, instance)


async def run_execute(
    middleware: Sequence[ExecuteMiddleware],
    instance: WorkflowInstance,
    body: Callable[[], Awaitable[None]],
) -> None:
    """Run ``body`` (one execution pass) wrapped by the ``execute`` phase, first outermost."""

    async def call(i: int) -> None:
        if i == len(middleware):
            await body()
            return
        await _call(middleware[i], instance, lambda: call(i + 1))

    await call(0)


class PostRunner:
    """Runs the ``post`` phase at most once per finished instance object.

    A run may persist its finished instance more than once (say, after a cancelled
    step is recorded); the instance object is the same, so a weak map of the ones
    already handled (by object identity: instances are unhashable) keeps the phase
    to one call without growing with history.
    """

    def __init__(self, services: HostServices, middleware: Sequence[PostMiddleware]) -> None:
        self._services = services
        self._middleware = list(middleware)
        self._done: weakref.WeakValueDictionary[int, WorkflowInstance] = (
            weakref.WeakValueDictionary()
        )

    async def __call__(self, instance: WorkflowInstance) -> None:
        if not self._middleware or self._done.get(id(instance)) is instance:
            return
        self._done[id(instance)] = instance
        for mw in self._middleware:
            try:
                await _call(mw, instance)
            except Exception as exc:
                message = middleware_failure("post", exc, mw)
                log.error("workflow %s: %s", instance.id, message, exc_info=exc)
                await record_error(self._services, instance, message)


def middleware_failure(phase: str, exc: Exception, mw: Any = None) -> str:
    """The error message for a failed workflow middleware."""
    name = f" {middleware_name(mw)!r}" if mw is not None else ""
    return f"workflow {phase} middleware{name} failed: {type(exc).__name__}: {exc}"


async def record_error(services: HostServices, instance: WorkflowInstance, message: str) -> None:
    """Record ``message`` as an ``ExecutionError`` and a ``WorkflowError`` event, for a
    finished instance (nothing else of it changes: the row is written as it is)."""
    error, event = error_records(instance, None, message, services.clock.now())
    try:
        await services.persistence.persist_checkpoint(Checkpoint(instance=instance, errors=[error]))
    except WfeError:
        log.exception("workflow %s: could not record: %s", instance.id, message)
    services.publish(event)
