"""The ``workflow`` step type: runs another registered workflow and waits for it.

``config: {workflow: ID, version: N, inputs: {...}}``. The child starts with
``inputs`` (values may use ``${{ data.path }}``, an expression standing alone keeps
its type), or, without ``inputs``, with a copy of this workflow's data minus
``steps``. When the child completes, its data (minus ``steps``) is merged into this
workflow's data as outputs and ``data["steps"][NAME]`` records ``{"workflow_id",
"status"}``; a child that ends terminated fails the step.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar

from wfe.core import ExecutionResult, StepBody, StepError, StepExecutionContext, WorkflowStatus
from wfe.core.primitives import SubWorkflow

from ._checks import check_keys, expect_map, expect_string, forbid_data_expressions, kind_of
from ._data import EXPORTS_KEY, STEPS_KEY, exported_names, record_step, workflow_data
from ._errors import Issue
from ._graph_state import GRAPH_KEY
from ._interpolation import render_value
from ._nodes import YamlNode
from ._plugins import StepInfo

WORKFLOW_KEYS = ("workflow", "version", "inputs")


class WorkflowStepBody(SubWorkflow):
    """Starts the bound child workflow; subclasses bind ``child_workflow``,
    ``child_version``, ``child_inputs`` and ``info``."""

    child_workflow: ClassVar[str]
    child_version: ClassVar[int | None]
    child_inputs: ClassVar[Mapping[str, Any] | None]
    info: ClassVar[StepInfo]

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        cls = type(self)
        data = workflow_data(ctx.workflow.data)
        self.definition_id = cls.child_workflow
        self.version = cls.child_version
        if cls.child_inputs is not None:
            self.data = render_value(dict(cls.child_inputs), data)
        else:
            self.data = copy.deepcopy(
                {k: v for k, v in data.items() if k not in (STEPS_KEY, GRAPH_KEY)}
            )
        result = await super().run(ctx)
        if result is None or not result.proceed:
            return result
        status = self.child_status
        record: dict[str, Any] = {
            "workflow_id": self.child_id,
            "status": str(status.value) if status else None,
        }
        child = self.child_data if isinstance(self.child_data, dict) else {}
        # What the child's steps wrote to $WFE_OUTPUT stays exported here too.
        exports = sorted(exported_names(child, ()) - cls.info.inputs)
        if exports:
            record[EXPORTS_KEY] = exports
        record_step(data, cls.info.name, record)
        if status is not WorkflowStatus.COMPLETE:
            raise StepError(
                f"step {cls.info.name!r}: sub-workflow {cls.child_workflow!r} "
                f"({self.child_id}) ended {status.value if status else 'unknown'}"
            )
        # The child's data started as a copy of this workflow's: its copies of declared
        # inputs are not merged back (outputs never overwrite inputs), and a step that
        # declares outputs takes only those.
        declared = cls.info.outputs
        data.update(
            (k, v)
            for k, v in child.items()
            if k not in (STEPS_KEY, GRAPH_KEY)
            and k not in cls.info.inputs
            and (declared is None or k in declared)
        )
        return result


class WorkflowStepType:
    """The ``workflow`` step type (a sub-workflow)."""

    def validate_config(self, node: YamlNode, info: StepInfo) -> list[Issue]:
        issues: list[Issue] = []
        check_keys(node, WORKFLOW_KEYS, issues)
        wf = node.get("workflow")
        if wf is None:
            issues.append(node.issue("a workflow step needs `workflow` (the child's id)"))
        else:
            expect_string(wf, issues, what="a workflow id (string)")
            forbid_data_expressions(wf, issues, "it is fixed when the file loads")
        version = node.get("version")
        if version is not None and (
            not isinstance(version.value, int)
            or isinstance(version.value, bool)
            or version.value < 1
        ):
            issues.append(version.issue(f"expected a positive integer, got {kind_of(version)}"))
        inputs = node.get("inputs")
        if inputs is not None:
            expect_map(inputs, "inputs", issues)
        return issues

    def build(self, config: Mapping[str, Any], info: StepInfo) -> type[StepBody]:
        return type(
            f"WorkflowStep[{info.name}]",
            (WorkflowStepBody,),
            {
                "child_workflow": config["workflow"],
                "child_version": config.get("version"),
                "child_inputs": config.get("inputs"),
                "info": info,
                "fingerprint_key": "yaml:workflow",
            },
        )
