"""The body of every YAML leaf step: its condition, scope, main body, hooks, and what
the pipeline keys add around them.

* ``when`` false → the step records ``{"skipped": true}`` and the flow moves on;
* success → ``on_success`` hooks, then ``ensure`` hooks; a failing hook fails the step;
* failure → ``on_failure`` hooks, then ``ensure`` hooks, then the original error is
  raised again (a failing ``on_failure``/``ensure`` hook is logged and noted on it),
  so the step's error behaviour (retry, suspend, ...) applies to the whole step.

Around that: the step's :class:`~._scope.StepScope` (matrix values, secrets, earlier
artifacts) is set for the body; every log line, the step's records in the workflow
data and its error message are masked of the workflow's secrets; a workflow
``timeout`` bounds the body; ``artifacts`` are collected after a success; a failure
of the last attempt under ``continue_on_error`` is recorded and the flow goes on; in
a graph (``needs``/``matrix``), a failure of the last attempt marks the step failed in
the graph, whose dependents are then skipped (see :mod:`._graph`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import attrs
import trio

from wfe.core import (
    ErrorBehavior,
    ErrorBehaviorType,
    ExecutionResult,
    StepBody,
    StepError,
    StepExecutionContext,
)
from wfe.core.secrets import Masker, current_secrets

from ._artifacts import artifact_scope, collect_artifacts
from ._ci_keys import ArtifactSpec
from ._data import STEPS_KEY, record_step, workflow_data
from ._durations import format_duration
from ._graph_state import mark_failed
from ._scope import StepScope, using_scope
from ._types import ValueType

STATUS_STREAM = "status"
"""Log stream of the lines telling a viewer how a step ended when its pointer cannot
(``failed``, ``skipped``, ``failed (continued)``): a step whose failure is kept in a
graph completes as far as the engine knows."""


@attrs.frozen(kw_only=True)
class LeafPlan:
    """What a :class:`YamlStep` runs: the body, its condition, hooks and declared outputs,
    and the pipeline settings of its workflow and step."""

    name: str
    body: type[StepBody]
    when: Any
    on_success: tuple[type[StepBody], ...]
    on_failure: tuple[type[StepBody], ...]
    ensure: tuple[type[StepBody], ...]
    outputs: Mapping[str, ValueType]
    behavior: ErrorBehavior = attrs.field(factory=ErrorBehavior.suspend)
    in_graph: bool = False
    continue_on_error: bool = False
    matrix: Mapping[str, Any] | None = None
    secrets: tuple[str, ...] = ()
    timeout: timedelta | None = None
    artifacts: tuple[ArtifactSpec, ...] = ()
    workdir: Path | None = None
    step: str = ""


def _last_attempt(plan: LeafPlan, ctx: StepExecutionContext, exc: BaseException) -> bool:
    """Whether the engine would not run this step again after ``exc`` (no retry left)."""
    if isinstance(exc, WorkflowTimeout):
        return True
    b = plan.behavior
    if b.type is ErrorBehaviorType.RETRY:
        return b.max_retries is not None and ctx.pointer.retry_count >= b.max_retries
    return b.type is ErrorBehaviorType.SUSPEND


class WorkflowTimeout(StepError):
    """The workflow's ``timeout`` ran out while (or before) the step ran."""


class YamlStep(StepBody):
    """A YAML step (see the module documentation)."""

    plan: ClassVar[LeafPlan]

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        plan = type(self).plan
        data = workflow_data(ctx.workflow.data)
        secrets = {k: v for k, v in current_secrets().items() if k in plan.secrets}
        masker = Masker(secrets)
        sink = ctx.log_sink
        if masker:
            ctx.log_sink = lambda stream, line: sink(stream, masker.text(line))
        scope = StepScope(
            matrix=dict(plan.matrix or {}), secrets=secrets, artifacts=artifact_scope(data)
        )
        try:
            with using_scope(scope):
                return await self._run(plan, ctx, data, secrets)
        except Exception as exc:
            if not (plan.in_graph or plan.continue_on_error) or not _last_attempt(plan, ctx, exc):
                if not masker:
                    raise
                raise _masked(exc, masker) from None
            message = masker.text(_message(exc))
            if plan.continue_on_error:
                _note(data, plan.name, {"outcome": "failure", "error": message})
                ctx.log(f"failed (continued)\n{message}", STATUS_STREAM)
            else:
                mark_failed(data, ctx.item, message)
                ctx.log(f"failed\n{message}", STATUS_STREAM)
            return ExecutionResult.next()
        finally:
            ctx.log_sink = sink
            masker.in_place(data)

    async def _run(
        self,
        plan: LeafPlan,
        ctx: StepExecutionContext,
        data: dict[str, Any],
        secrets: Mapping[str, str],
    ) -> ExecutionResult | None:
        first_visit = ctx.persistence_data is None and not ctx.pointer.event_published
        if plan.when is not None and first_visit and not plan.when.evaluate(data):
            record_step(data, plan.name, {"skipped": True})
            ctx.log(f"{plan.name}: skipped (its `when` condition is false)", "log")
            ctx.log("skipped", STATUS_STREAM)
            return ExecutionResult.next()
        missing = [n for n in plan.secrets if n not in secrets]
        if missing:
            raise StepError(
                f"step {plan.name!r} cannot run: secret(s) {', '.join(missing)} were not given "
                f"to this process (secrets are kept in memory only, never in the store); "
                f"resume with: wfe resume {ctx.workflow.id} "
                + " ".join(f"--secret {n}" for n in missing)
            )
        try:
            with _deadline(plan, ctx):
                result = await plan.body().run(ctx)
        except Exception as exc:
            for hook in plan.on_failure + plan.ensure:
                await _run_hook_after_failure(hook, ctx, exc)
            raise
        if result is not None and not result.proceed:
            return result  # still waiting (a sub-workflow): hooks run once it ends
        try:
            _check_outputs(plan, data)
            if plan.artifacts:
                await collect_artifacts(
                    plan.artifacts, plan.workdir, ctx.workflow.id, plan.name, data, plan.step
                )
            for hook in plan.on_success:
                await _run_hook(hook, ctx)
        except Exception as exc:
            for hook in plan.ensure:
                await _run_hook_after_failure(hook, ctx, exc)
            raise
        for hook in plan.ensure:
            await _run_hook(hook, ctx)
        return result


class _deadline:
    """The workflow's ``timeout``, counted from its creation, around the step's body."""

    def __init__(self, plan: LeafPlan, ctx: StepExecutionContext) -> None:
        self.plan = plan
        self.scope: trio.CancelScope | None = None
        if plan.timeout is not None:
            created = ctx.workflow.create_time
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            left = (created + plan.timeout - datetime.now(UTC)).total_seconds()
            if left <= 0:
                raise self.error("before it started")
            self.scope = trio.move_on_after(left)

    def error(self, when: str) -> WorkflowTimeout:
        assert self.plan.timeout is not None
        return WorkflowTimeout(
            f"step {self.plan.name!r}: the workflow's timeout ({format_duration(self.plan.timeout)}"
            f", counted from its start) ran out {when}; the step was stopped"
        )

    def __enter__(self) -> None:
        if self.scope is not None:
            self.scope.__enter__()

    def __exit__(self, *exc: Any) -> bool:
        if self.scope is None:
            return False
        suppressed = self.scope.__exit__(*exc)
        if self.scope.cancelled_caught:
            raise self.error("while it ran")
        return bool(suppressed)


def _message(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, StepError) else f"{type(exc).__name__}: {exc}"
    notes = getattr(exc, "__notes__", None) or []
    return "\n".join([text, *notes])


def _masked(exc: Exception, masker: Masker) -> Exception:
    """``exc``, or a :class:`StepError` with its message masked when it quotes a secret."""
    text = _message(exc)
    masked = masker.text(text)
    if masked == text:
        return exc
    return StepError(masked)


def _note(data: dict[str, Any], name: str, extra: Mapping[str, Any]) -> None:
    steps = data.get(STEPS_KEY)
    record = steps.get(name) if isinstance(steps, dict) else None
    record_step(data, name, {**(record if isinstance(record, dict) else {}), **extra})


def _check_outputs(plan: LeafPlan, data: dict[str, Any]) -> None:
    for name, t in plan.outputs.items():
        if name not in data:
            raise StepError(f"step {plan.name!r} did not set its declared output {name!r}")
        problem = t.check(data[name], f"output {name}")
        if problem:
            raise StepError(f"step {plan.name!r}: {problem}")


async def _run_hook(hook: type[StepBody], ctx: StepExecutionContext) -> None:
    result = await hook().run(ctx)
    if result is not None and not result.proceed:
        raise StepError(f"hook {hook.__name__} did not finish in one run; hooks must")


async def _run_hook_after_failure(
    hook: type[StepBody], ctx: StepExecutionContext, original: BaseException
) -> None:
    try:
        await _run_hook(hook, ctx)
    except Exception as exc:
        ctx.log(f"hook {hook.__name__} failed after the step failed: {exc}", "stderr")
        original.add_note(f"hook {hook.__name__} also failed: {exc}")
