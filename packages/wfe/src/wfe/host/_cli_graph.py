"""``wfe show ID --graph``: the definition graph of a stored workflow, as Mermaid, DOT,
SVG or JSON, its steps marked with where the instance stands.

The store holds instances, not definitions: the definition comes from the sources
remembered next to the store (as for ``wfe resume`` and ``wfe worker``) or from the
files and ``--import`` modules given, matched by the instance's definition id and
version.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from wfe.core import WorkflowNotFoundError

from ._cli_commands import _inspect
from ._cli_setup import EXIT_OK, CliError, Loaded, Store, key_of
from ._graph import (
    definition_graph,
    graph_json,
    instance_states,
    to_dot,
    to_mermaid,
    to_svg,
)

FORMATS = ("mermaid", "dot", "svg")


def _definition(obj: Any) -> Any:
    return getattr(obj, "definition", obj)


async def show_graph(
    store: Store, loaded: Loaded, workflow_id: str, fmt: str, as_json: bool
) -> int:
    """Print the graph of the definition ``workflow_id`` runs (``fmt``: mermaid, dot or
    svg; ``as_json``: nodes, edges and step states as JSON)."""
    async with _inspect(store) as host:
        try:
            instance = await host.get_workflow(workflow_id)
        except WorkflowNotFoundError as exc:
            raise CliError(f"no workflow {workflow_id!r} in store {store.shown}") from exc
    key = f"{instance.definition_id}@{instance.version}"
    obj = loaded.definitions.get(key)
    if obj is None:
        known = ", ".join(sorted(loaded.definitions)) or "none"
        raise CliError(
            f"workflow {instance.id} runs {instance.definition_id!r} version "
            f"{instance.version}, which is not known here (known: {known}); pass its file "
            f"or module: wfe show {instance.id} FILE.yaml --graph, or --import MODULE "
            "(a workflow started with 'wfe run FILE.yaml' is remembered)"
        )
    definition = _definition(obj)
    graph = definition_graph(definition)
    states: dict[int, str] | None = instance_states(definition, instance)
    if instance.fingerprint and instance.fingerprint != definition.fingerprint:
        print(
            f"wfe: warning: workflow {instance.id} was started with other steps than "
            f"{instance.definition_id!r} version {instance.version} has now (from "
            f"{loaded.sources[key_of(definition)].path}); the graph is the definition as "
            "it is now, without the instance's step states",
            file=sys.stderr,
        )
        states = None
    if as_json:
        out = graph_json(graph)
        out["instance_id"] = instance.id
        by_node = {n.id: states[n.step_id] for n in graph.nodes if states and n.step_id in states}
        out["states"] = by_node
        print(json.dumps(out, indent=2, ensure_ascii=False))
    elif fmt == "dot":
        sys.stdout.write(to_dot(graph, states=states))
    elif fmt == "svg":
        sys.stdout.write(to_svg(graph, states))
    else:
        sys.stdout.write(to_mermaid(graph, states=states))
    return EXIT_OK
