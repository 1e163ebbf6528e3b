"""A workflow whose steps use ``needs`` or ``matrix``, compiled onto the engine's own
primitives (no executor of its own):

.. code-block:: text

    while_do(a round can start)                      "(graph loop)"
      for_each(seed in the round's seeds)            "(graph round)"
        while_do(the worker takes units)             "(graph worker)"
          for_each(unit in the worker's batch)       "(graph batch)"
            decide(unit) -> the unit's steps, then   "(graph unit)" ... "(graph done)"
      then: end of round                             "(graph)"

A round starts with every unit whose needs are met; each seeds a worker, which, once
its units have run, takes every unit that can run then (so a chain continues without
waiting for the rest of the round), until nothing can. A round ends when its workers
have; the next round takes what became runnable meanwhile. Units of one batch, and
the workers of a round, run concurrently (bounded by the host's per-instance limit
and the matrix's ``max_parallel``).

A unit's last failed attempt is kept in the graph (its dependents are skipped) rather
than stopping the workflow, so independent units go on; when nothing more can run the
end-of-round step fails, naming the failed and skipped units, and the workflow follows
its error behaviour (suspended by default). Resuming runs the failed units and what
was skipped because of them; completed units do not run again.

Without any ``needs``, a workflow with a matrix step runs its steps in order: each
step needs the one before it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wfe.core import (
    ErrorBehavior,
    ErrorBehaviorType,
    ExecutionResult,
    StepBody,
    StepExecutionContext,
)

from ._ci_keys import unit_name
from ._data import workflow_data
from ._graph_state import GraphPlan, Unit, mark_done
from ._schema import WorkflowSpec

GRAPH_STEP = "(graph)"
"""The end of each round: the step that fails when units failed."""
HELPER_STEPS = frozenset(
    {
        GRAPH_STEP,
        "(graph loop)",
        "(graph round)",
        "(graph worker)",
        "(graph batch)",
        "(graph unit)",
        "(graph done)",
    }
)
"""Display names of the steps that schedule the graph (views may hide them)."""


def plan_graph(spec: WorkflowSpec) -> GraphPlan:
    """The units of ``spec``'s steps, in file order."""
    explicit = any(s.declares_needs for s in spec.steps)
    units: list[Unit] = []
    max_parallel: dict[str, int] = {}
    fail_fast: set[str] = set()
    previous: str | None = None
    for s in spec.steps:
        needs = s.needs if explicit else ((previous,) if previous else ())
        combos = s.matrix.combinations if s.matrix is not None else (None,)
        for combo in combos:
            units.append(Unit(name=unit_name(s.name, combo), step=s.name, needs=needs, when=s.when))
        if s.matrix is not None:
            if s.matrix.max_parallel is not None:
                max_parallel[s.name] = s.matrix.max_parallel
            if s.matrix.fail_fast:
                fail_fast.add(s.name)
        previous = s.name
    return GraphPlan(units=tuple(units), max_parallel=max_parallel, fail_fast=frozenset(fail_fast))


def pipeline_jobs(spec: WorkflowSpec, plan: GraphPlan) -> tuple[dict[str, Any], ...]:
    """The pipeline as plain data, for views that draw it (``wfe show --graph``, the
    dashboard) rather than the steps that schedule it: per step, in file order, its
    ``name``, ``needs``, ``matrix`` (axis -> values in order, or ``None``) and ``units``
    (the names of its matrix instances, or the step's own name)."""
    jobs: list[dict[str, Any]] = []
    for s in spec.steps:
        units = plan.units_of(s.name)
        needs = next((u.needs for u in plan.units if u.step == s.name), ())
        matrix: dict[str, list[Any]] | None = None
        if s.matrix is not None:
            matrix = {}
            for combo in s.matrix.combinations:
                for axis, value in combo.items():
                    values = matrix.setdefault(axis, [])
                    if value not in values:
                        values.append(value)
        jobs.append({"name": s.name, "needs": list(needs), "matrix": matrix, "units": units})
    return tuple(jobs)


class _UnitDone(StepBody):
    """After a unit's steps: the unit is complete unless one of them failed."""

    # Decides from the workflow's data alone: shares the next checkpoint.
    replayable = True

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        mark_done(workflow_data(ctx.workflow.data), ctx.item)
        return ExecutionResult.next()


def _round_end(plan: GraphPlan, jobs: tuple[dict[str, Any], ...]) -> type[StepBody]:
    class RoundEnd(StepBody):
        replayable = True  # decides from the workflow's data alone

        async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
            plan.end_round(workflow_data(ctx.workflow.data))
            return ExecutionResult.next()

    # ``pipeline_jobs`` rides on the body (duck-typed, as ``default_name`` is): the
    # host's definition graph draws the jobs in place of the scheduling loop.
    return type(
        "GraphRoundEnd",
        (RoundEnd,),
        {"fingerprint_key": "yaml:graph-end", "pipeline_jobs": jobs},
    )


AddStep = Callable[..., Any]


def add_graph(position: Any, spec: WorkflowSpec, add: AddStep) -> Any:
    """Append the graph of ``spec``'s steps after ``position``; ``add(builder, step,
    in_graph=True, combo=...)`` appends one unit's steps."""
    plan = plan_graph(spec)
    steps = {s.name: s for s in spec.steps}
    done = type("GraphUnitDone", (_UnitDone,), {"fingerprint_key": "yaml:graph-done"})
    # The end of a round fails when units failed: resumable (suspend) unless the
    # workflow terminates on errors.
    end_behavior = (
        ErrorBehavior.terminate()
        if spec.error_behavior.type is ErrorBehaviorType.TERMINATE
        else ErrorBehavior.suspend()
    )

    def unit_steps(u: Any) -> None:
        decide = u.decide(lambda data, ctx: ctx.item).name("(graph unit)")
        for unit in plan.units:
            step = steps[unit.step]
            combo = None
            if step.matrix is not None:
                combo = next(
                    c for c in step.matrix.combinations if unit_name(step.name, c) == unit.name
                )
            branch = u.create_branch()
            add(branch, step, in_graph=True, combo=combo).then(done).name("(graph done)")
            decide.branch(unit.name, branch)

    def batch(c: Any) -> None:
        c.for_each(lambda data, ctx: plan.batch(data, ctx.item), unit_steps).name("(graph batch)")

    def worker(w: Any) -> None:
        w.while_do(lambda data, ctx: plan.claim(data, ctx.item), batch).name("(graph worker)")

    def round_(r: Any) -> None:
        workers = r.for_each(lambda data: plan.seeds(data), worker).name("(graph round)")
        end = _round_end(plan, pipeline_jobs(spec, plan))
        workers.then(end).name(GRAPH_STEP).on_error(end_behavior)

    return position.while_do(lambda data: plan.start_round(data), round_).name("(graph loop)")
