# ruff: noqa: E501  (one-line YAML documents read better unwrapped)
"""Workflow- and step-level ``env:``, ``continue_on_error`` and the workflow ``timeout``."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from wfe.core import WorkflowInstance, WorkflowStatus
from wfe.host import WorkflowHostBuilder
from wfe.yaml import CompiledWorkflow, YamlWorkflowError, load_workflow_from_str


def load(text: str) -> CompiledWorkflow:
    return load_workflow_from_str(textwrap.dedent(text), {}, file="env.yaml")[0]


async def run(compiled: CompiledWorkflow, data: Any = None) -> tuple[WorkflowInstance, list[str]]:
    async with WorkflowHostBuilder().register(compiled).build() as host:
        wid = await host.start_workflow(compiled.id, None, data)
        inst = await host.wait_for_workflow(wid, timeout=30)
        errors = [e.message for e in await host.get_errors(wid)]
    return inst, errors


async def test_env_layers_step_over_workflow_and_config_over_step() -> None:
    wf = load(
        """
        workflow:
          id: env
          inputs: {who: string}
          env: {LEVEL: workflow, ONLY_WF: w, GREETING: "hi ${{ data.who }}"}
          steps:
            - name: a
              env: {LEVEL: step, ONLY_STEP: s}
              config:
                run: 'echo "got=$LEVEL/$ONLY_WF/$ONLY_STEP/$GREETING/$FROM_CONFIG" >> $WFE_OUTPUT'
                env: {FROM_CONFIG: c}
            - name: b
              config:
                run: 'echo "b=$LEVEL/${ONLY_STEP:-none}" >> $WFE_OUTPUT'
                env: {LEVEL: config}
        """
    )
    inst, errors = await run(wf, {"who": "ann; $(rm -rf /)"})
    assert inst.status is WorkflowStatus.COMPLETE, errors
    assert inst.data["got"] == "step/w/s/hi ann; $(rm -rf /)/c"
    assert inst.data["b"] == "config/none"


async def test_continue_on_error_records_the_failure_and_the_flow_goes_on(tmp_path: Path) -> None:
    wf = load(
        f"""
        workflow:
          id: coe
          steps:
            - {{name: flaky, continue_on_error: true, config: {{run: "echo oops >&2; exit 5"}}}}
            - {{name: next, config: {{run: "touch {tmp_path}/ran"}}}}
        """
    )
    inst, errors = await run(wf)
    assert inst.status is WorkflowStatus.COMPLETE, errors
    assert (tmp_path / "ran").exists()
    record = inst.data["steps"]["flaky"]
    assert record["outcome"] == "failure"
    assert "exit code 5" in record["error"]
    assert record["exit_code"] == 5


async def test_continue_on_error_in_a_graph_counts_as_done_for_dependents(tmp_path: Path) -> None:
    wf = load(
        f"""
        workflow:
          id: coeg
          steps:
            - {{name: a, continue_on_error: true, config: {{run: "exit 1"}}}}
            - {{name: b, needs: [a], config: {{run: "touch {tmp_path}/b"}}}}
        """
    )
    inst, errors = await run(wf)
    assert inst.status is WorkflowStatus.COMPLETE, errors
    assert (tmp_path / "b").exists()
    assert inst.data["__wfe_graph__"]["status"]["a"] == "complete"


async def test_the_workflow_timeout_stops_a_running_step_and_suspends(tmp_path: Path) -> None:
    wf = load(
        f"""
        workflow:
          id: slow
          timeout: 1s
          steps:
            - {{name: quick, config: {{run: "true"}}}}
            - {{name: forever, config: {{run: "sleep 60; touch {tmp_path}/finished"}}}}
        """
    )
    inst, errors = await run(wf)
    assert inst.status is WorkflowStatus.SUSPENDED
    assert any(
        "step 'forever': the workflow's timeout (1s, counted from its start) ran out while it ran"
        in e
        for e in errors
    ), errors
    assert not (tmp_path / "finished").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("  env: {1BAD: x}\n", "'1BAD' is not a valid environment variable name"),
        ("  timeout: soon\n", "expected a duration"),
        ("  timeout: 0s\n", "expected a positive duration"),
    ],
)
def test_bad_workflow_keys_are_positioned_errors(text: str, message: str) -> None:
    doc = f"workflow:\n  id: w\n{text}  steps:\n    - {{name: a, config: {{run: x}}}}\n"
    with pytest.raises(YamlWorkflowError) as info:
        load_workflow_from_str(doc, {}, file="w.yaml")
    assert message in str(info.value)
    assert str(info.value.issues[0]).startswith("w.yaml:3:")


def test_env_on_a_sub_workflow_step_is_refused() -> None:
    doc = textwrap.dedent(
        """\
        workflows:
          - id: child
            steps: [{name: c, config: {run: "true"}}]
          - id: parent
            steps:
              - {name: p, type: workflow, env: {A: b}, config: {workflow: child}}
        """
    )
    with pytest.raises(YamlWorkflowError) as info:
        load_workflow_from_str(doc, {}, file="w.yaml")
    assert "w.yaml:6:35: workflows[1].steps[0].env: `env` is for shell and deno steps" in str(
        info.value
    )


def test_continue_on_error_takes_a_bool() -> None:
    doc = "workflow:\n  id: w\n  steps:\n    - {name: a, continue_on_error: yes please, config: {run: x}}\n"
    with pytest.raises(YamlWorkflowError) as info:
        load_workflow_from_str(doc, {}, file="w.yaml")
    assert "w.yaml:4:36: workflow.steps[0].continue_on_error: expected true or false" in str(
        info.value
    )
