"""From validated specs to a :class:`~wfe.core.WorkflowDefinition`, through the fluent
:class:`~wfe.core.WorkflowBuilder`.

Each leaf step becomes one step of the definition whose body is a :class:`YamlStep`
(its condition, body and hooks run inside that one step: see :mod:`._yaml_step`), so a
retried step runs its hooks again on every attempt.

A ``parallel`` step becomes ``parallel().do(...).join()`` (under ``if_do`` when it
has ``when``). A workflow whose steps use ``needs`` or ``matrix`` becomes a graph (see
:mod:`._graph`). Declared step outputs are checked after the step; declared workflow
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

from ._ci_keys import unit_name
from ._data import STEPS_KEY, workflow_data
from ._errors import Issue, YamlWorkflowError
from ._graph import add_graph
from ._graph_state import GRAPH_KEY
from ._pipeline_checks import ENV_STEP_TYPES
from ._schema import InputSpec, StepSpec, WorkflowSpec
from ._types import ValueType
from ._yaml_step import LeafPlan, YamlStep

__all__ = ["OUTPUTS_STEP", "CompiledWorkflow", "YamlStep", "check_inputs", "compile_workflow"]

OUTPUTS_STEP = "(outputs)"


class OutputsCheck(StepBody):
    """The final ``(outputs)`` step: the workflow's declared outputs exist and are typed."""

    replayable = True  # checks the workflow's data alone
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
    secrets: tuple[str, ...] = ()
    """The secrets the workflow declares (``secrets:``): given at start, never stored."""
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
    reserved = [k for k in (STEPS_KEY, GRAPH_KEY) if isinstance(data, dict) and k in data]
    if reserved:
        raise YamlWorkflowError(
            [
                Issue(
                    file=compiled.file,
                    line=1,
                    column=1,
                    key="inputs",
                    message=f"start data cannot hold {reserved[0]!r}: it is reserved for the "
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


class _Compiler:
    """Builds the steps of one workflow (its settings apply to every leaf)."""

    def __init__(self, spec: WorkflowSpec) -> None:
        self.spec = spec
        self.exported = _declared_names(spec)

    def leaf_body(
        self,
        spec: StepSpec,
        *,
        in_graph: bool = False,
        combo: Mapping[str, Any] | None = None,
        hook: bool = False,
        top: bool = True,
    ) -> type[StepBody]:
        assert spec.step_type is not None
        name = unit_name(spec.name, combo)
        info = attrs.evolve(spec.info, name=name, exported=self.exported)
        config = dict(spec.config)
        if spec.type_name in ENV_STEP_TYPES and (self.spec.env or spec.env):
            config["env"] = {**self.spec.env, **spec.env, **config.get("env", {})}
        main = spec.step_type.build(config, info)
        # Where the step runs: its working_dir, else the process's current directory
        # (as the shell step runs), against which artifact paths resolve.
        workdir = None
        if isinstance(config.get("working_dir"), str):
            workdir = info.base_dir / config["working_dir"]
        plan = LeafPlan(
            name=name,
            body=main,
            # A unit's own `when` is evaluated by the graph when its needs are met.
            when=None if in_graph and top and not hook else spec.when,
            on_success=tuple(self.leaf_body(h, combo=combo, hook=True) for h in spec.on_success),
            on_failure=tuple(self.leaf_body(h, combo=combo, hook=True) for h in spec.on_failure),
            ensure=tuple(self.leaf_body(h, combo=combo, hook=True) for h in spec.ensure),
            outputs=dict(spec.outputs),
            behavior=spec.error_behavior or self.spec.error_behavior,
            in_graph=in_graph and not hook,
            continue_on_error=spec.continue_on_error,
            matrix=combo,
            secrets=self.spec.secrets,
            timeout=self.spec.timeout,
            artifacts=spec.artifacts,
            workdir=workdir,
            step=spec.name,
        )
        return type(
            name,
            (YamlStep,),
            {"plan": plan, "fingerprint_key": f"yaml:{spec.type_name}"},
        )

    def add(
        self,
        position: Any,
        spec: StepSpec,
        *,
        in_graph: bool = False,
        combo: Mapping[str, Any] | None = None,
        top: bool = True,
    ) -> _StepBuilder[dict[str, Any]]:
        """Append ``spec`` after ``position`` (a WorkflowBuilder or StepBuilder)."""
        if spec.parallel:

            def add_parallel(b: Any) -> Any:
                group = b.parallel()
                for branch in spec.parallel:
                    group.do(lambda bb, br=branch: self.add(bb, br, in_graph=in_graph, top=False))
                return group.join().name(spec.name)

            if spec.when is not None and not (in_graph and top):
                condition = spec.when
                sb: _StepBuilder[dict[str, Any]] = position.if_do(
                    lambda data: condition.evaluate(data), add_parallel
                ).name(f"{spec.name} (when)")
            else:
                sb = add_parallel(position)
        else:
            body = self.leaf_body(spec, in_graph=in_graph, combo=combo, top=top)
            sb = position.then(body).name(unit_name(spec.name, combo))
        if spec.error_behavior is not None:
            sb.on_error(spec.error_behavior)
        return sb


def compile_workflow(spec: WorkflowSpec) -> CompiledWorkflow:
    """Build the definition of a validated workflow."""
    builder: WorkflowBuilder[dict[str, Any]] = WorkflowBuilder(dict)
    position: Any = builder
    compiler = _Compiler(spec)
    if spec.is_graph:
        position = add_graph(position, spec, compiler.add)
    else:
        for step in spec.steps:
            position = compiler.add(position, step)
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
        secrets=spec.secrets,
    )

    def validate_start_data(data: Any) -> None:
        check_inputs(compiled, data)

    definition.data_validator = validate_start_data
    return compiled
