"""Acceptance tests for DESIGN.md §7 (YAML workflows).

The public API: the design example, loading, registering, validate.

Black-box: only the public names written in DESIGN.md §7 (``load_workflow``,
``load_workflow_from_str``, ``validate``, ``CompiledWorkflow.definition``) plus the
host of §5 are used, and behaviour is observed through workflow status, data,
recorded errors and files on disk.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from wfe.core import WorkflowDefinition, WorkflowStatus
from wfe.host import WorkflowHostBuilder
from wfe.yaml import (
    CompiledWorkflow,
    load_workflow,
    load_workflow_from_str,
    validate,
)

# The helpers live in a sibling module so that they are importable by name
# (pytest's importlib mode does not put tests/ on sys.path).
sys.path.insert(0, str(Path(__file__).parent))
from yaml_acceptance_support import dedent, issues_text, listing, one, run, write

# --------------------------------------------------------------------------- API


DESIGN_EXAMPLE = """
workflow:
  id: deploy-pipeline
  version: 1
  error_behavior: {type: suspend}          # default for YAML workflows
  steps:
    - name: Test
      config:
        run: test 1 -eq 1
        timeout: "300s"
    - name: Count
      config:
        run: echo "##wfe[output files=$(ls | wc -l)]"
    - name: Notify
      type: deno
      when: {field: .outputs.files, gt: 0}
      config:
        script: |
          const data = Wfe.getData();
          Wfe.setOutput("status", `saw ${data.files} files`);
        permissions:
          net: ["hooks.example.com"]
        timeout: "10s"
"""


async def test_design_example_runs_to_completion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The §7 example (pytest replaced) completes; Count's output feeds Notify."""
    monkeypatch.chdir(tmp_path)
    for i in range(3):
        (tmp_path / f"f{i}.txt").write_text("x")
    path = write(tmp_path / "deploy.yaml", DESIGN_EXAMPLE)
    compiled = load_workflow(path, {})
    assert isinstance(compiled, CompiledWorkflow)
    assert isinstance(compiled.definition, WorkflowDefinition)
    assert compiled.definition.id == "deploy-pipeline"
    assert compiled.definition.version == 1
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    files = len(listing(tmp_path))
    assert out.data["files"] == files
    assert out.data["status"] == f"saw {files} files"


async def test_design_example_skips_notify_when_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`when: {field: .outputs.files, gt: 0}` is false with files=0: Notify is skipped."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    compiled = one(DESIGN_EXAMPLE)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["files"] == 0
    assert "status" not in out.data


def test_load_workflow_from_str_returns_a_list_of_compiled_workflows() -> None:
    compiled = load_workflow_from_str(
        dedent("""
        workflows:
          - id: first
            steps: [{name: a, config: {run: "true"}}]
          - id: second
            version: 3
            steps: [{name: b, config: {run: "true"}}]
        """),
        {},
    )
    assert isinstance(compiled, list)
    assert [(c.definition.id, c.definition.version) for c in compiled] == [
        ("first", 1),
        ("second", 3),
    ]
    assert all(isinstance(c, CompiledWorkflow) for c in compiled)


def test_load_workflow_from_str_single_workflow_is_a_one_element_list() -> None:
    compiled = load_workflow_from_str(
        "workflow:\n  id: solo\n  steps:\n    - name: a\n      config: {run: 'true'}\n", {}
    )
    assert isinstance(compiled, list)
    assert len(compiled) == 1
    assert compiled[0].definition.id == "solo"


def test_workflow_keys_id_version_name_description() -> None:
    compiled = one("""
        workflow:
          id: keyed
          version: 7
          name: Keyed workflow
          description: checks every workflow key
          steps:
            - name: a
              config: {run: "true"}
        """)
    assert compiled.definition.id == "keyed"
    assert compiled.definition.version == 7
    assert compiled.definition.description == "checks every workflow key"


async def test_compiled_workflow_registers_with_host_register() -> None:
    """`host.register(compiled)` works like registering a definition."""
    compiled = one("""
        workflow:
          id: reg-host
          steps:
            - name: a
              config: {run: 'echo "##wfe[output ok=true]"'}
        """)
    async with WorkflowHostBuilder().build() as host:
        host.register(compiled)
        wid = await host.start_workflow("reg-host", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=30)
    assert instance.status == WorkflowStatus.COMPLETE
    assert instance.data["ok"] is True


async def test_compiled_workflow_registers_with_builder_register() -> None:
    compiled = one("""
        workflow:
          id: reg-builder
          steps:
            - name: a
              config: {run: 'echo "##wfe[output ok=true]"'}
        """)
    async with WorkflowHostBuilder().register(compiled).build() as host:
        wid = await host.start_workflow("reg-builder", None, {})
        instance = await host.wait_for_workflow(wid, timeout=30)
    assert instance.status == WorkflowStatus.COMPLETE
    assert instance.data["ok"] is True


def test_validate_accepts_a_good_file_and_reports_a_bad_one(tmp_path: Path) -> None:
    good = write(
        tmp_path / "good.yaml",
        """
        workflow:
          id: good
          steps: [{name: a, config: {run: "true"}}]
        """,
    )
    bad = write(
        tmp_path / "bad.yaml",
        """
        workflow:
          id: bad
          steps:
            - name: a
              config: {run: "true"}
              colour: blue
        """,
    )
    assert not validate(good)
    assert not validate(str(good))
    assert not validate(good.read_text())
    assert "colour" in issues_text(validate(str(bad)))
    found = issues_text(validate(bad))
    assert "colour" in found
    assert "bad.yaml:6:" in found
