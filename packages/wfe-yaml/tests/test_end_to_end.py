# ruff: noqa: E501  (one-line YAML documents read better unwrapped)
"""Compiled YAML workflows running on a real (in-memory) host."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from wfe.core import WorkflowInstance, WorkflowStatus
from wfe.host import WorkflowHostBuilder
from wfe.yaml import CompiledWorkflow, YamlWorkflowError, load_workflow, load_workflow_from_str

EXAMPLE = Path(__file__).parents[3] / "examples" / "ci-pipeline.yaml"


async def run(
    compiled: list[CompiledWorkflow], data: Any = None, wf_id: str | None = None
) -> tuple[WorkflowInstance, list[str]]:
    builder = WorkflowHostBuilder()
    for c in compiled:
        builder = builder.register(c)
    async with builder.build() as host:
        wid = await host.start_workflow(wf_id or compiled[0].id, None, data)
        inst = await host.wait_for_workflow(wid, timeout=30)
        errors = [e.message for e in await host.get_errors(wid)]
    return inst, errors


def load(text: str, **config: Any) -> list[CompiledWorkflow]:
    return load_workflow_from_str(textwrap.dedent(text), config, file="e2e.yaml")


async def test_ci_example_runs_and_completes(tmp_path: Path) -> None:
    inst, errors = await run([load_workflow(EXAMPLE, {"branch": "main"})])
    assert inst.status is WorkflowStatus.COMPLETE, errors
    data = inst.data
    assert data["tests_passed"] == 42
    assert data["artifact"].endswith("app-main.tar")
    assert data["summary"] == "lint=0 passed=42"
    assert data["steps"]["notify"] == {"skipped": True}
    assert "build finished" in data["steps"]["build-cleanup-note"]["stdout"]


async def test_parallel_steps_run_concurrently(tmp_path: Path) -> None:
    # Each branch marks itself started, then waits until all three have started: run one
    # after another, the first would wait in vain and fail. No timing is assumed.
    wait = (
        f"touch {tmp_path}/$N; for i in $(seq 200); do "
        f"[ -e {tmp_path}/a ] && [ -e {tmp_path}/b ] && [ -e {tmp_path}/c ] && break; "
        "sleep 0.05; done; "
        f"[ -e {tmp_path}/a ] && [ -e {tmp_path}/b ] && [ -e {tmp_path}/c ]"
    )
    wfs = load(
        f"""
        workflow:
          id: par
          steps:
            - name: all
              parallel:
                - {{name: a, config: {{run: "N=a; {wait}; echo a=1 >> $WFE_OUTPUT"}}}}
                - {{name: b, config: {{run: "N=b; {wait}; echo b=2 >> $WFE_OUTPUT"}}}}
                - {{name: c, config: {{run: "N=c; {wait}; echo c=3 >> $WFE_OUTPUT"}}}}
            - name: after
              config: {{run: "echo \\"##wfe[output sum=$((A + B + C))]\\""}}
        """
    )
    inst, errors = await run(wfs, {})
    assert inst.status is WorkflowStatus.COMPLETE, errors
    assert inst.data["sum"] == 6


async def test_when_skips_and_runs_by_condition() -> None:
    wfs = load(
        """
        workflow:
          id: cond
          inputs: {env: string}
          steps:
            - name: count
              config: {run: "echo '##wfe[output files=2]'"}
            - name: prod-only
              when: {field: .inputs.env, equals: prod}
              config: {run: "echo '##wfe[output deployed=true]'"}
            - name: has-files
              when: {all: [{field: .outputs.files, gt: 0}, {not: {field: .inputs.env, equals: prod}}]}
              config: {run: "echo '##wfe[output noticed=true]'"}
            - name: group
              when: {field: .outputs.files, gt: 5}
              parallel: [{name: never, config: {run: "echo '##wfe[output never=true]'"}}]
        """
    )
    inst, errors = await run(wfs, {"env": "dev"})
    assert inst.status is WorkflowStatus.COMPLETE, errors
    assert "deployed" not in inst.data
    assert "never" not in inst.data
    assert inst.data["noticed"] is True
    assert inst.data["steps"]["prod-only"] == {"skipped": True}


async def test_hooks_on_failure_then_ensure_then_suspend() -> None:
    wfs = load(
        """
        workflow:
          id: hooks
          steps:
            - name: ok
              config: {run: "echo order=ok >> $WFE_OUTPUT"}
              on_success: [{name: ok-success, config: {run: 'echo "order=$ORDER,success" >> "$WFE_OUTPUT"'}}]
              ensure: [{name: ok-ensure, config: {run: 'echo "order=$ORDER,ensure" >> "$WFE_OUTPUT"'}}]
            - name: bad
              config: {run: "echo boom >&2; exit 4"}
              on_failure:
                - name: bad-failure
                  config: {run: 'echo "##wfe[output seen=${{ data.steps.bad.exit_code }}]"'}
              ensure: [{name: bad-ensure, config: {run: 'echo "order=$ORDER,bad-ensure" >> "$WFE_OUTPUT"'}}]
            - name: never
              config: {run: "echo '##wfe[output never=true]'"}
        """
    )
    inst, errors = await run(wfs, {})
    assert inst.status is WorkflowStatus.SUSPENDED
    assert inst.data["order"] == "ok,success,ensure,bad-ensure"
    assert inst.data["seen"] == 4
    assert "never" not in inst.data
    assert any("exit code 4" in e and "boom" in e for e in errors), errors


async def test_terminate_error_behavior() -> None:
    wfs = load(
        """
        workflow:
          id: term
          error_behavior: {type: terminate}
          steps: [{name: bad, config: {run: "exit 1"}}]
        """
    )
    inst, _ = await run(wfs, {})
    assert inst.status is WorkflowStatus.TERMINATED


async def test_retry_error_behavior_runs_again(tmp_path: Path) -> None:
    counter = tmp_path / "n"
    wfs = load(
        f"""
        workflow:
          id: retry
          steps:
            - name: flaky
              error_behavior: {{type: retry, interval: 100ms, max_retries: 3}}
              config:
                run: |
                  echo x >> {counter}
                  [ "$(wc -l < {counter})" -ge 3 ]
        """
    )
    inst, _ = await run(wfs, {})
    assert inst.status is WorkflowStatus.COMPLETE
    assert counter.read_text().count("x") == 3


async def test_sub_workflow_runs_and_merges_its_data() -> None:
    wfs = load(
        """
        workflows:
          - id: parent
            steps:
              - name: call
                type: workflow
                config: {workflow: child, inputs: {who: "${{ data.name }}", n: "${{ data.n }}"}}
              - name: after
                config: {run: "echo \\"##wfe[output final=$GREETING]\\""}
          - id: child
            inputs: {who: string, n: integer}
            steps:
              - name: greet
                config: {run: "echo greeting=hello ${{ data.who }} ${{ data.n }} >> $WFE_OUTPUT"}
        """
    )
    inst, errors = await run(wfs, {"name": "ann", "n": 2})
    assert inst.status is WorkflowStatus.COMPLETE, errors
    assert inst.data["final"] == "hello ann 2"
    assert inst.data["steps"]["call"]["status"] == "COMPLETE"


async def test_start_data_is_checked_against_declared_inputs() -> None:
    wfs = load(
        "workflow: {id: typed, inputs: {n: integer}, steps: [{name: a, config: {run: 'true'}}]}"
    )
    async with WorkflowHostBuilder().register(wfs[0]).build() as host:
        with pytest.raises(YamlWorkflowError, match="input n: expected integer"):
            await host.start_workflow("typed", 1, {"n": "three"})
        with pytest.raises(YamlWorkflowError, match="needs input 'n'"):
            await host.start_workflow("typed", 1, {})


async def test_event_payload_cannot_inject_into_a_command(tmp_path: Path) -> None:
    wfs = load(
        f"""
        workflow:
          id: inject
          steps:
            - name: echo
              working_dir: x
              config:
                working_dir: {tmp_path}
                run: |
                  echo ${{{{ data.msg }}}}
                  echo "quoted ${{{{ data.msg }}}}"
                  echo '${{{{ data.msg }}}}'
        """.replace("              working_dir: x\n", "")
    )
    payload = "\"; touch pwned; \" $(touch pwned) `touch pwned` '; touch pwned; '\ntouch pwned"
    inst, errors = await run(wfs, {"msg": payload})
    assert inst.status is WorkflowStatus.COMPLETE, errors
    assert not (tmp_path / "pwned").exists()
    assert inst.data["steps"]["echo"]["stdout"].count("touch pwned") >= 3


async def test_declared_outputs_are_checked() -> None:
    wfs = load(
        """
        workflow:
          id: outs
          outputs: {total: integer}
          steps: [{name: a, config: {run: "echo '##wfe[output total=abc]'"}}]
        """
    )
    inst, errors = await run(wfs, {})
    assert inst.status is WorkflowStatus.SUSPENDED
    assert any("output total: expected integer" in e for e in errors), errors


async def test_deno_step_outputs_merge_into_data() -> None:
    wfs = load(
        """
        workflow:
          id: js
          steps:
            - name: count
              config: {run: "echo '##wfe[output files=4]'"}
            - name: notify
              type: deno
              when: {field: .outputs.files, gt: 0}
              config:
                script: |
                  const data = Wfe.getData();
                  Wfe.setOutput("status", `saw ${data.files} files`);
                timeout: 20s
        """
    )
    inst, errors = await run(wfs, {})
    assert inst.status is WorkflowStatus.COMPLETE, errors
    assert inst.data["status"] == "saw 4 files"
    assert inst.data["steps"]["notify"] == {"outputs": {"status": "saw 4 files"}}
