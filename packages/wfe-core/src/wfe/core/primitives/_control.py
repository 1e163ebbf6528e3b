"""Control-flow primitives: if, while, for-each, decide, switch/when, end."""

from __future__ import annotations

from typing import Any, ClassVar

from .._results import ExecutionResult
from .._step import StepBody, StepExecutionContext
from ._container import CHILDREN_ACTIVE, ContainerStep, children_active, wait_children


class If(ContainerStep):
    """Runs its branch once when ``condition`` holds."""

    condition: Any = False

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        if not children_active(ctx):
            if self.condition:
                return ExecutionResult.branch([ctx.item], {CHILDREN_ACTIVE: True})
            return ExecutionResult.next()
        return wait_children(ctx)


class While(ContainerStep):
    """Runs its branch again and again while ``condition`` (an input, re-read each time) holds."""

    condition: Any = False

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        if children_active(ctx):
            waiting = wait_children(ctx)
            if waiting is not None:
                return waiting
        if self.condition:
            return ExecutionResult.branch([ctx.item], {CHILDREN_ACTIVE: True})
        return ExecutionResult.next()


class ForEach(ContainerStep):
    """Runs its branch once per item (``ctx.item``): all at once, or one after another."""

    collection: Any = ()
    run_parallel: bool = True

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        state = ctx.persistence_data if isinstance(ctx.persistence_data, dict) else None
        if state is None:
            items = list(self.collection or ())
            if not items:
                return ExecutionResult.next()
            if self.run_parallel:
                return ExecutionResult.branch(items, {CHILDREN_ACTIVE: True})
            return ExecutionResult.branch(
                [items[0]], {CHILDREN_ACTIVE: True, "items": items, "index": 0}
            )
        waiting = wait_children(ctx, **{k: v for k, v in state.items() if k != CHILDREN_ACTIVE})
        if waiting is not None:
            return waiting
        if "items" in state:
            index = int(state["index"]) + 1
            items = state["items"]
            if index < len(items):
                return ExecutionResult.branch(
                    [items[index]], {CHILDREN_ACTIVE: True, "items": items, "index": index}
                )
        return ExecutionResult.next()


class Decide(StepBody):
    """Follows the outcome edges whose value equals ``value``."""

    replayable = True
    value: Any = None

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        return ExecutionResult.outcome(self.value)


class Switch(ContainerStep):
    """Runs every ``when`` case whose value equals the previous step's outcome."""

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        if not children_active(ctx):
            value = None
            if ctx.pointer.predecessor_id is not None:
                pred = ctx.lookup_pointer(ctx.pointer.predecessor_id)
                value = pred.outcome if pred is not None else None
            return ExecutionResult.branch([ctx.item], {CHILDREN_ACTIVE: True, "value": value})
        return wait_children(ctx, value=ctx.persistence_data.get("value"))


class When(ContainerStep):
    """One case of a :class:`Switch`: runs its block when ``case_value`` matches."""

    case_value: ClassVar[Any]

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        if not children_active(ctx):
            switch = ctx.lookup_pointer(ctx.pointer.scope[0]) if ctx.pointer.scope else None
            state = switch.persistence_data if switch is not None else None
            value = state.get("value") if isinstance(state, dict) else None
            case = type(self).case_value
            expected = case(ctx.workflow.data) if callable(case) else case
            if expected == value:
                return ExecutionResult.branch([ctx.item], {CHILDREN_ACTIVE: True})
            return ExecutionResult.next()
        return wait_children(ctx)


class EndWorkflow(StepBody):
    """Completes the workflow at once; nothing after it runs."""

    replayable = True
    ends_workflow = True

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        return ExecutionResult.next()
