"""The definition graph on the instance page, drawn by :mod:`wfe.host._graph`."""

from __future__ import annotations

from wfe.core import WorkflowDefinition, WorkflowInstance

from .._graph import definition_graph, instance_states, to_svg


def graph_svg(definition: WorkflowDefinition, instance: WorkflowInstance) -> str:
    """The definition as a standalone SVG, each node marked with the state its step has
    reached in ``instance`` (``data-state``; the page's stylesheet colours it)."""
    return to_svg(definition_graph(definition), instance_states(definition, instance))
