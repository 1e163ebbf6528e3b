"""A standalone SVG drawing of a :class:`DefinitionGraph`, for the dashboard.

Layout, kept simple: each scope (the top level, and the inside of every container) is
laid out on its own as layers from top to bottom (a node's layer is the longest path
to it from the scope's roots, back edges of loops and gotos set aside), and a
container is then one box, the size of its laid-out inside plus a header, in the
scope around it. Edges are drawn last between the final boxes: downwards as curves
from bottom to top, upwards (loops, gotos) as curves along the right side.

The SVG holds no scripts and no external references; every text and attribute value
is XML-escaped, and characters XML cannot hold are replaced.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape

import attrs

from ._graph_model import DefinitionGraph, GraphNode, cut
from ._graph_render import STATE_COLOURS, shown

CHAR_W = 7.0
LEAF_H = 34.0
HEADER_H = 28.0
MIN_W = 80.0
PAD = 12.0
GAP_X = 24.0
GAP_Y = 40.0
MARGIN = 16.0
TEXT_LIMIT = 48
_XML_INVALID = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    """``text`` escaped for XML text and attribute values (quotes included)."""
    return escape(_XML_INVALID.sub("\ufffd", text), quote=True)


@attrs.define
class _Box:
    w: float
    h: float
    x: float = 0.0
    y: float = 0.0

    @property
    def cx(self) -> float:
        return self.x + self.w / 2


@attrs.define
class _Layout:
    graph: DefinitionGraph
    boxes: dict[str, _Box] = attrs.field(factory=dict)
    headers: dict[str, _Box] = attrs.field(factory=dict)
    # Members of each scope, with positions relative to the scope's origin.
    members: dict[str | None, list[str]] = attrs.field(factory=dict)
    containers: set[str] = attrs.field(factory=set)
    _parents: dict[str, str | None] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        self.containers = {n.parent for n in self.graph.nodes if n.parent is not None}
        self._parents = {n.id: n.parent for n in self.graph.nodes}

    def header_key(self, scope: str) -> str:
        return f"{scope}#header"

    def owner(self, node: str, scope: str | None) -> str | None:
        """The member of ``scope`` that holds ``node`` (``None`` when outside it)."""
        if scope is not None and node == scope:
            return self.header_key(scope)
        current: str | None = node
        while current is not None and current in self._parents:
            parent = self._parents[current]
            if parent == scope:
                return current
            current = parent
        return None

    def measure(self, scope: str | None) -> tuple[float, float]:
        """Lay out ``scope`` (relative positions); its inside's width and height."""
        ids = [n.id for n in self.graph.children(scope)]
        if scope is not None:
            header = self.header_key(scope)
            label = _title(self.graph.node(scope))
            self.headers[scope] = _Box(max(MIN_W, len(label) * CHAR_W + 2 * PAD), HEADER_H)
            ids.insert(0, header)
        sizes: dict[str, _Box] = {}
        for member in ids:
            if scope is not None and member == self.header_key(scope):
                sizes[member] = self.headers[scope]
            elif member in self.containers:
                w, h = self.measure(member)
                box = _Box(w + 2 * PAD, h + 2 * PAD)
                self.boxes[member] = box
                sizes[member] = box
            else:
                label = _title(self.graph.node(member))
                box = _Box(max(MIN_W, len(label) * CHAR_W + 2 * PAD), LEAF_H)
                self.boxes[member] = box
                sizes[member] = box
        self.members[scope] = ids
        return _arrange(ids, self._local_edges(scope, ids), sizes)

    def _local_edges(self, scope: str | None, ids: list[str]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for e in self.graph.edges:
            a, b = self.owner(e.source, scope), self.owner(e.target, scope)
            if a is not None and b is not None and a != b and (a, b) not in out:
                out.append((a, b))
        return out

    def place(self, scope: str | None, ox: float, oy: float) -> None:
        """Make positions absolute, from ``scope``'s origin at (ox, oy)."""
        for member in self.members[scope]:
            box = self.headers[scope] if scope is not None and member.endswith("#header") else None
            if box is None:
                box = self.boxes[member]
            box.x += ox
            box.y += oy
            if member in self.containers:
                self.place(member, box.x + PAD, box.y + PAD)


def _title(node: GraphNode) -> str:
    return cut(shown(node), TEXT_LIMIT)


def _ranks(ids: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layers; edges closing a cycle (found depth first) are set aside."""
    succ: dict[str, list[str]] = {i: [] for i in ids}
    for a, b in edges:
        succ[a].append(b)
    state: dict[str, int] = {}
    forward: list[tuple[str, str]] = []
    for root in ids:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, index = stack.pop()
            if index < len(succ[node]):
                stack.append((node, index + 1))
                nxt = succ[node][index]
                if state.get(nxt) == 1:
                    continue  # a back edge: a loop or a goto upwards
                forward.append((node, nxt))
                if nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                state[node] = 2
    rank = dict.fromkeys(ids, 0)
    for _ in ids:  # relax: at most len(ids) rounds on a DAG
        changed = False
        for a, b in forward:
            if rank[b] < rank[a] + 1:
                rank[b] = rank[a] + 1
                changed = True
        if not changed:
            break
    return rank


def _arrange(
    ids: list[str], edges: list[tuple[str, str]], sizes: dict[str, _Box]
) -> tuple[float, float]:
    """Set relative positions of ``ids`` in layers; the width and height they take."""
    if not ids:
        return MIN_W, LEAF_H
    rank = _ranks(ids, edges)
    layers: list[list[str]] = [[] for _ in range(max(rank.values()) + 1)]
    for i in ids:
        layers[rank[i]].append(i)
    predecessors: dict[str, list[str]] = {}
    for a, b in edges:
        predecessors.setdefault(b, []).append(a)
    position = {i: float(n) for n, i in enumerate(layers[0])}
    for layer in layers[1:]:
        order = {i: n for n, i in enumerate(layer)}

        def centre(i: str, order: dict[str, int] = order) -> tuple[float, int]:
            preds = [position[a] for a in predecessors.get(i, ()) if a in position]
            return (sum(preds) / len(preds) if preds else float(order[i]), order[i])

        layer.sort(key=centre)
        position.update({i: float(n) for n, i in enumerate(layer)})
    widths = [sum(sizes[i].w for i in layer) + GAP_X * (len(layer) - 1) for layer in layers]
    total_w = max(widths)
    y = 0.0
    for layer, width in zip(layers, widths, strict=True):
        x = (total_w - width) / 2
        height = max(sizes[i].h for i in layer)
        for i in layer:
            sizes[i].x, sizes[i].y = x, y
            x += sizes[i].w + GAP_X
        y += height + GAP_Y
    return total_w, y - GAP_Y


_STYLE = """
.wfe-graph text{font-family:Helvetica,Arial,sans-serif;font-size:12px;fill:#222}
.wfe-graph g.node>rect{fill:#fff;stroke:#555;stroke-width:1.2}
.wfe-graph g.node[data-container="true"]>rect{fill:#f7f8fa;stroke:#9aa3ad}
.wfe-graph g.node[data-container="true"]>rect.header{fill:#e9edf2;stroke:none}
.wfe-graph g.node[data-compensation="true"]>rect{stroke-dasharray:5 3}
.wfe-graph g.node[data-kind="end"]>rect{stroke-width:2.5}
.wfe-graph g.edge>path{fill:none;stroke:#666;stroke-width:1.2}
.wfe-graph g.edge[data-kind="branch"]>path{stroke:#aaa}
.wfe-graph g.edge[data-kind="needs"]>path{stroke-width:2}
.wfe-graph g.edge[data-kind="compensate"]>path{stroke:#8e44ad;stroke-dasharray:5 3}
.wfe-graph g.edge>text{font-size:10px;fill:#444;paint-order:stroke;stroke:#fff;stroke-width:3px}
"""


def _state_css() -> str:
    return "".join(
        f'.wfe-graph g.node[data-state="{state}"]>rect{{fill:{fill};stroke:{stroke}}}\n'
        for state, (fill, stroke) in STATE_COLOURS.items()
    )


def _rx(kind: str) -> float:
    return {"wait": 17.0, "delay": 17.0, "end": 17.0, "decide": 2.0, "if": 2.0}.get(kind, 6.0)


def to_svg(graph: DefinitionGraph, states: Mapping[int, str] | None = None) -> str:
    """A standalone ``<svg>`` of ``graph``, top-down, containers as rounded boxes around
    their children, outcome labels on edges. Each node is a ``<g class="node">`` with
    ``data-node-id``, ``data-step-id``, ``data-kind`` and ``data-state`` (from
    ``states``: step id -> ``complete`` | ``running`` | ``failed`` | ...; empty when not
    given), coloured by the embedded stylesheet."""
    layout = _Layout(graph)
    width, height = layout.measure(None)
    layout.place(None, MARGIN, MARGIN)
    width += 2 * MARGIN + 40  # room on the right for upward edges
    height += 2 * MARGIN
    states = states or {}
    out = [
        '<svg xmlns="http://www.w3.org/2000/svg" class="wfe-graph" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'role="img" aria-label="{_xml(f"{graph.workflow_id} v{graph.version}")}">',
        f"<title>{_xml(f'{graph.workflow_id} v{graph.version}')}</title>",
        f"<style>{_STYLE}{_state_css()}</style>",
        '<defs><marker id="wfe-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="8" markerHeight="8" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        '<path d="M0,0L10,5L0,10z" fill="#666"/></marker></defs>',
    ]
    # Containers first (outer before inner), so boxes lie behind what they hold.
    depth = _depths(graph)
    ordered = sorted(graph.nodes, key=lambda n: (n.id not in layout.containers, depth[n.id]))
    for node in ordered:
        if node.id in layout.containers:
            out.append(_node_svg(node, layout, states))
    out.extend(_edges_svg(graph, layout))
    for node in ordered:
        if node.id not in layout.containers:
            out.append(_node_svg(node, layout, states))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _depths(graph: DefinitionGraph) -> dict[str, int]:
    """How many containers each node is inside."""
    parents = {n.id: n.parent for n in graph.nodes}
    depths: dict[str, int] = {}
    for n in graph.nodes:
        depth, current = 0, n.parent
        while current is not None and depth <= len(parents):
            depth, current = depth + 1, parents.get(current)
        depths[n.id] = depth
    return depths


def _node_svg(node: GraphNode, layout: _Layout, states: Mapping[int, str]) -> str:
    box = layout.boxes[node.id]
    container = node.id in layout.containers
    state = states.get(node.step_id, "")
    head = (
        f'<g class="node" data-node-id="{_xml(node.id)}" data-step-id="{node.step_id}" '
        f'data-kind="{_xml(node.kind)}" data-state="{_xml(state)}" '
        f'data-container="{"true" if container else "false"}" '
        f'data-compensation="{"true" if node.compensation else "false"}">'
    )
    title = f"<title>{_xml(shown(node))}</title>"
    rect = (
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" '
        f'rx="{10.0 if container else _rx(node.kind):.0f}"/>'
    )
    if container:
        header = layout.headers[node.id]
        text = _title(node)
        body = (
            f'<rect class="header" x="{header.x:.1f}" y="{header.y:.1f}" '
            f'width="{header.w:.1f}" height="{header.h:.1f}" rx="6"/>'
            f'<text x="{header.cx:.1f}" y="{header.y + header.h / 2 + 4:.1f}" '
            f'text-anchor="middle" font-weight="bold">{_xml(text)}</text>'
        )
    else:
        text = _title(node)
        body = (
            f'<text x="{box.cx:.1f}" y="{box.y + box.h / 2 + 4:.1f}" '
            f'text-anchor="middle">{_xml(text)}</text>'
        )
    return f"{head}{title}{rect}{body}</g>"


def _edges_svg(graph: DefinitionGraph, layout: _Layout) -> list[str]:
    out: list[str] = []
    for e in graph.edges:
        if e.kind == "branch" and e.source in layout.headers:
            src = layout.headers[e.source]
        else:
            src = layout.boxes[e.source]
        dst = layout.boxes[e.target]
        x1, y1 = src.cx, src.y + src.h
        x2, y2 = dst.cx, dst.y
        if y2 > y1 + 1:
            bend = max(12.0, (y2 - y1) / 2)
            d = (
                f"M{x1:.1f},{y1:.1f}C{x1:.1f},{y1 + bend:.1f} "
                f"{x2:.1f},{y2 - bend:.1f} {x2:.1f},{y2:.1f}"
            )
            lx, ly = (x1 + x2) / 2, (y1 + y2) / 2
        else:
            # Upwards or sideways (a loop back, a goto): along the right side.
            x1, y1 = src.x + src.w, src.y + src.h / 2
            x2, y2 = dst.x + dst.w, dst.y + dst.h / 2
            reach = max(x1, x2) + 30
            d = f"M{x1:.1f},{y1:.1f}C{reach:.1f},{y1:.1f} {reach:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
            lx, ly = reach - 8, (y1 + y2) / 2
        label = "compensate" if e.kind == "compensate" else e.label
        text = ""
        if label is not None:
            shown_label = _xml(cut(label, 32))
            text = f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="middle">{shown_label}</text>'

        out.append(
            f'<g class="edge" data-source="{_xml(e.source)}" data-target="{_xml(e.target)}" '
            f'data-kind="{_xml(e.kind)}"><path d="{d}" marker-end="url(#wfe-arrow)"/>{text}</g>'
        )
    return out
