# ruff: noqa: E501  (one-line YAML documents read better unwrapped)
"""``matrix:``: one concurrent instance of a step per combination, on a real host."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from wfe.core import WorkflowInstance, WorkflowStatus
from wfe.host import WorkflowHostBuilder
from wfe.yaml import CompiledWorkflow, YamlWorkflowError, load_workflow_from_str

GRAPH = "__wfe_graph__"


def load(text: str) -> CompiledWorkflow:
    return load_workflow_from_str(textwrap.dedent(text), {}, file="matrix.yaml")[0]


async def run(compiled: CompiledWorkflow, data: Any = None) -> tuple[WorkflowInstance, list[str]]:
    async with WorkflowHostBuilder().register(compiled).build() as host:
        wid = await host.start_workflow(compiled.id, None, data)
        inst = await host.wait_for_workflow(wid, timeout=30)
        errors = [e.message for e in await host.get_errors(wid)]
    return inst, errors


async def test_each_combination_runs_once_with_its_values_and_keeps_its_outputs() -> None:
    wf = load(
        """
        workflow:
          id: m
          steps:
            - name: test
              matrix:
                python: ["3.11", "3.12"]
                os: [linux, mac]
                exclude: [{python: "3.11", os: mac}]
                include: [{python: "3.12", os: mac, extra: slow}, {python: "3.13", os: linux}]
              config:
                run: 'echo "py=${{ matrix.python }}" >> $WFE_OUTPUT; echo "os=${{ matrix.os }}" >> $WFE_OUTPUT'
            - name: after
              config: {run: "echo done"}
        """
    )
    inst, errors = await run(wf)
    assert inst.status is WorkflowStatus.COMPLETE, errors
    status = inst.data[GRAPH]["status"]
    assert status == {
        "test (3.11, linux)": "complete",
        "test (3.12, linux)": "complete",
        "test (3.12, mac, slow)": "complete",
        "test (3.13, linux)": "complete",
        "after": "complete",
    }
    steps = inst.data["steps"]
    assert steps["test (3.11, linux)"]["outputs"] == {"py": 3.11, "os": "linux"}
    assert steps["test (3.12, mac, slow)"]["outputs"] == {"py": 3.12, "os": "mac"}
    assert steps["test (3.13, linux)"]["outputs"] == {"py": 3.13, "os": "linux"}


async def test_combinations_run_concurrently(tmp_path: Path) -> None:
    # Each instance waits (at most 10 s) for the other to have started.
    wf = load(
        f"""
        workflow:
          id: conc
          steps:
            - name: pair
              matrix: {{side: [left, right]}}
              config:
                run: |
                  touch {tmp_path}/${{{{ matrix.side }}}}
                  for i in $(seq 500); do [ -e {tmp_path}/left ] && [ -e {tmp_path}/right ] && exit 0; sleep 0.02; done
                  exit 1
        """
    )
    inst, errors = await run(wf)
    assert inst.status is WorkflowStatus.COMPLETE, errors


async def test_max_parallel_bounds_how_many_instances_run_at_once(tmp_path: Path) -> None:
    log = tmp_path / "log"
    wf = load(
        f"""
        workflow:
          id: bounded
          steps:
            - name: job
              matrix: {{n: [1, 2, 3, 4], max_parallel: 1}}
              config: {{run: "echo start >> {log}; sleep 0.05; echo end >> {log}"}}
        """
    )
    inst, errors = await run(wf)
    assert inst.status is WorkflowStatus.COMPLETE, errors
    assert log.read_text().split() == ["start", "end"] * 4


async def test_fail_fast_skips_instances_not_started_and_dependents(tmp_path: Path) -> None:
    log = tmp_path / "log"
    wf = load(
        f"""
        workflow:
          id: ff
          steps:
            - name: job
              matrix: {{n: [1, 2, 3], max_parallel: 1}}
              config: {{run: "echo ${{{{ matrix.n }}}} >> {log}; [ ${{{{ matrix.n }}}} != 1 ]"}}
            - {{name: build, needs: [job], config: {{run: "true"}}}}
        """
    )
    inst, _ = await run(wf)
    assert inst.status is WorkflowStatus.SUSPENDED
    assert log.read_text().split() == ["1"]
    state = inst.data[GRAPH]
    assert state["status"] == {
        "job (1)": "failed",
        "job (2)": "skipped",
        "job (3)": "skipped",
        "build": "skipped",
    }
    assert state["reasons"]["job (2)"] == "fail_fast: 'job (1)' failed"


async def test_without_fail_fast_every_instance_runs(tmp_path: Path) -> None:
    log = tmp_path / "log"
    wf = load(
        f"""
        workflow:
          id: noff
          steps:
            - name: job
              matrix: {{n: [1, 2, 3], max_parallel: 1, fail_fast: false}}
              config: {{run: "echo ${{{{ matrix.n }}}} >> {log}; [ ${{{{ matrix.n }}}} != 2 ]"}}
        """
    )
    inst, errors = await run(wf)
    assert inst.status is WorkflowStatus.SUSPENDED
    assert sorted(log.read_text().split()) == ["1", "2", "3"]
    assert any("1 step(s) failed: job (2)" in e for e in errors), errors


async def test_matrix_values_reach_the_shell_as_data_never_as_code(tmp_path: Path) -> None:
    wf = load(
        f"""
        workflow:
          id: inject
          steps:
            - name: job
              matrix: {{v: ["$(touch {tmp_path}/pwned)", "a; touch {tmp_path}/pwned2"]}}
              config: {{run: "echo got=${{{{ matrix.v }}}} >> $WFE_OUTPUT"}}
        """
    )
    inst, errors = await run(wf)
    assert inst.status is WorkflowStatus.COMPLETE, errors
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "pwned2").exists()
    assert (
        inst.data["steps"][f"job ($(touch {tmp_path}/pwned))"]["outputs"]["got"]
        == f"$(touch {tmp_path}/pwned)"
    )


@pytest.mark.parametrize(
    ("step", "where", "message"),
    [
        (
            "{name: a, config: {run: 'echo ${{ matrix.x }}'}}",
            (5, 31),
            "`${{ matrix.x }}`: this step has no `matrix`",
        ),
        (
            "{name: a, matrix: {y: [1]}, config: {run: 'echo ${{ matrix.x }}'}}",
            (5, 49),
            "the matrix has no axis 'x' (axes: y)",
        ),
        (
            "{name: a, matrix: {y: []}, config: {run: x}}",
            (5, 29),
            "expected a non-empty list of values for axis 'y'",
        ),
        ("{name: a, matrix: [1], config: {run: x}}", (5, 25), "expected a matrix"),
        (
            "{name: a, matrix: {y: [1], max_parallel: 0}, config: {run: x}}",
            (5, 48),
            "expected a positive integer",
        ),
        (
            "{name: a, matrix: {y: [1], exclude: [{z: 1}]}, config: {run: x}}",
            (5, 45),
            "exclude names no axis 'z'",
        ),
        ("{name: a, matrix: {y: [{k: v}]}, config: {run: x}}", (5, 30), "expected a value of 'y'"),
    ],
)
def test_bad_matrices_are_validation_errors_with_positions(
    step: str, where: tuple[int, int], message: str
) -> None:
    text = f"\nworkflow:\n  id: bad\n  steps:\n    - {step}\n"
    with pytest.raises(YamlWorkflowError) as info:
        load_workflow_from_str(text, {}, file="m.yaml")
    issue = next((i for i in info.value.issues if message in i.message), None)
    assert issue is not None, str(info.value)
    assert (issue.line, issue.column) == where, str(info.value)
    assert len(info.value.issues) == 1, str(info.value)
