# ruff: noqa: E501  (one-line YAML documents read better unwrapped)
"""``needs:``: the steps of a workflow as a graph, on a real (in-memory) host."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wfe.core import WorkflowInstance, WorkflowStatus
from wfe.host import WorkflowHostBuilder
from wfe.yaml import CompiledWorkflow, YamlWorkflowError, load_workflow_from_str

GRAPH = "__wfe_graph__"


def load(text: str) -> CompiledWorkflow:
    return load_workflow_from_str(textwrap.dedent(text), {}, file="needs.yaml")[0]


async def run(compiled: CompiledWorkflow, data: Any = None) -> tuple[WorkflowInstance, list[str]]:
    async with WorkflowHostBuilder().register(compiled).build() as host:
        wid = await host.start_workflow(compiled.id, None, data)
        inst = await host.wait_for_workflow(wid, timeout=30)
        errors = [e.message for e in await host.get_errors(wid)]
    return inst, errors


def order_log(tmp_path: Path) -> Path:
    return tmp_path / "order.log"


async def test_steps_run_after_their_needs_and_independent_ones_concurrently(
    tmp_path: Path,
) -> None:
    log = order_log(tmp_path)
    wf = load(
        f"""
        workflow:
          id: g
          steps:
            - name: build
              needs: [lint, test]
              config: {{run: "echo build >> {log}"}}
            - name: lint
              config: {{run: "touch {tmp_path}/lint.started; while [ ! -e {tmp_path}/test.started ]; do sleep 0.02; done; echo lint >> {log}"}}
            - name: test
              config: {{run: "touch {tmp_path}/test.started; while [ ! -e {tmp_path}/lint.started ]; do sleep 0.02; done; echo test >> {log}"}}
        """
    )
    inst, errors = await run(wf)
    assert inst.status is WorkflowStatus.COMPLETE, errors
    lines = log.read_text().split()
    assert sorted(lines[:2]) == ["lint", "test"]
    assert lines[2] == "build"
    assert inst.data[GRAPH]["status"] == {
        "lint": "complete",
        "test": "complete",
        "build": "complete",
    }


async def test_a_chain_continues_while_an_independent_step_still_runs(tmp_path: Path) -> None:
    # `package` needs only `compile`; it must start while `slow` (a root) still runs:
    # `slow` waits for the file `package` writes.
    wf = load(
        f"""
        workflow:
          id: eager
          steps:
            - {{name: slow, config: {{run: "while [ ! -e {tmp_path}/packaged ]; do sleep 0.02; done"}}}}
            - {{name: compile, config: {{run: "true"}}}}
            - {{name: package, needs: [compile], config: {{run: "touch {tmp_path}/packaged"}}}}
        """
    )
    inst, errors = await run(wf)
    assert inst.status is WorkflowStatus.COMPLETE, errors


async def test_a_failed_need_skips_its_dependents_and_other_steps_go_on(tmp_path: Path) -> None:
    wf = load(
        """
        workflow:
          id: fail
          steps:
            - {name: a, config: {run: "echo broken >&2; exit 3"}}
            - {name: b, needs: [a], config: {run: "echo b"}}
            - {name: c, needs: [b], config: {run: "echo c"}}
            - {name: d, config: {run: "echo d=1 >> $WFE_OUTPUT"}}
        """
    )
    inst, errors = await run(wf)
    assert inst.status is WorkflowStatus.SUSPENDED
    state = inst.data[GRAPH]
    assert state["status"] == {"a": "failed", "b": "skipped", "c": "skipped", "d": "complete"}
    assert state["reasons"]["b"] == "its need 'a' failed"
    assert state["reasons"]["c"] == "its need 'b' was skipped"
    assert inst.data["d"] == 1
    assert "b" not in inst.data.get("steps", {})
    assert any(
        "1 step(s) failed: a" in e
        and "exit code 3" in e
        and "skipped because of the failure: b, c" in e
        for e in errors
    ), errors


async def test_resume_runs_only_the_failed_step_and_its_dependents(tmp_path: Path) -> None:
    counts = tmp_path / "counts"
    flag = tmp_path / "fixed"
    wf = load(
        f"""
        workflow:
          id: resume
          steps:
            - {{name: a, config: {{run: "echo a >> {counts}"}}}}
            - {{name: b, needs: [a], config: {{run: "echo b >> {counts}; test -e {flag}"}}}}
            - {{name: c, needs: [b], config: {{run: "echo c >> {counts}"}}}}
            - {{name: d, needs: [a], config: {{run: "echo d >> {counts}"}}}}
        """
    )
    async with WorkflowHostBuilder().register(wf).build() as host:
        wid = await host.start_workflow("resume", None, {})
        inst = await host.wait_for_workflow(wid, timeout=30)
        assert inst.status is WorkflowStatus.SUSPENDED
        assert sorted(counts.read_text().split()) == ["a", "b", "d"]
        flag.touch()
        assert await host.resume_workflow(wid)
        inst = await host.wait_for_workflow(wid, timeout=30)
    assert inst.status is WorkflowStatus.COMPLETE
    assert sorted(counts.read_text().split()) == ["a", "b", "b", "c", "d"]
    assert inst.data[GRAPH]["status"]["c"] == "complete"


async def test_when_false_skips_the_step_and_its_dependents() -> None:
    wf = load(
        """
        workflow:
          id: when
          inputs: {deploy: bool}
          steps:
            - {name: build, config: {run: "echo built=true >> $WFE_OUTPUT"}}
            - {name: deploy, needs: [build], when: {field: .inputs.deploy, equals: true}, config: {run: "echo deployed"}}
            - {name: notify, needs: [deploy], config: {run: "echo notified"}}
            - {name: report, needs: [build], when: {field: .outputs.built, equals: true}, config: {run: "echo reported=1 >> $WFE_OUTPUT"}}
        """
    )
    inst, errors = await run(wf, {"deploy": False})
    assert inst.status is WorkflowStatus.COMPLETE, errors
    status = inst.data[GRAPH]["status"]
    assert status["deploy"] == "skipped"
    assert status["notify"] == "skipped"
    assert inst.data[GRAPH]["reasons"]["deploy"] == "its `when` condition is false"
    assert inst.data["steps"]["deploy"] == {"skipped": True}
    assert inst.data["reported"] == 1


async def test_hooks_run_inside_a_graph_step(tmp_path: Path) -> None:
    wf = load(
        f"""
        workflow:
          id: hooks
          steps:
            - name: a
              config: {{run: "exit 1"}}
              on_failure: {{name: a-failed, config: {{run: "touch {tmp_path}/failed"}}}}
              ensure: {{name: a-ensure, config: {{run: "touch {tmp_path}/ensured"}}}}
            - name: b
              config: {{run: "true"}}
              on_success: {{name: b-ok, config: {{run: "touch {tmp_path}/ok"}}}}
            - {{name: c, needs: [a, b], config: {{run: "true"}}}}
        """
    )
    inst, _ = await run(wf)
    assert inst.status is WorkflowStatus.SUSPENDED
    assert all((tmp_path / n).exists() for n in ("failed", "ensured", "ok"))
    assert inst.data[GRAPH]["status"]["c"] == "skipped"


async def test_retries_happen_before_a_step_counts_as_failed(tmp_path: Path) -> None:
    counts = tmp_path / "tries"
    wf = load(
        f"""
        workflow:
          id: retry
          steps:
            - name: flaky
              error_behavior: {{type: retry, interval: 10ms, max_retries: 2}}
              config: {{run: "echo x >> {counts}; [ $(wc -l < {counts}) -ge 3 ]"}}
            - {{name: after, needs: [flaky], config: {{run: "true"}}}}
        """
    )
    inst, errors = await run(wf)
    assert inst.status is WorkflowStatus.COMPLETE, errors
    assert len(counts.read_text().split()) == 3


@pytest.mark.parametrize(
    ("steps", "where", "message"),
    [
        (
            "- {name: a, needs: [b], config: {run: x}}\n    - {name: b, needs: [a], config: {run: x}}",
            (5, 25),
            "`needs` forms a cycle: a -> b -> a",
        ),
        (
            "- {name: a, needs: [zz], config: {run: x}}",
            (5, 25),
            "`needs` names 'zz', which is not a step",
        ),
        ("- {name: a, needs: [a], config: {run: x}}", (5, 25), "step 'a' cannot need itself"),
        ("- {name: a, needs: 3, config: {run: x}}", (5, 24), "expected a list of step names"),
        (
            "- name: p\n      parallel:\n        - {name: a, needs: [p], config: {run: x}}",
            (7, 21),
            "`needs` is allowed on the workflow's own steps only",
        ),
    ],
)
def test_bad_needs_are_validation_errors_with_positions(
    steps: str, where: tuple[int, int], message: str
) -> None:
    text = f"\nworkflow:\n  id: bad\n  steps:\n    {steps}\n"
    with pytest.raises(YamlWorkflowError) as info:
        load_workflow_from_str(text, {}, file="needs.yaml")
    issue = next(i for i in info.value.issues if message in i.message)
    assert (issue.line, issue.column) == where, str(info.value)
    assert str(issue).startswith(f"needs.yaml:{where[0]}:{where[1]}: workflow.steps")


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[str], dict[str, list[str]], set[str]]:
    """Up to 7 steps, each needing some earlier ones, listed in a random order; some
    steps fail."""
    n = draw(st.integers(1, 7))
    names = [f"s{i}" for i in range(n)]
    needs = {
        name: sorted(draw(st.sets(st.sampled_from(names[:i]), max_size=3)) if i else [])
        for i, name in enumerate(names)
    }
    failing = draw(st.sets(st.sampled_from(names), max_size=2))
    return draw(st.permutations(names)), needs, failing


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(dags())
def test_random_dags_run_each_step_once_after_all_its_needs(
    tmp_path: Path, dag: tuple[list[str], dict[str, list[str]], set[str]]
) -> None:
    order, needs, failing = dag
    log = tmp_path / f"run-{abs(hash((tuple(order), tuple(sorted(failing)))))}.log"
    log.unlink(missing_ok=True)
    lines = []
    for name in order:
        run_ = f"echo start:{name} >> {log}; echo end:{name} >> {log}" + (
            "; exit 1" if name in failing else ""
        )
        lines.append(
            f"    - {{name: {name}, needs: [{', '.join(needs[name])}], config: {{run: '{run_}'}}}}"
        )
    text = "workflow:\n  id: dag\n  steps:\n" + "\n".join(lines) + "\n"
    wf = load_workflow_from_str(text, {}, file="dag.yaml")[0]
    inst, _ = trio.run(run, wf, None)
    events = log.read_text().split() if log.exists() else []

    def blocked(name: str) -> bool:
        return any(n in failing or blocked(n) for n in needs[name])

    expected = {n for n in order if not blocked(n)}
    started = [e.split(":")[1] for e in events if e.startswith("start:")]
    assert sorted(started) == sorted(expected)  # each runnable step exactly once
    for name in started:
        for need in needs[name]:
            assert events.index(f"end:{need}") < events.index(f"start:{name}")
    status = inst.data[GRAPH]["status"]
    assert {n for n, s in status.items() if s == "skipped"} == set(order) - expected
    assert inst.status is (WorkflowStatus.SUSPENDED if failing else WorkflowStatus.COMPLETE)


async def test_a_parallel_group_and_a_sub_workflow_can_be_graph_steps(tmp_path: Path) -> None:
    wfs = load_workflow_from_str(
        textwrap.dedent(
            f"""
            workflows:
              - id: child
                steps: [{{name: inner, config: {{run: "echo child=1 >> $WFE_OUTPUT"}}}}]
              - id: parent
                steps:
                  - name: group
                    parallel:
                      - {{name: g1, config: {{run: "touch {tmp_path}/g1"}}}}
                      - {{name: g2, when: {{field: .inputs.never, equals: true}}, config: {{run: "touch {tmp_path}/g2"}}}}
                  - {{name: sub, needs: [group], type: workflow, config: {{workflow: child}}}}
                  - {{name: last, needs: [sub], config: {{run: "touch {tmp_path}/last"}}}}
            """
        ),
        {},
        file="g.yaml",
    )
    parent = next(w for w in wfs if w.id == "parent")
    builder = WorkflowHostBuilder()
    for w in wfs:
        builder = builder.register(w)
    async with builder.build() as host:
        wid = await host.start_workflow("parent", None, {})
        inst = await host.wait_for_workflow(wid, timeout=30)
    assert inst.status is WorkflowStatus.COMPLETE
    assert (tmp_path / "g1").exists()
    assert not (tmp_path / "g2").exists()
    assert (tmp_path / "last").exists()
    assert inst.data[GRAPH]["status"] == {
        "group": "complete",
        "sub": "complete",
        "last": "complete",
    }
    assert parent.id == "parent"
