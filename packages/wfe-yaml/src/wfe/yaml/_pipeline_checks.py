"""Checks across the steps of a workflow using the pipeline keys: ``needs`` name
existing steps and form no cycle; ``${{ matrix.x }}``, ``${{ secrets.X }}`` and
``${{ artifacts.step.name }}`` name something declared."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._ci_keys import check_namespaces, expressions_in, find_cycle
from ._errors import Issue

if TYPE_CHECKING:
    from ._schema import StepSpec

ENV_STEP_TYPES = ("shell", "deno")


def _all_steps(steps: Sequence[StepSpec]) -> list[StepSpec]:
    out: list[StepSpec] = []
    for s in steps:
        out.append(s)
        out.extend(_all_steps(s.parallel + s.on_success + s.on_failure + s.ensure))
    return out


def check_pipeline(steps: Sequence[StepSpec], secrets: Sequence[str], issues: list[Issue]) -> None:
    """Append an issue for every broken reference between the workflow's steps."""
    top = {s.name: s for s in steps}
    for s in steps:
        for need, node in zip(s.needs, s.needs_nodes, strict=True):
            if need == s.name:
                issues.append(node.issue(f"step {s.name!r} cannot need itself"))
            elif need not in top:
                close = difflib.get_close_matches(need, list(top), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                issues.append(
                    node.issue(
                        f"`needs` names {need!r}, which is not a step of this workflow{hint} "
                        f"(steps: {', '.join(top)})"
                    )
                )
    graph = {s.name: [n for n in s.needs if n in top and n != s.name] for s in steps}
    cycle = find_cycle(graph)
    if cycle is not None:
        first, second = cycle[0], cycle[1]
        where = top[first].needs_nodes[top[first].needs.index(second)]
        issues.append(
            where.issue(
                f"`needs` forms a cycle: {' -> '.join(cycle)}; a step cannot (even "
                "indirectly) need itself"
            )
        )
    artifacts = {s.name: {a.name for a in s.artifacts} for s in _all_steps(steps)}
    for s in steps:
        refs = check_namespaces(s.node, matrix=s.matrix, secrets=secrets, issues=issues)
        for step, name, node in refs:
            if step not in artifacts:
                issues.append(
                    node.issue(f"`${{{{ artifacts.{step}.{name} }}}}`: there is no step {step!r}")
                )
            elif name not in artifacts[step]:
                declared = ", ".join(sorted(artifacts[step])) or "none"
                issues.append(
                    node.issue(
                        f"`${{{{ artifacts.{step}.{name} }}}}`: step {step!r} "
                        f"declares no artifact {name!r} (declared: {declared})"
                    )
                )
    for s in _all_steps(steps):
        if s.type_name == "workflow":
            config = s.node.get("config")
            for namespace, parts, where in expressions_in(config) if config is not None else ():
                if namespace == "secrets":
                    issues.append(
                        where.issue(
                            f"`${{{{ secrets.{parts[0]} }}}}` cannot be given to a sub-workflow: "
                            "its inputs become its stored data; secrets are never stored"
                        )
                    )
        if s.env and s.type_name not in ENV_STEP_TYPES:
            env_node = s.node.get("env")
            assert env_node is not None
            issues.append(
                env_node.key_issue(
                    f"`env` is for {' and '.join(ENV_STEP_TYPES)} "
                    f"steps, not {s.type_name or 'parallel'} steps"
                )
            )
