# ruff: noqa: E501  (one-line YAML documents read better unwrapped)
"""Secrets through the host API: given beside the data, masked in data, logs and errors,
and a step without them stops naming them."""

from __future__ import annotations

import base64
import json
import textwrap

import pytest

from wfe.core import WorkflowStatus
from wfe.core.secrets import Masker, mask, masked_forms
from wfe.host import WorkflowHostBuilder
from wfe.yaml import CompiledWorkflow, YamlWorkflowError, load_workflow_from_str

TOKEN = "tok-9f8e7d6c5b"


def load(text: str) -> CompiledWorkflow:
    return load_workflow_from_str(textwrap.dedent(text), {}, file="s.yaml")[0]


WF = """
workflow:
  id: s
  secrets: [TOKEN]
  steps:
    - name: a
      config:
        run: |
          echo "see $TOKEN"
          echo "out=${{ secrets.TOKEN }}" >> $WFE_OUTPUT
          printf %s "$TOKEN" | base64 >&2
          exit 3
"""


async def test_secrets_are_masked_in_data_logs_and_errors() -> None:
    lines: list[tuple[str, str]] = []
    wf = load(WF)
    builder = WorkflowHostBuilder().register(wf).log_sink(lambda s, line: lines.append((s, line)))
    async with builder.build() as host:
        wid = await host.start_workflow("s", None, {}, secrets={"TOKEN": TOKEN})
        inst = await host.wait_for_workflow(wid, timeout=30)
        errors = [e.message for e in await host.get_errors(wid)]
        assert host.secrets.get(wid) == {"TOKEN": TOKEN}  # suspended: still here
    assert inst.status is WorkflowStatus.SUSPENDED
    everything = json.dumps(inst.data) + json.dumps(errors) + json.dumps(lines)
    assert TOKEN not in everything
    assert base64.b64encode(TOKEN.encode()).decode() not in everything
    assert inst.data["steps"]["a"]["outputs"]["out"] == "***"
    assert ("stdout", "see ***") in lines
    assert any("exit code 3" in e and "***" in e for e in errors)


async def test_a_step_without_its_secrets_stops_naming_them() -> None:
    wf = load(WF)
    async with WorkflowHostBuilder().register(wf).build() as host:
        wid = await host.start_workflow("s", None, {})
        inst = await host.wait_for_workflow(wid, timeout=30)
        errors = [e.message for e in await host.get_errors(wid)]
    assert inst.status is WorkflowStatus.SUSPENDED
    assert any(
        "secret(s) TOKEN were not given to this process" in e
        and f"wfe resume {wid} --secret TOKEN" in e
        for e in errors
    ), errors


async def test_a_finished_workflows_secrets_are_forgotten() -> None:
    wf = load(
        "workflow:\n  id: f\n  secrets: [TOKEN]\n  steps:\n    - {name: a, config: {run: 'test -n \"$TOKEN\"'}}\n"
    )
    async with WorkflowHostBuilder().register(wf).build() as host:
        wid = await host.start_workflow("f", None, {}, secrets={"TOKEN": TOKEN})
        inst = await host.wait_for_workflow(wid, timeout=30)
        assert inst.status is WorkflowStatus.COMPLETE
        assert host.secrets.get(wid) == {}


def test_undeclared_secrets_are_validation_errors() -> None:
    doc = "workflow:\n  id: u\n  secrets: [A]\n  steps:\n    - {name: a, config: {run: 'echo ${{ secrets.B }}'}}\n"
    with pytest.raises(YamlWorkflowError) as info:
        load_workflow_from_str(doc, {}, file="u.yaml")
    assert (
        "u.yaml:5:31: workflow.steps[0].config.run: `${{ secrets.B }}`: secret 'B' is not declared in the workflow's `secrets:` (declared: A)"
        in str(info.value)
    )


def test_masking_covers_derived_forms_but_not_short_fragments() -> None:
    value = 'p@ss "word"\nline-two'
    text = " ".join(masked_forms(value))
    assert mask(text, {"X": value}).replace("***", "").strip() == ""
    assert mask("a p b", {"X": "p"}) == "a *** b"  # the value itself, however short
    assert Masker({"X": "abc"}).forms == ["abc"]  # no derived forms under 4 characters
    assert mask(base64.b64encode(b"user:" + value.encode()).decode(), {"X": value}) != "***"


async def test_deno_steps_get_secrets_by_name_and_their_logs_and_outputs_are_masked() -> None:
    wf = load(
        """
        workflow:
          id: d
          secrets: [TOKEN]
          steps:
            - name: js
              type: deno
              config:
                permissions: {env: [TOKEN]}
                script: |
                  const t = Deno.env.get("TOKEN");
                  console.log(`console ${t}`);
                  Wfe.log(`wfe ${t}`);
                  Wfe.setOutput("seen", t);
        """
    )
    lines: list[tuple[str, str]] = []
    builder = WorkflowHostBuilder().register(wf).log_sink(lambda s, line: lines.append((s, line)))
    async with builder.build() as host:
        wid = await host.start_workflow("d", None, {}, secrets={"TOKEN": TOKEN})
        inst = await host.wait_for_workflow(wid, timeout=60)
        errors = [e.message for e in await host.get_errors(wid)]
    assert inst.status is WorkflowStatus.COMPLETE, errors
    assert ("stdout", "console ***") in lines
    assert ("log", "wfe ***") in lines
    assert inst.data["seen"] == "***"
    assert TOKEN not in json.dumps(inst.data) + json.dumps(lines)


def test_secrets_cannot_be_passed_to_a_sub_workflow() -> None:
    doc = textwrap.dedent(
        """\
        workflows:
          - id: child
            inputs: {t: string}
            steps: [{name: c, config: {run: "true"}}]
          - id: parent
            secrets: [TOKEN]
            steps:
              - {name: p, type: workflow, config: {workflow: child, inputs: {t: "${{ secrets.TOKEN }}"}}}
        """
    )
    with pytest.raises(YamlWorkflowError) as info:
        load_workflow_from_str(doc, {}, file="w.yaml")
    assert "cannot be given to a sub-workflow: its inputs become its stored data" in str(info.value)
    assert str(info.value).startswith("w.yaml:8:")
