"""Helpers shared by the definition-graph tests: step functions, look-ups by label,
and structural checks of each output format."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from wfe.core import StepExecutionContext
from wfe.host._graph import DefinitionGraph, GraphEdge

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '"]; click s0 call alert(1) </text><script>x</script> & \\N `md` #35; |'


def work(ctx: StepExecutionContext) -> None:
    return None


def undo(ctx: StepExecutionContext) -> None:
    return None


def kinds(graph: DefinitionGraph) -> dict[str, str]:
    return {n.label: n.kind for n in graph.nodes}


def by_label(graph: DefinitionGraph, label: str) -> str:
    (found,) = [n.id for n in graph.nodes if n.label == label]
    return found


def edges_between(graph: DefinitionGraph, a: str, b: str) -> list[GraphEdge]:
    ia, ib = by_label(graph, a), by_label(graph, b)
    return [e for e in graph.edges if e.source == ia and e.target == ib]


def mermaid_structure(text: str) -> tuple[set[str], list[tuple[str, str]]]:
    """The node ids declared and the edges of a Mermaid flowchart, checking its shape:
    a ``flowchart TD`` header, balanced ``subgraph``/``end``, one declaration per node,
    every label quoted with no raw quote inside."""
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "flowchart TD"
    declared: list[str] = []
    edges: list[tuple[str, str]] = []
    depth = 0
    for line in lines[1:]:
        if not line or line.startswith("%%"):
            continue
        if line.startswith("subgraph "):
            depth += 1
            assert re.fullmatch(r'subgraph cs\d+ \["[^"]*"\]', line), line
        elif line == "end":
            depth -= 1
            assert depth >= 0
        elif line.startswith(("classDef ", "class ", "direction ")):
            continue
        elif m := re.fullmatch(r'(s\d+) (-->|-\.->|==>)(\|"[^"]*"\|)? (s\d+)', line):
            edges.append((m.group(1), m.group(4)))
        else:
            m = re.fullmatch(r'(s\d+)(\[|\(\[|\{|\[\[|\(\()"([^"]*)"(\]|\]\)|\}|\]\]|\)\))', line)
            assert m, f"not a node declaration: {line!r}"
            declared.append(m.group(1))
    assert depth == 0
    assert len(declared) == len(set(declared))
    return set(declared), edges


def dot_svg(text: str) -> ET.Element:
    """Graphviz's own rendering of ``text`` (skips when ``dot`` is not installed)."""
    if shutil.which("dot") is None:
        pytest.skip("Graphviz 'dot' is not installed (apt-get install graphviz)")
    done = subprocess.run(
        ["dot", "-Tsvg"], input=text, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr
    assert "Error" not in done.stderr, done.stderr
    return ET.fromstring(done.stdout)


def svg_nodes(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert not list(root.iter(f"{SVG}script"))
    assert not list(root.iter(f"{SVG}foreignObject"))
    for element in root.iter():
        for name, value in element.attrib.items():
            assert "href" not in name, (element.tag, name)
            assert not name.startswith("on"), (element.tag, name)
            assert "url(" not in value or value == "url(#wfe-arrow)", value
    return root.findall(f".//{SVG}g[@class='node']")


def box(g: ET.Element) -> tuple[float, float, float, float]:
    rect = g.find(f"{SVG}rect")
    assert rect is not None
    x, y = float(rect.get("x", "0")), float(rect.get("y", "0"))
    return x, y, x + float(rect.get("width", "0")), y + float(rect.get("height", "0"))
