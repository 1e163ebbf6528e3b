"""Time primitives: delay, recur, schedule."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .._results import ExecutionResult
from .._step import StepBody, StepExecutionContext
from ._container import CHILDREN_ACTIVE, ContainerStep, children_active, wait_children


class Delay(StepBody):
    """Sleeps for ``duration`` (a timer wakes it; a restart loses nothing)."""

    replayable = True
    duration: timedelta = timedelta(0)

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        if ctx.persistence_data is None and self.duration > timedelta(0):
            return ExecutionResult.sleep(self.duration, {"slept": True})
        return ExecutionResult.next()


class Recur(ContainerStep):
    """Runs its block every ``interval`` until ``stop`` holds, then continues."""

    interval: timedelta = timedelta(seconds=1)
    stop: Any = False

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        if self.stop:
            return ExecutionResult.next()
        return ExecutionResult(
            proceed=False,
            branch_values=(ctx.item,),
            sleep_for=self.interval,
            persistence_data={"recurring": True},
        )


class Schedule(ContainerStep):
    """Waits ``interval``, runs its block once, then continues."""

    interval: timedelta = timedelta(0)

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        state = ctx.persistence_data
        if state is None:
            return ExecutionResult.sleep(self.interval, {"elapsed": False})
        if not children_active(ctx):
            return ExecutionResult.branch([ctx.item], {CHILDREN_ACTIVE: True, "elapsed": True})
        return wait_children(ctx, elapsed=True)
