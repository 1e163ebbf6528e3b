"""Base of container steps: steps that run child branches and wait for them."""

from __future__ import annotations

from typing import Any

from .._results import ExecutionResult
from .._step import StepBody, StepExecutionContext

CHILDREN_ACTIVE = "children_active"


def children_active(ctx: StepExecutionContext) -> bool:
    data = ctx.persistence_data
    return isinstance(data, dict) and bool(data.get(CHILDREN_ACTIVE))


def wait_children(ctx: StepExecutionContext, **extra: Any) -> ExecutionResult | None:
    """While children run, keep waiting; ``None`` once every child has ended."""
    if ctx.is_branch_complete():
        return None
    return ExecutionResult.persist({CHILDREN_ACTIVE: True, **extra})


class ContainerStep(StepBody):
    """A step with children; the executor re-runs it when all its children have ended."""

    is_container = True
    replayable = True


class Sequence(ContainerStep):
    """Runs its child branch once, then continues."""

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        if not children_active(ctx):
            return ExecutionResult.branch([ctx.item], {CHILDREN_ACTIVE: True})
        return wait_children(ctx)


class Saga(Sequence):
    """A sequence whose failure compensates every completed step inside it."""

    is_saga = True
