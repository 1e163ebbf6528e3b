"""The definition graph on the instance page, drawn by :mod:`wfe.host._graph`."""

from __future__ import annotations

from collections.abc import Mapping

from wfe.core import WorkflowDefinition

from .._graph import definition_graph, to_svg


def graph_svg(definition: WorkflowDefinition, states: Mapping[int, str]) -> str:
    """The definition as a standalone SVG, each node marked with its step's state
    (``data-state``; the page's stylesheet colours it)."""
    return to_svg(definition_graph(definition), states)
