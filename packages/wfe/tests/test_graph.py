"""The definition graph (``wfe.host._graph``) of real definitions from the fluent
builder, drawn as Mermaid, DOT (checked by Graphviz when installed), SVG (parsed as
XML) and JSON."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

from wfe.core import WorkflowBuilder, WorkflowDefinition
from wfe.host._graph import (
    GraphEdge,
    definition_graph,
    graph_json,
    to_dot,
    to_mermaid,
    to_svg,
)

from .graph_support import (
    HOSTILE,
    SVG,
    box,
    by_label,
    dot_svg,
    edges_between,
    kinds,
    mermaid_structure,
    svg_nodes,
    undo,
    work,
)


def everything() -> WorkflowDefinition:
    """One definition using every verb the graph draws."""
    b: WorkflowBuilder[dict[str, Any]] = WorkflowBuilder(dict)
    big = b.create_branch()
    big.start_with(work).name("big order")
    small = b.create_branch()
    small.start_with(work).name("small order").end_workflow().name("stop")
    (
        b.start_with(work)
        .name("begin")
        .if_do(lambda d: True, lambda x: x.start_with(work).name("in if").then(work).name("if 2"))
        .name("check")
        .while_do(lambda d: False, lambda x: x.start_with(work).name("loop body"))
        .name("loop")
        .for_each(lambda d: [1, 2], lambda x: x.start_with(work).name("per item"))
        .name("items")
        .parallel()
        .do(lambda x: x.start_with(work).name("left"))
        .do(lambda x: x.start_with(work).name("right"))
        .join()
        .name("both")
        .saga(
            lambda x: (
                x.start_with(work)
                .name("charge")
                .compensate_with(undo)
                .then(work)
                .name("ship")
                .compensate_with_sequence(
                    lambda y: y.start_with(undo).name("recall").then(undo).name("refund")
                )
            )
        )
        .name("checkout")
        .wait_for("approved", "k")
        .name("approval")
        .delay(timedelta(seconds=5))
        .name("cool off")
        .sub_workflow("child", 1)
        .name("child run")
        .schedule(timedelta(seconds=1))
        .do(lambda x: x.start_with(work).name("scheduled"))
        .name("later")
        .recur(timedelta(seconds=1), lambda d: True)
        .do(lambda x: x.start_with(work).name("tick"))
        .name("every second")
        .decide(lambda d: d.get("size"))
        .name("size?")
        .branch("big", big)
        .branch("small", small)
    )
    return b.build("everything", 3)


def test_sequence_is_a_chain_of_next_edges() -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(work)
        .name("a")
        .then(work)
        .name("b")
        .then(work)
        .name("c")
        .build("seq", 1)
    )
    graph = definition_graph(definition)
    assert (graph.workflow_id, graph.version) == ("seq", 1)
    assert [(n.id, n.step_id, n.label, n.kind, n.parent) for n in graph.nodes] == [
        ("s0", 0, "a", "step", None),
        ("s1", 1, "b", "step", None),
        ("s2", 2, "c", "step", None),
    ]
    assert graph.edges == (
        GraphEdge("s0", "s1", "next", None),
        GraphEdge("s1", "s2", "next", None),
    )


def test_every_verb_has_its_kind_and_containers_hold_their_children() -> None:
    graph = definition_graph(everything())
    k = kinds(graph)
    assert k["check"] == "if"
    assert k["loop"] == "while"
    assert k["items"] == "foreach"
    assert k["both"] == "parallel"
    assert k["checkout"] == "saga"
    assert k["approval"] == "wait"
    assert k["cool off"] == "delay"
    assert k["child run"] == "subworkflow"
    assert k["later"] == "schedule"
    assert k["every second"] == "recur"
    assert k["size?"] == "decide"
    assert k["stop"] == "end"
    assert k["begin"] == "step"
    parent = {n.label: n.parent for n in graph.nodes}
    assert parent["in if"] == parent["if 2"] == by_label(graph, "check")
    assert parent["loop body"] == by_label(graph, "loop")
    assert parent["left"] == parent["right"] == by_label(graph, "both")
    assert parent["charge"] == parent["ship"] == by_label(graph, "checkout")
    assert parent["begin"] is None
    assert parent["big order"] is None
    # A container points at the first step of each of its branches.
    assert [e.kind for e in edges_between(graph, "both", "left")] == ["branch"]
    assert [e.kind for e in edges_between(graph, "both", "right")] == ["branch"]
    assert [e.kind for e in edges_between(graph, "check", "in if")] == ["branch"]
    # ... and continues with the step after it.
    assert [e.kind for e in edges_between(graph, "check", "loop")] == ["next"]
    ids = {n.id for n in graph.nodes}
    assert len(ids) == len(graph.nodes) == len(everything().steps)
    assert all(e.source in ids and e.target in ids for e in graph.edges)


def test_decide_branches_are_outcome_edges_labelled_with_the_value() -> None:
    graph = definition_graph(everything())
    assert edges_between(graph, "size?", "big order") == [
        GraphEdge(by_label(graph, "size?"), by_label(graph, "big order"), "outcome", "'big'")
    ]
    assert [e.label for e in edges_between(graph, "size?", "small order")] == ["'small'"]


def test_saga_compensation_steps_are_flagged_and_linked() -> None:
    graph = definition_graph(everything())
    node = {n.id: n for n in graph.nodes}
    comp = [e for e in graph.edges if e.kind == "compensate"]
    assert len(comp) == 2
    charge, ship = by_label(graph, "charge"), by_label(graph, "ship")
    assert {e.source for e in comp} == {charge, ship}
    assert all(node[e.target].compensation for e in comp)
    (sequence,) = [e.target for e in comp if e.source == ship]
    assert node[sequence].kind == "sequence"
    assert node[sequence].parent == by_label(graph, "checkout")
    inside = {n.label for n in graph.nodes if n.parent == sequence}
    assert inside == {"recall", "refund"}
    assert not node[charge].compensation


def test_when_cases_form_a_switch() -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(work)
        .name("pick")
        .when(1)
        .do(lambda x: x.start_with(work).name("one"))
        .when(2)
        .do(lambda x: x.start_with(work).name("two"))
        .build("switch", 1)
    )
    graph = definition_graph(definition)
    (switch,) = [n for n in graph.nodes if n.kind == "switch"]
    cases = [n for n in graph.nodes if n.kind == "when"]
    assert len(cases) == 2
    assert all(c.parent == switch.id for c in cases)
    assert {n.parent for n in graph.nodes if n.label in ("one", "two")} == {c.id for c in cases}


def test_a_goto_upwards_is_an_edge_and_the_svg_still_draws() -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(work)
        .name("top")
        .id("top")
        .then(work)
        .name("again")
        .attach("top")
        .build("goto", 1)
    )
    graph = definition_graph(definition)
    assert GraphEdge("s1", "s0", "next", None) in graph.edges
    root = ET.fromstring(to_svg(graph))
    assert len(root.findall(f".//{SVG}g[@class='node']")) == 2


# -- Mermaid ----------------------------------------------------------------------------


def test_mermaid_declares_every_node_once_inside_its_subgraph() -> None:
    graph = definition_graph(everything())
    text = to_mermaid(graph)
    declared, edges = mermaid_structure(text)
    assert declared == {n.id for n in graph.nodes}
    assert len(edges) == len(graph.edges)
    assert all(a in declared and b in declared for a, b in edges)
    saga = by_label(graph, "checkout")
    block = text.split(f"subgraph c{saga} ")[1]
    assert f"  {by_label(graph, 'charge')}[" in block.split("\n  end")[0]
    assert '-->|"#39;big#39;"|' not in text  # quotes in values are entity codes...
    assert "-->|\"'big'\"|" in text  # ...but apostrophes are safe as they are
    assert "-.->" in text  # compensation is dotted


def test_mermaid_hostile_labels_stay_text() -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(work)
        .name(HOSTILE)
        .decide(lambda d: 1)
        .branch(HOSTILE, WorkflowBuilder(dict).start_with(work).name("x"))
        .build("hostile", 1)
    )
    text = to_mermaid(definition_graph(definition))
    mermaid_structure(text)
    assert "<script>" not in text
    assert "</text>" not in text
    assert "click" in text  # the word stays, as text inside the quoted label
    assert not re.search(r"^\s*click\b", text, re.M)
    assert "`" not in text
    assert "|" not in text.replace('|"', "").replace('"|', "")
    assert "#34;]; click s0 call alert(1) #60;/text#62;" in text


def test_mermaid_marks_states_with_class_definitions() -> None:
    graph = definition_graph(everything())
    begin = next(n for n in graph.nodes if n.label == "begin")
    check = next(n for n in graph.nodes if n.label == "check")
    text = to_mermaid(graph, states={begin.step_id: "complete", check.step_id: "running"})
    assert "classDef state_complete " in text
    assert f"class {begin.id} state_complete" in text
    assert f"class {check.id} state_running" in text


# -- DOT --------------------------------------------------------------------------------


def test_dot_has_clusters_for_containers_and_graphviz_accepts_it() -> None:
    graph = definition_graph(everything())
    text = to_dot(graph, states={0: "complete", 1: "running", 2: '"odd" state'})
    assert text.startswith('digraph "everything v3" {')
    assert 'fillcolor="#d9f2dc"' in text
    assert 'class="state__odd__state"' in text
    containers = {n.parent for n in graph.nodes if n.parent is not None}
    for c in containers:
        assert f'subgraph "cluster_{c}" {{' in text
    assert text.count(" -> ") == len(graph.edges)
    root = dot_svg(text)
    titles = {t.text for t in root.iter(f"{SVG}title")}
    assert {n.id for n in graph.nodes} <= titles
    assert {f"cluster_{c}" for c in containers} <= titles


def test_dot_hostile_labels_stay_text() -> None:
    definition = (
        WorkflowBuilder(dict).start_with(work).name(HOSTILE + "\nline 2").build("hostile", 1)
    )
    text = to_dot(definition_graph(definition))
    assert '\\"]; click' in text  # the quote is escaped, the statement never ends
    root = dot_svg(text)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert HOSTILE in texts
    assert "line 2" in texts


# -- SVG --------------------------------------------------------------------------------


def test_svg_has_one_node_element_per_step_with_its_state() -> None:
    graph = definition_graph(everything())
    begin = by_label(graph, "begin")
    states = {0: "complete", 1: "running", 4: "failed"}
    nodes = svg_nodes(to_svg(graph, states))
    assert len(nodes) == len(graph.nodes)
    assert {g.get("data-node-id") for g in nodes} == {n.id for n in graph.nodes}
    by_id = {g.get("data-node-id"): g for g in nodes}
    for n in graph.nodes:
        assert by_id[n.id].get("data-step-id") == str(n.step_id)
        assert by_id[n.id].get("data-kind") == n.kind
        assert by_id[n.id].get("data-state") == states.get(n.step_id, "")
    assert by_id[begin].get("data-state") == "complete"


def test_svg_containers_enclose_their_children_and_flow_goes_down() -> None:
    graph = definition_graph(everything())
    by_id = {g.get("data-node-id"): g for g in svg_nodes(to_svg(graph))}
    for n in graph.nodes:
        if n.parent is not None:
            outer, inner = box(by_id[n.parent]), box(by_id[n.id])
            assert outer[0] < inner[0], n.label
            assert outer[1] < inner[1], n.label
            assert inner[2] < outer[2], n.label
            assert inner[3] < outer[3], n.label
    tops = [box(by_id[by_label(graph, label)])[1] for label in ("begin", "check", "loop", "size?")]
    assert tops == sorted(tops)
    assert len(set(tops)) == 4
    left, right = box(by_id[by_label(graph, "left")]), box(by_id[by_label(graph, "right")])
    assert left[1] == right[1]
    assert left[2] < right[0]
    labels = [t.text for g in by_id.values() for t in g.iter(f"{SVG}text")]
    edge_labels = [t.text for t in ET.fromstring(to_svg(graph)).iter(f"{SVG}text")]
    assert "'big'" in edge_labels
    assert "begin" in labels


def test_svg_hostile_labels_are_escaped_text() -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(work)
        .name("</text><script>alert(1)</script>")
        .then(work)
        .name('a "quoted" & <b>bold</b>\x00\x07 label')
        .decide(lambda d: 1)
        .branch("<img src=x onerror=alert(1)>", WorkflowBuilder(dict).start_with(work).name("y"))
        .build("<svg onload=alert(1)>", 1)
    )
    svg = to_svg(definition_graph(definition), {0: '"><script>'})
    nodes = svg_nodes(svg)
    assert len(nodes) == 4
    texts = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert "</text><script>alert(1)</script>" in texts
    assert 'a "quoted" & <b>bold</b>\ufffd\ufffd label' in texts
    assert "'<img src=x onerror=alert(1)>'" in texts  # the value, as its repr
    assert nodes[0].get("data-state") == '"><script>'


# -- JSON -------------------------------------------------------------------------------


def test_graph_json_is_plain_json_of_nodes_and_edges() -> None:
    graph = definition_graph(everything())
    data = json.loads(json.dumps(graph_json(graph)))
    assert data["workflow_id"] == "everything"
    assert data["version"] == 3
    assert [n["id"] for n in data["nodes"]] == [n.id for n in graph.nodes]
    assert set(data["nodes"][0]) == {"id", "step_id", "label", "kind", "parent", "compensation"}
    assert [(e["source"], e["target"], e["kind"], e["label"]) for e in data["edges"]] == [
        (e.source, e.target, e.kind, e.label) for e in graph.edges
    ]
