"""The shape of a workflow file, checked key by key into :class:`WorkflowSpec` records.

Every problem is collected (never just the first), each positioned; nothing is built
from a file that has any.
"""

from __future__ import annotations

from typing import Any

import attrs

from wfe.core import ErrorBehavior, ErrorBehaviorType

from ._checks import check_keys, expect_duration, expect_map, expect_string, kind_of
from ._ci_keys import (
    ArtifactSpec,
    MatrixSpec,
    parse_artifacts,
    parse_bool,
    parse_env,
    parse_matrix,
    parse_needs,
    parse_secrets,
    parse_timeout,
    unit_name,
)
from ._conditions import Condition, parse_condition
from ._data import STEPS_KEY, output_name_problem
from ._errors import Issue
from ._nodes import YamlNode
from ._pipeline_checks import check_pipeline
from ._plugins import StepInfo, StepType, StepTypeRegistry
from ._references import check_step_references
from ._types import TYPE_HELP, ValueType, parse_type

FILE_KEYS = ("workflow", "workflows", "include")
WORKFLOW_KEYS = (
    "id",
    "version",
    "name",
    "description",
    "error_behavior",
    "inputs",
    "outputs",
    "steps",
    "env",
    "timeout",
    "secrets",
)
STEP_KEYS = (
    "name",
    "type",
    "config",
    "parallel",
    "when",
    "error_behavior",
    "on_success",
    "on_failure",
    "ensure",
    "outputs",
    "needs",
    "matrix",
    "env",
    "continue_on_error",
    "artifacts",
)
TOP_LEVEL_ONLY = ("needs", "matrix")
HOOK_KEYS = ("on_success", "on_failure", "ensure")
ERROR_BEHAVIOR_KEYS = ("type", "interval", "max_retries")
INPUT_KEYS = ("type", "default", "description")
DEFAULT_STEP_TYPE = "shell"


@attrs.frozen(kw_only=True)
class InputSpec:
    """A declared workflow input: its type and (optional) default."""

    name: str
    type: ValueType
    has_default: bool
    default: Any
    description: str | None
    node: YamlNode


@attrs.frozen(kw_only=True)
class StepSpec:
    """A validated step: a leaf (``step_type`` + ``config``) or a ``parallel`` group."""

    name: str
    node: YamlNode
    info: StepInfo
    type_name: str | None
    step_type: StepType | None
    config: dict[str, Any]
    parallel: tuple[StepSpec, ...]
    when: Condition | None
    error_behavior: ErrorBehavior | None
    on_success: tuple[StepSpec, ...]
    on_failure: tuple[StepSpec, ...]
    ensure: tuple[StepSpec, ...]
    outputs: dict[str, ValueType]
    needs: tuple[str, ...] = ()
    needs_nodes: tuple[YamlNode, ...] = ()
    declares_needs: bool = False
    matrix: MatrixSpec | None = None
    env: dict[str, str] = attrs.field(factory=dict)
    continue_on_error: bool = False
    artifacts: tuple[ArtifactSpec, ...] = ()


@attrs.frozen(kw_only=True)
class WorkflowSpec:
    """A validated workflow of a file."""

    id: str
    version: int
    name: str | None
    description: str | None
    error_behavior: ErrorBehavior
    inputs: dict[str, InputSpec]
    outputs: dict[str, ValueType]
    steps: tuple[StepSpec, ...]
    file: str
    node: YamlNode
    env: dict[str, str] = attrs.field(factory=dict)
    timeout: Any = None
    secrets: tuple[str, ...] = ()

    @property
    def is_graph(self) -> bool:
        """Whether the steps form a graph (some step has ``needs`` or ``matrix``)."""
        return any(s.declares_needs or s.matrix is not None for s in self.steps)


def parse_error_behavior(node: YamlNode | None, issues: list[Issue]) -> ErrorBehavior | None:
    if node is None:
        return None
    if isinstance(node.value, str):
        kind_node: YamlNode | None = node
        interval_node = retries_node = None
    elif expect_map(node, "an error behaviour {type: retry|suspend|terminate|compensate}", issues):
        check_keys(node, ERROR_BEHAVIOR_KEYS, issues)
        kind_node = node.get("type")
        interval_node, retries_node = node.get("interval"), node.get("max_retries")
        if kind_node is None:
            issues.append(
                node.issue("error_behavior needs `type`: retry, suspend, terminate or compensate")
            )
            return None
    else:
        return None
    assert kind_node is not None
    kinds = [k.value for k in ErrorBehaviorType]
    if kind_node.value not in kinds:
        issues.append(
            kind_node.issue(f"expected one of {', '.join(kinds)}, got {kind_of(kind_node)}")
        )
        return None
    kind = ErrorBehaviorType(kind_node.value)
    if kind is not ErrorBehaviorType.RETRY:
        for extra in (interval_node, retries_node):
            if extra is not None:
                issues.append(
                    extra.key_issue(
                        f"only a retry error behaviour takes this key, not {kind.value}"
                    )
                )
        return {
            ErrorBehaviorType.SUSPEND: ErrorBehavior.suspend,
            ErrorBehaviorType.TERMINATE: ErrorBehavior.terminate,
            ErrorBehaviorType.COMPENSATE: ErrorBehavior.compensate,
        }[kind]()
    interval = expect_duration(interval_node, issues)
    retries: int | None = None
    if retries_node is not None:
        v = retries_node.value
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            issues.append(
                retries_node.issue(f"expected an integer >= 0, got {kind_of(retries_node)}")
            )
        else:
            retries = v
    from datetime import timedelta

    return ErrorBehavior.retry(interval if interval is not None else timedelta(seconds=60), retries)


def parse_type_map(node: YamlNode | None, issues: list[Issue], what: str) -> dict[str, ValueType]:
    out: dict[str, ValueType] = {}
    if node is None:
        return out
    if node.is_seq:  # a plain list of names: values of any type
        for item in node.value:
            if expect_string(item, issues, what=f"an {what} name"):
                problem = output_name_problem(item.value)
                if problem is not None:
                    issues.append(item.issue(problem))
                    continue
                out[item.value] = ValueType("any")
        return out
    if not expect_map(node, f"{what} declarations (name: type)", issues):
        return out
    for name, child in node.items():
        type_child = child.get("type")
        raw = type_child.value if type_child is not None else child.value
        t = parse_type(raw)
        if t is None:
            issues.append(child.issue(f"expected {TYPE_HELP}, got {kind_of(child)}"))
            continue
        problem = output_name_problem(name)
        if problem is not None:
            issues.append(child.key_issue(problem))
            continue
        out[name] = t
    return out


def parse_inputs(node: YamlNode | None, issues: list[Issue]) -> dict[str, InputSpec]:
    out: dict[str, InputSpec] = {}
    if node is None or not expect_map(node, "input declarations (name: type)", issues):
        return out
    for name, child in node.items():
        if name == STEPS_KEY:
            issues.append(child.key_issue(f"{STEPS_KEY!r} is reserved for step records"))
            continue
        default_node = None
        description = None
        if child.is_map:
            check_keys(child, INPUT_KEYS, issues)
            type_node = child.get("type")
            if type_node is None:
                issues.append(child.issue(f"input {name!r} needs `type`: {TYPE_HELP}"))
                continue
            default_node = child.get("default")
            desc = child.get("description")
            if desc is not None and expect_string(desc, issues):
                description = desc.value
        else:
            type_node = child
        t = parse_type(type_node.value)
        if t is None:
            issues.append(type_node.issue(f"expected {TYPE_HELP}, got {kind_of(type_node)}"))
            continue
        default = default_node.plain() if default_node is not None else None
        if default_node is not None:
            problem = t.check(default, f"default of {name}")
            if problem:
                issues.append(default_node.issue(problem))
        out[name] = InputSpec(
            name=name,
            type=t,
            has_default=default_node is not None,
            default=default,
            description=description,
            node=child,
        )
    return out


class _WorkflowParser:
    def __init__(
        self,
        workflow_id: str,
        file: str,
        info_base: Any,
        registry: StepTypeRegistry,
        inputs: frozenset[str] = frozenset(),
    ) -> None:
        self.inputs = inputs
        self.workflow_id = workflow_id
        self.file = file
        self.base_dir = info_base
        self.registry = registry
        self.names: dict[str, YamlNode] = {}
        self.issues: list[Issue] = []
        self.depth = 0

    def steps(
        self, node: YamlNode | None, where: str, *, hook: bool = False
    ) -> tuple[StepSpec, ...]:
        if node is None:
            return ()
        if hook and node.is_map:
            # One step, as pipelines written for WFE give `on_success`/`on_failure`/`ensure`.
            single = self.step(node, hook=True)
            return () if single is None else (single,)
        if not node.is_seq or (not node.value and not hook):
            expected = (
                "a step (a mapping) or a list of steps" if hook else "a non-empty list of steps"
            )
            self.issues.append(node.issue(f"expected {expected} for {where}, got {kind_of(node)}"))
            return ()
        self.depth += 1
        try:
            out = [self.step(item, hook=hook) for item in node.value]
        finally:
            self.depth -= 1
        return tuple(s for s in out if s is not None)

    def step(self, node: YamlNode, *, hook: bool) -> StepSpec | None:
        issues = self.issues
        if not expect_map(node, "a step", issues):
            return None
        check_keys(node, STEP_KEYS, issues)
        name_node = node.get("name")
        name = ""
        if name_node is None:
            issues.append(node.issue("a step needs `name`"))
        elif expect_string(name_node, issues, what="a step name (string)"):
            name = str(name_node.value)
            first = self.names.get(name)
            if first is not None:
                issues.append(
                    name_node.issue(
                        f"step name {name!r} is already used at line {first.line}; "
                        "step names are unique in a workflow"
                    )
                )
            else:
                self.names[name] = name_node
        outputs = parse_type_map(node.get("outputs"), issues, "output")
        for output in outputs:
            if output in self.inputs:
                issues.append(
                    node.value["outputs"].issue(
                        f"output {output!r} would overwrite the declared workflow input "
                        f"{output!r}; outputs never overwrite inputs"
                    )
                )
        info = StepInfo(
            name=name,
            workflow_id=self.workflow_id,
            file=self.file,
            base_dir=self.base_dir,
            inputs=self.inputs,
            outputs=frozenset(outputs) if node.get("outputs") is not None else None,
        )
        ci = self.ci_keys(node, hook=hook)
        when_node = node.get("when")
        when = parse_condition(when_node, issues) if when_node is not None else None
        error_behavior = parse_error_behavior(node.get("error_behavior"), issues)
        if hook and node.get("error_behavior") is not None:
            issues.append(
                node.value["error_behavior"].key_issue(
                    "a hook step takes the error behaviour of the step it belongs to"
                )
            )
        parallel_node = node.get("parallel")
        hooks: dict[str, tuple[StepSpec, ...]] = {}
        if parallel_node is not None:
            for key in ("type", "config", *HOOK_KEYS, "outputs", "matrix", "artifacts"):
                if node.get(key) is not None:
                    issues.append(
                        node.value[key].key_issue(
                            f"a parallel step takes no {key!r}; "
                            "put it on the steps inside `parallel`"
                        )
                    )
            if hook:
                issues.append(parallel_node.key_issue("a hook cannot be a parallel group"))
            branches = self.steps(parallel_node, f"parallel step {name!r}")
            return StepSpec(
                name=name,
                node=node,
                info=info,
                type_name=None,
                step_type=None,
                config={},
                parallel=branches,
                when=when,
                error_behavior=error_behavior,
                on_success=(),
                on_failure=(),
                ensure=(),
                outputs={},
                **ci,
            )
        for key in HOOK_KEYS:
            hooks[key] = self.steps(node.get(key), f"{key} of {name!r}", hook=True)
        type_node = node.get("type")
        type_name = DEFAULT_STEP_TYPE
        step_type: StepType | None = None
        if type_node is not None and expect_string(type_node, issues, what="a step type name"):
            type_name = str(type_node.value)
        if type_node is None or isinstance(type_node.value, str):
            if hook and type_name == "workflow" and type_node is not None:
                issues.append(
                    type_node.issue("a hook cannot be a sub-workflow (hooks finish in one run)")
                )
            found = self.registry.find(type_name)
            if isinstance(found, str):
                issues.append((type_node or node).issue(found))
            else:
                step_type = found
        config_node = node.get("config")
        if config_node is None:
            config_node = YamlNode({}, node.file, node.line, node.column, f"{node.path}.config")
        if expect_map(config_node, "a step configuration", issues) and step_type is not None:
            try:
                issues.extend(step_type.validate_config(config_node, info))
            except Exception as exc:  # a third-party plugin's bug must not escape validation
                issues.append(
                    config_node.issue(
                        f"step type {type_name!r} failed to validate: {type(exc).__name__}: {exc}"
                    )
                )
        return StepSpec(
            name=name,
            node=node,
            info=info,
            type_name=type_name,
            step_type=step_type,
            config=config_node.plain() if config_node.is_map else {},
            parallel=(),
            when=when,
            error_behavior=error_behavior,
            on_success=hooks["on_success"],
            on_failure=hooks["on_failure"],
            ensure=hooks["ensure"],
            outputs=outputs,
            **ci,
        )

    def ci_keys(self, node: YamlNode, *, hook: bool) -> dict[str, Any]:
        """The pipeline keys of a step (see :mod:`._ci_keys`)."""
        issues = self.issues
        nested = hook or self.depth > 1
        for key in TOP_LEVEL_ONLY:
            child = node.get(key)
            if child is not None and nested:
                issues.append(
                    child.key_issue(
                        f"`{key}` is allowed on the workflow's own steps only, not on hooks "
                        "or steps inside `parallel`"
                    )
                )
        needs = parse_needs(node.get("needs"), issues)
        return {
            "needs": tuple(n for n, _ in needs),
            "needs_nodes": tuple(n for _, n in needs),
            "declares_needs": node.get("needs") is not None and not nested,
            "matrix": parse_matrix(node.get("matrix"), issues),
            "env": parse_env(node.get("env"), issues),
            "continue_on_error": parse_bool(node.get("continue_on_error"), issues),
            "artifacts": parse_artifacts(node.get("artifacts"), issues),
        }


def parse_workflow(
    node: YamlNode, file: str, base_dir: Any, registry: StepTypeRegistry, issues: list[Issue]
) -> WorkflowSpec | None:
    """The workflow ``node`` describes; problems are appended to ``issues``."""
    if not expect_map(node, "a workflow", issues):
        return None
    check_keys(node, WORKFLOW_KEYS, issues)
    id_node = node.get("id")
    wid = ""
    if id_node is None:
        issues.append(node.issue("a workflow needs `id`"))
    elif expect_string(id_node, issues, what="a workflow id (string)"):
        wid = str(id_node.value)
    version = 1
    version_node = node.get("version")
    if version_node is not None:
        v = version_node.value
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            issues.append(
                version_node.issue(f"expected a positive integer, got {kind_of(version_node)}")
            )
        else:
            version = v
    texts: dict[str, str | None] = {}
    for key in ("name", "description"):
        child = node.get(key)
        texts[key] = child.value if child is not None and expect_string(child, issues) else None
    error_behavior = parse_error_behavior(node.get("error_behavior"), issues)
    inputs = parse_inputs(node.get("inputs"), issues)
    outputs = parse_type_map(node.get("outputs"), issues, "output")
    for name in outputs:
        if name in inputs:
            issues.append(
                node.value["outputs"].issue(
                    f"{name!r} is declared as an input and an output; outputs never "
                    "overwrite inputs"
                )
            )
    parser = _WorkflowParser(wid, file, base_dir, registry, frozenset(inputs))
    steps_node = node.get("steps")
    if steps_node is None:
        issues.append(node.issue("a workflow needs `steps` (a non-empty list)"))
    steps = parser.steps(steps_node, "steps")
    env = parse_env(node.get("env"), parser.issues)
    timeout = parse_timeout(node.get("timeout"), parser.issues)
    secrets = parse_secrets(node.get("secrets"), parser.issues)
    if steps_node is not None and not parser.issues:
        units = {
            unit_name(s.name, c)
            for s in steps
            if s.matrix is not None
            for c in s.matrix.combinations
        }
        check_step_references(node, set(parser.names) | units, parser.issues)
        check_pipeline(steps, secrets, parser.issues)
    issues.extend(parser.issues)
    return WorkflowSpec(
        id=wid,
        version=version,
        name=texts["name"],
        description=texts["description"],
        error_behavior=error_behavior or ErrorBehavior.suspend(),
        inputs=inputs,
        outputs=outputs,
        steps=steps,
        file=file,
        node=node,
        env=env,
        timeout=timeout,
        secrets=secrets,
    )
