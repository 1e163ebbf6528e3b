"""The definition graph shared by ``wfe show --graph`` and the dashboard: a workflow
definition as nodes and edges (:func:`definition_graph`), drawn as Mermaid, Graphviz
DOT, a standalone SVG, or JSON, coloured by an instance's step states
(:func:`instance_states`). Pure functions, no I/O."""

from ._graph_model import DefinitionGraph as DefinitionGraph
from ._graph_model import GraphEdge as GraphEdge
from ._graph_model import GraphNode as GraphNode
from ._graph_model import definition_graph as definition_graph
from ._graph_model import pipeline_units as pipeline_units
from ._graph_render import graph_json as graph_json
from ._graph_render import to_dot as to_dot
from ._graph_render import to_mermaid as to_mermaid
from ._graph_states import instance_states as instance_states
from ._graph_svg import to_svg as to_svg

__all__ = [
    "DefinitionGraph",
    "GraphEdge",
    "GraphNode",
    "definition_graph",
    "graph_json",
    "instance_states",
    "pipeline_units",
    "to_dot",
    "to_mermaid",
    "to_svg",
]
