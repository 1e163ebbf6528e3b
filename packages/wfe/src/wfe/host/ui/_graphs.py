"""The definition graph on the instance page, drawn by :mod:`wfe.host._graph`."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from wfe.core import WorkflowDefinition


def graph_svg(definition: WorkflowDefinition, states: Mapping[int, str]) -> str | None:
    """The definition as a standalone SVG, nodes marked with each step's state; ``None``
    when this installation has no graph renderer (the page shows the outline)."""
    try:
        graph: Any = importlib.import_module("wfe.host._graph")
    except ImportError:
        return None
    svg: str = graph.to_svg(graph.definition_graph(definition), states)
    return svg
