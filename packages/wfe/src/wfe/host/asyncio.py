"""Step bodies written for asyncio libraries, run inside the trio host (``wfe[asyncio]``).

Subclass :class:`AsyncioStepBody` and implement ``async def run_asyncio(self, ctx)``
(or wrap an ``async def fn(ctx)`` with :func:`asyncio_step`). The coroutine runs as
an asyncio task on an asyncio event loop provided by trio-asyncio, so
``asyncio.get_running_loop()``, ``asyncio.open_connection`` and asyncio client
libraries work; trio cancellation (a terminated workflow, a draining host) cancels
the asyncio task.

Each step run opens its own loop (``trio_asyncio.open_loop()``) and closes it when
the step ends, so nothing asyncio-bound outlives a step: measured ~0.3 ms per step
for the loop against ~0.05 ms for a call on an already open loop — small next to a
step checkpoint, and it needs no hook in the host. Create asyncio clients inside
``run_asyncio``, not at import time or across steps.

Import-order trap: importing ``trio_asyncio`` patches asyncio for the whole process
(every later ``asyncio.run()`` runs on its loop), and some asyncio libraries
(psycopg's and opensearch-py's async parts) must be imported *after* it. This
module imports it lazily, on the first asyncio step run; call :func:`prepare` at
program start to import it early and on purpose instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any, ClassVar

from wfe.core import (
    ConfigurationError,
    DefinitionError,
    ExecutionResult,
    StepBody,
    StepExecutionContext,
)

__all__ = ["AsyncioStepBody", "asyncio_step", "prepare"]

AsyncioStepFunction = Callable[[StepExecutionContext], Awaitable[ExecutionResult | None]]


def prepare() -> ModuleType:
    """Import ``trio_asyncio`` now (it patches asyncio process-wide); returns it.

    Raises :class:`ConfigurationError` naming the extra to install when it is missing.
    """
    try:
        return importlib.import_module("trio_asyncio")
    except ImportError as exc:
        from wfe.core.installation import install_command

        raise ConfigurationError(
            "asyncio step bodies need trio-asyncio: " + install_command("wfe[asyncio]")
        ) from exc


class AsyncioStepBody(StepBody):
    """A step whose body runs on an asyncio event loop; implement :meth:`run_asyncio`."""

    async def run_asyncio(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        """The step's work, as asyncio code; return how to proceed (``None`` = next)."""
        raise DefinitionError(f"{type(self).__qualname__} must implement run_asyncio(self, ctx)")

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        trio_asyncio = prepare()
        result: ExecutionResult | None = None
        error: Exception | None = None
        async with trio_asyncio.open_loop() as loop:
            # Caught inside: escaping the loop's nursery would wrap the step's own
            # error in an ExceptionGroup and hide it from the error record.
            try:
                result = await trio_asyncio.aio_as_trio(self.run_asyncio, loop=loop)(ctx)
            except Exception as exc:
                error = exc
        if error is not None:
            raise error
        return result


class _FunctionAsyncioStep(AsyncioStepBody):
    fn: ClassVar[AsyncioStepFunction]

    async def run_asyncio(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        return await type(self).fn(ctx)


def asyncio_step(fn: AsyncioStepFunction) -> type[AsyncioStepBody]:
    """Make a step type from an asyncio ``async def fn(ctx)``: ``.then(asyncio_step(fn))``."""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "function")
    attrs: dict[str, Any] = {
        "fn": staticmethod(fn),
        "default_name": getattr(fn, "__name__", "function"),
        "__module__": getattr(fn, "__module__", __name__),
    }
    return type(f"AsyncioStep[{name}]", (_FunctionAsyncioStep,), attrs)
