"""From validated specs to a :class:`~wfe.core.WorkflowDefinition`, through the fluent
:class:`~wfe.core.WorkflowBuilder`.

Each leaf step becomes one step of the definition whose body is a :class:`YamlStep`:
it evaluates ``when`` (false: the step records ``{"skipped": true}`` and the flow
moves on), runs the step type's body, and runs the hooks inside the same step:

* success → ``on_success`` hooks, then ``ensure`` hooks; a failing hook fails the step;
* failure → ``on_failure`` hooks, then ``ensure`` hooks, then the original error is
  raised again (a failing ``on_failure``/``ensure`` hook is logged and noted on it),
  so the step's error behaviour (retry, suspend, ...) applies to the whole step —
  a retried step runs its hooks again on every attempt.

A ``parallel`` step becomes ``parallel().do(...).join()`` (under ``if_do`` when it
has ``when``). Declared step outputs are checked after the step; declared workflow
outputs by a final step named ``(outputs)``; declared inputs by the definition's
``data_validator`` when the workflow starts (filling defaults).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from wfe.core import (
    ExecutionResult,
    StepBody,
    StepError,
    StepExecutionContext,
    WorkflowBuilder,
    WorkflowDefinition,
)
from wfe.core import StepBuilder as _StepBuilder

from ._data import STEPS_KEY, record_step, workflow_data
from ._errors import Issue, YamlWorkflowError
from ._schema import InputSpec, StepSpec, WorkflowSpec
from ._types import ValueType

OUTPUTS_STEP = "(outputs)"


@attrs.frozen(kw_only=True)
class LeafPlan:
    """What a :class:`YamlStep` runs: the body, its condition, hooks and declared outputs."""

    name: str
    body: type[StepBody]
    when: Any
    on_success: tuple[type[StepBody], ...]
    on_failure: tuple[type[StepBody], ...]
    ensure: tuple[type[StepBody], ...]
    outputs: Mapping[str, ValueType]


class YamlStep(StepBody):
    """A YAML step: condition, main body and hooks (see the module documentation)."""

    plan: ClassVar[LeafPlan]

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        plan = type(self).plan
        data = workflow_data(ctx.workflow.data)
        first_visit = ctx.persistence_data is None and not ctx.pointer.event_published
        if plan.when is not None and first_visit and not plan.when.evaluate(data):
            record_step(data, plan.name, {"skipped": True})
            ctx.log(f"{plan.name}: skipped (its `when` condition is false)", "log")
            return ExecutionResult.next()
        try:
            result = await plan.body().run(ctx)
        except Exception as exc:
            for hook in plan.on_failure + plan.ensure:
                await _run_hook_after_failure(hook, ctx, exc)
            raise
        if result is not None and not result.proceed:
            return result  # still waiting (a sub-workflow): hooks run once it ends
        try:
            _check_outputs(plan, data)
            for hook in plan.on_success:
                await _run_hook(hook, ctx)
        except Exception as exc:
            for hook in plan.ensure:
                await _run_hook_after_failure(hook, ctx, exc)
            raise
        for hook in plan.ensure:
            await _run_hook(hook, ctx)
        return result


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


class OutputsCheck(StepBody):
    """The final ``(outputs)`` step: the workflow's declared outputs exist and are typed."""

    outputs: ClassVar[Mapping[str, ValueType]]
    workflow_id: ClassVar[str]

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        data = workflow_data(ctx.workflow.data)
        problems = []
        for name, t in type(self).outputs.items():
            if name not in data:
                if not t.optional:
                    problems.append(f"declared output {name!r} was never set")
                continue
            problem = t.check(data[name], f"output {name}")
            if problem:
                problems.append(problem)
        if problems:
            raise StepError(f"workflow {type(self).workflow_id!r}: " + "; ".join(problems))
        return ExecutionResult.next()


@attrs.frozen(kw_only=True)
class CompiledWorkflow:
    """A validated, compiled YAML workflow; register it with a host like a definition.

    ``inputs``/``outputs`` are the declared types (by name); ``file`` the source file;
    ``companions`` the workflows loaded with it.
    """

    definition: WorkflowDefinition
    inputs: Mapping[str, InputSpec]
    outputs: Mapping[str, ValueType]
    file: str
    name: str | None = None
    companions: tuple[CompiledWorkflow, ...] = ()
    """The other workflows loaded with this one (the rest of its file and its includes):
    a host registering this workflow registers them too, so sub-workflows resolve."""

    @property
    def id(self) -> str:
        return self.definition.id

    @property
    def version(self) -> int:
        return self.definition.version


def check_inputs(compiled: CompiledWorkflow, data: Any) -> dict[str, Any]:
    """Check ``data`` against the declared inputs and fill defaults (in place for a dict).

    Raises :class:`YamlWorkflowError` listing every missing or mistyped input, located
    at its declaration. Undeclared keys are allowed. Returns the (filled) data.
    """
    if data is None:
        data = {}
    issues: list[Issue] = []
    if isinstance(data, dict) and STEPS_KEY in data:
        raise YamlWorkflowError(
            [
                Issue(
                    file=compiled.file,
                    line=1,
                    column=1,
                    key="inputs",
                    message=f"start data cannot hold {STEPS_KEY!r}: it is reserved for the "
                    "records of the workflow's own steps",
                )
            ]
        )
    if not isinstance(data, dict):
        spec_file = compiled.file
        raise YamlWorkflowError(
            [
                Issue(
                    file=spec_file,
                    line=1,
                    column=1,
                    key="inputs",
                    message=f"workflow data must be a mapping, got {type(data).__qualname__}",
                )
            ]
        )
    for name, spec in compiled.inputs.items():
        where = spec.node
        if name not in data:
            if spec.has_default:
                data[name] = _copy(spec.default)
            elif not spec.type.optional:
                issues.append(
                    where.key_issue(
                        f"workflow {compiled.id!r} needs input {name!r} ({spec.type}); "
                        "it was not given"
                    )
                )
            continue
        problem = spec.type.check(data[name], f"input {name}")
        if problem:
            issues.append(where.key_issue(problem))
    if issues:
        raise YamlWorkflowError(issues)
    return data


def _copy(value: Any) -> Any:
    import copy

    return copy.deepcopy(value)


def _declared_names(spec: WorkflowSpec) -> frozenset[str]:
    """Every name the workflow's author declared: inputs, workflow and step outputs."""
    names = {*spec.inputs, *spec.outputs}

    def visit(steps: tuple[StepSpec, ...]) -> None:
        for step in steps:
            names.update(step.outputs)
            visit(step.parallel + step.on_success + step.on_failure + step.ensure)

    visit(spec.steps)
    return frozenset(names)


def _leaf_body(spec: StepSpec, exported: frozenset[str]) -> type[StepBody]:
    assert spec.step_type is not None
    main = spec.step_type.build(spec.config, attrs.evolve(spec.info, exported=exported))
    plan = LeafPlan(
        name=spec.name,
        body=main,
        when=spec.when,
        on_success=tuple(_leaf_body(h, exported) for h in spec.on_success),
        on_failure=tuple(_leaf_body(h, exported) for h in spec.on_failure),
        ensure=tuple(_leaf_body(h, exported) for h in spec.ensure),
        outputs=dict(spec.outputs),
    )
    return type(
        spec.name,
        (YamlStep,),
        {"plan": plan, "fingerprint_key": f"yaml:{spec.type_name}"},
    )


def _add(position: Any, spec: StepSpec, exported: frozenset[str]) -> _StepBuilder[dict[str, Any]]:
    """Append ``spec`` after ``position`` (a WorkflowBuilder or StepBuilder)."""
    if spec.parallel:

        def add_parallel(b: Any) -> Any:
            group = b.parallel()
            for branch in spec.parallel:
                group.do(lambda bb, br=branch: _add(bb, br, exported))
            return group.join().name(spec.name)

        if spec.when is not None:
            condition = spec.when
            sb: _StepBuilder[dict[str, Any]] = position.if_do(
                lambda data: condition.evaluate(data), add_parallel
            ).name(f"{spec.name} (when)")
        else:
            sb = add_parallel(position)
    else:
        sb = position.then(_leaf_body(spec, exported)).name(spec.name)
    if spec.error_behavior is not None:
        sb.on_error(spec.error_behavior)
    return sb


def compile_workflow(spec: WorkflowSpec) -> CompiledWorkflow:
    """Build the definition of a validated workflow."""
    builder: WorkflowBuilder[dict[str, Any]] = WorkflowBuilder(dict)
    position: Any = builder
    exported = _declared_names(spec)
    for step in spec.steps:
        position = _add(position, step, exported)
    if spec.outputs:
        check = type(
            OUTPUTS_STEP,
            (OutputsCheck,),
            {
                "outputs": dict(spec.outputs),
                "workflow_id": spec.id,
                "fingerprint_key": "yaml:outputs",
            },
        )
        position.then(check).name(OUTPUTS_STEP)
    definition = builder.build(
        spec.id,
        spec.version,
        description=spec.description or spec.name,
        default_error_behavior=spec.error_behavior,
    )
    compiled = CompiledWorkflow(
        definition=definition,
        inputs=dict(spec.inputs),
        outputs=dict(spec.outputs),
        file=spec.file,
        name=spec.name,
    )

    def validate_start_data(data: Any) -> None:
        check_inputs(compiled, data)

    definition.data_validator = validate_start_data
    return compiled
