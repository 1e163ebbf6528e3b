"""Text renderings of a :class:`DefinitionGraph`: Mermaid, Graphviz DOT and JSON.

Labels and outcome values come from user definitions, so each renderer encodes them
for its language: Mermaid gets quotes, markup and the few other characters that mean
something inside a quoted label as entity codes (``#34;``), DOT a quoted string with
``\\`` and ``"`` escaped. Ids are the graph's own (``s<n>``), never user text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ._graph_model import DefinitionGraph, GraphEdge, GraphNode

STATE_COLOURS: Mapping[str, tuple[str, str]] = {
    "complete": ("#d9f2dc", "#2e7d32"),
    "running": ("#dbe9fb", "#1565c0"),
    "failed": ("#fbdada", "#c62828"),
    "pending": ("#f1f1f1", "#757575"),
    "waiting": ("#fff4d6", "#b7791f"),
    "sleeping": ("#fff4d6", "#b7791f"),
    "compensated": ("#efe1f7", "#6a1b9a"),
    "skipped": ("#f1f1f1", "#9e9e9e"),
    "cancelled": ("#f1f1f1", "#9e9e9e"),
}
"""Fill and stroke per step state, shared by the Mermaid, DOT and SVG renderers."""

# Characters that could end a quoted Mermaid string, read as markup (HTML labels,
# markdown strings), start an entity code, a directive (``%%{``) or an edge label's
# end: written as entity codes. The rest, brackets and non-ASCII letters included, is
# plain text inside the quotes and stays as it is (readable even where a renderer
# shows entity codes badly).
_MERMAID_UNSAFE = frozenset('"<>&#`|\\%{}')


def mermaid_text(text: str) -> str:
    """``text`` for a quoted Mermaid label: quotes, ``<``, ``>``, ``&``, ``#``, backticks,
    ``|``, ``\\``, ``%``, braces and control characters (line breaks included) as entity
    codes (``#34;``), so no label can close its quotes, inject markup or a directive."""
    return "".join(
        f"#{ord(c)};" if c in _MERMAID_UNSAFE or not c.isprintable() else c for c in text
    )


def dot_text(text: str) -> str:
    """``text`` as a quoted DOT string (backslashes, quotes and line breaks escaped)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n")
    return f'"{escaped}"'


def shown(node: GraphNode) -> str:
    """The text drawn for a node: its label, with its kind when the label does not
    already say it (``If`` stays ``If``; a saga named ``checkout`` is ``checkout (saga)``)."""
    if node.kind in ("step", "job"):
        return node.label
    letters = "".join(c for c in node.label.lower() if c.isalpha())
    return node.label if node.kind in letters else f"{node.label} ({node.kind})"


def state_class(state: str) -> str:
    """A class name for a step state (letters, digits and ``_`` only)."""
    return "state_" + "".join(c if c.isascii() and c.isalnum() else "_" for c in state.lower())


def _states_by_node(graph: DefinitionGraph, states: Mapping[int, str] | None) -> dict[str, str]:
    if not states:
        return {}
    return {n.id: states[n.step_id] for n in graph.nodes if n.step_id in states}


def _containers(graph: DefinitionGraph) -> set[str]:
    return {n.parent for n in graph.nodes if n.parent is not None}


# -- Mermaid ----------------------------------------------------------------------------

_MERMAID_SHAPES: Mapping[str, tuple[str, str]] = {
    "decide": ("{", "}"),
    "if": ("{", "}"),
    "wait": ("([", "])"),
    "delay": ("([", "])"),
    "end": ("((", "))"),
    "subworkflow": ("[[", "]]"),
}


def _mermaid_node(node: GraphNode, containers: set[str]) -> str:
    if node.id in containers:
        # A container's own node is its entry inside its box (titled with the label).
        return f'{node.id}(["{mermaid_text(node.kind)}"])'
    opening, closing = _MERMAID_SHAPES.get(node.kind, ("[", "]"))
    return f'{node.id}{opening}"{mermaid_text(shown(node))}"{closing}'


def _mermaid_edge(edge: GraphEdge) -> str:
    arrow = {"compensate": "-.->", "branch": "-->", "needs": "==>"}.get(edge.kind, "-->")
    label = edge.label
    if edge.kind == "compensate":
        label = "compensate"
    if label is None:
        return f"{edge.source} {arrow} {edge.target}"
    return f'{edge.source} {arrow}|"{mermaid_text(label)}"| {edge.target}'


def to_mermaid(graph: DefinitionGraph, *, states: Mapping[int, str] | None = None) -> str:
    """A Mermaid ``flowchart TD``: containers are subgraphs holding their header node and
    children; ``states`` (step id -> state) colours nodes through ``classDef``s."""
    containers = _containers(graph)
    lines = [
        "flowchart TD",
        f"  %% {mermaid_text(graph.workflow_id)} v{graph.version}",
    ]

    def emit(parent: str | None, depth: int) -> Iterator[str]:
        pad = "  " * depth
        for node in graph.children(parent):
            if node.id in containers:
                title = mermaid_text(shown(node))
                yield f'{pad}subgraph c{node.id} ["{title}"]'
                yield f"{pad}  direction TB"
                yield f"{pad}  {_mermaid_node(node, containers)}"
                yield from emit(node.id, depth + 1)
                yield f"{pad}end"
            else:
                yield f"{pad}{_mermaid_node(node, containers)}"

    lines.extend(emit(None, 1))
    lines.extend(f"  {_mermaid_edge(e)}" for e in graph.edges)
    comp = [n.id for n in graph.nodes if n.compensation]
    if comp:
        lines.append("  classDef compensation stroke-dasharray: 5 3")
        lines.append(f"  class {','.join(comp)} compensation")
    by_node = _states_by_node(graph, states)
    for state in sorted(set(by_node.values())):
        fill, stroke = STATE_COLOURS.get(state, ("#ffffff", "#333333"))
        cls = state_class(state)
        lines.append(f"  classDef {cls} fill:{fill},stroke:{stroke},stroke-width:2px")
        members = ",".join(n for n, s in by_node.items() if s == state)
        lines.append(f"  class {members} {cls}")
    return "\n".join(lines) + "\n"


# -- DOT --------------------------------------------------------------------------------

_DOT_SHAPES: Mapping[str, str] = {
    "decide": "diamond",
    "if": "diamond",
    "wait": "ellipse",
    "delay": "ellipse",
    "end": "doublecircle",
    "subworkflow": "box3d",
}


def to_dot(graph: DefinitionGraph, *, states: Mapping[int, str] | None = None) -> str:
    """A Graphviz ``digraph`` (top-down): containers are rounded clusters holding their
    header node and children; ``states`` (step id -> state) fills nodes."""
    containers = _containers(graph)
    by_node = _states_by_node(graph, states)
    lines = [
        f"digraph {dot_text(f'{graph.workflow_id} v{graph.version}')} {{",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]

    def attributes(node: GraphNode) -> str:
        # A container's own node is its entry inside its cluster (titled with the label).
        entry = node.id in containers
        shape = "box" if entry else _DOT_SHAPES.get(node.kind, "box")
        style = "rounded,filled,dashed" if node.compensation else "rounded,filled"
        label = node.kind if entry else shown(node)
        parts = [f"label={dot_text(label)}", f"shape={shape}", f"style={dot_text(style)}"]
        state = by_node.get(node.id)
        if state is not None:
            fill, stroke = STATE_COLOURS.get(state, ("#ffffff", "#333333"))
            parts += [f"fillcolor={dot_text(fill)}", f"color={dot_text(stroke)}"]
            parts.append(f"class={dot_text(state_class(state))}")
        return ", ".join(parts)

    def emit(parent: str | None, depth: int) -> Iterator[str]:
        pad = "  " * depth
        for node in graph.children(parent):
            if node.id in containers:
                yield f"{pad}subgraph {dot_text('cluster_' + node.id)} {{"
                yield f"{pad}  label={dot_text(shown(node))};"
                yield f'{pad}  style="rounded{",dashed" if node.compensation else ""}";'
                yield f"{pad}  {dot_text(node.id)} [{attributes(node)}];"
                yield from emit(node.id, depth + 1)
                yield f"{pad}}}"
            else:
                yield f"{pad}{dot_text(node.id)} [{attributes(node)}];"

    lines.extend(emit(None, 1))
    for e in graph.edges:
        parts: list[str] = []
        if e.kind == "compensate":
            parts += ['style="dashed"', f"label={dot_text('compensate')}"]
        elif e.kind == "needs":
            parts.append('penwidth="2"')
        elif e.kind == "branch":
            parts.append('color="#777777"')
        if e.label is not None:
            parts.append(f"label={dot_text(e.label)}")
        attrs_ = f" [{', '.join(parts)}]" if parts else ""
        lines.append(f"  {dot_text(e.source)} -> {dot_text(e.target)}{attrs_};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- JSON -------------------------------------------------------------------------------


def graph_json(graph: DefinitionGraph) -> dict[str, Any]:
    """The graph as JSON-ready data: ``workflow_id``, ``version``, ``nodes``, ``edges``."""
    return {
        "workflow_id": graph.workflow_id,
        "version": graph.version,
        "nodes": [
            {
                "id": n.id,
                "step_id": n.step_id,
                "label": n.label,
                "kind": n.kind,
                "parent": n.parent,
                "compensation": n.compensation,
            }
            for n in graph.nodes
        ],
        "edges": [
            {"source": e.source, "target": e.target, "kind": e.kind, "label": e.label}
            for e in graph.edges
        ],
    }
