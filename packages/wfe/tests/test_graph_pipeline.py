"""The definition graph of YAML pipelines (jobs and ``needs``, matrix jobs collapsed)
and the step states of a real run."""

from __future__ import annotations

import pytest

from wfe.core import (
    ErrorBehavior,
    StepError,
    StepExecutionContext,
    WorkflowBuilder,
    WorkflowDefinition,
)
from wfe.host import WorkflowHostBuilder
from wfe.host._graph import definition_graph, instance_states, to_dot, to_mermaid, to_svg

from .graph_support import (
    SVG,
    by_label,
    dot_svg,
    edges_between,
    kinds,
    mermaid_structure,
    svg_nodes,
    undo,
    work,
)

PIPELINE = """\
workflow:
  id: ci
  version: 2
  steps:
    - name: lint
      config: {run: "echo linted"}
    - name: test
      matrix:
        python: ["3.11", "3.12"]
        os: [linux, mac]
      config: {run: "echo ${{ matrix.python }}"}
    - name: build
      needs: [lint, test]
      config: {run: "echo built"}
    - name: docs
      needs: [lint]
      parallel:
        - name: html
          config: {run: "echo html"}
        - name: pdf
          config: {run: "echo pdf"}
"""


def yaml_definition(text: str) -> WorkflowDefinition:
    yaml = pytest.importorskip("wfe.yaml")
    (compiled,) = yaml.load_workflow_from_str(text, {})
    definition: WorkflowDefinition = compiled.definition
    return definition


def test_a_yaml_pipeline_is_drawn_as_its_jobs_and_needs() -> None:
    graph = definition_graph(yaml_definition(PIPELINE))
    (pipeline,) = [n for n in graph.nodes if n.kind == "pipeline"]
    jobs = {n.label.split(" [")[0]: n for n in graph.nodes if n.kind == "job"}
    assert set(jobs) == {"lint", "test", "build", "docs"}
    assert all(j.parent == pipeline.id for j in jobs.values())
    # The steps that schedule the graph are not drawn, nor the units' own steps.
    assert not [n for n in graph.nodes if n.label.startswith("(graph")]
    assert len(graph.nodes) == 5
    needs = {(e.source, e.target) for e in graph.edges if e.kind == "needs"}
    assert needs == {
        (jobs["lint"].id, jobs["build"].id),
        (jobs["test"].id, jobs["build"].id),
        (jobs["lint"].id, jobs["docs"].id),
    }
    starts = {e.target for e in graph.edges if e.kind == "branch" and e.source == pipeline.id}
    assert starts == {jobs["lint"].id, jobs["test"].id}
    # A matrix job is one node, its matrix in the label.
    assert jobs["test"].label == "test [matrix \u00d74: python: 3.11, 3.12; os: linux, mac]"
    declared, edges = mermaid_structure(to_mermaid(graph))
    assert declared == {n.id for n in graph.nodes}
    assert len(edges) == len(graph.edges)
    assert len(svg_nodes(to_svg(graph))) == 5


def test_a_yaml_pipeline_graph_passes_graphviz() -> None:
    root = dot_svg(to_dot(definition_graph(yaml_definition(PIPELINE))))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "build" in texts
    assert "docs" in texts


def test_a_matrix_without_needs_runs_its_steps_in_order() -> None:
    graph = definition_graph(
        yaml_definition(
            """\
workflow:
  id: m
  steps:
    - name: prepare
      config: {run: "true"}
    - name: check
      matrix: {n: [1, 2, 3]}
      config: {run: "echo ${{ matrix.n }}"}
    - name: report
      config: {run: "true"}
"""
        )
    )
    jobs = {n.label: n.id for n in graph.nodes if n.kind == "job"}
    assert set(jobs) == {"prepare", "check [matrix \u00d73: n: 1, 2, 3]", "report"}
    needs = {(e.source, e.target) for e in graph.edges if e.kind == "needs"}
    check = jobs["check [matrix \u00d73: n: 1, 2, 3]"]
    assert needs == {(jobs["prepare"], check), (check, jobs["report"])}


def test_a_yaml_workflow_without_needs_is_drawn_step_by_step() -> None:
    graph = definition_graph(
        yaml_definition(
            """\
workflow:
  id: plain
  steps:
    - name: one
      config: {run: "true"}
    - name: both
      parallel:
        - name: a
          config: {run: "true"}
        - name: b
          config: {run: "true"}
"""
        )
    )
    k = kinds(graph)
    assert k["one"] == "step"
    assert k["both"] == "parallel"
    assert {n.label for n in graph.nodes if n.parent == by_label(graph, "both")} == {"a", "b"}
    assert [e.kind for e in edges_between(graph, "one", "both")] == ["next"]


# -- states of a real instance ----------------------------------------------------------


async def test_instance_states_follow_the_pointers_of_a_run() -> None:
    """A loop's body ran twice (complete), the failing step is failed, the step after
    it was never reached (absent); the SVG carries the states."""

    def boom(ctx: StepExecutionContext) -> None:
        raise StepError("kaput")

    def count(ctx: StepExecutionContext) -> None:
        ctx.workflow.data["n"] = ctx.workflow.data.get("n", 0) + 1

    definition = (
        WorkflowBuilder(dict)
        .start_with(work)
        .name("first")
        .while_do(lambda d: d.get("n", 0) < 2, lambda x: x.start_with(count).name("body"))
        .name("loop")
        .then(boom)
        .name("boom")
        .on_error(ErrorBehavior.suspend())
        .then(work)
        .name("never")
        .build("states", 1)
    )
    async with WorkflowHostBuilder().register(definition).build() as host:
        wid = await host.start_workflow("states", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.data["n"] == 2
    graph = definition_graph(definition)
    states = instance_states(definition, instance)
    named = {n.label: states.get(n.step_id) for n in graph.nodes}
    assert named == {
        "first": "complete",
        "loop": "complete",
        "body": "complete",
        "boom": "failed",
        "never": None,
    }
    by_id = {g.get("data-node-id"): g.get("data-state") for g in svg_nodes(to_svg(graph, states))}
    assert by_id[by_label(graph, "boom")] == "failed"
    assert by_id[by_label(graph, "never")] == ""


async def test_instance_states_show_a_compensated_saga() -> None:
    """A saga whose step failed: the failed step is failed, the completed one it undid
    is compensated, and its compensation step ran (complete)."""

    def boom(ctx: StepExecutionContext) -> None:
        raise StepError("out of stock")

    definition = (
        WorkflowBuilder(dict)
        .saga(
            lambda s: (
                s.start_with(work).name("charge").compensate_with(undo).then(boom).name("ship")
            )
        )
        .name("checkout")
        .on_error(ErrorBehavior.compensate())
        .build("saga-states", 1)
    )
    async with WorkflowHostBuilder().register(definition).build() as host:
        wid = await host.start_workflow("saga-states", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    graph = definition_graph(definition)
    states = instance_states(definition, instance)
    named = {n.label: states.get(n.step_id) for n in graph.nodes}
    assert named == {
        "checkout": "failed",
        "charge": "compensated",
        "undo": "complete",
        "ship": "failed",
    }
    (comp,) = [n for n in graph.nodes if n.compensation]
    assert comp.label == "undo"
