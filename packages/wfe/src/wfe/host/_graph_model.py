"""The shape of a workflow definition as a graph of nodes and edges, for drawing.

Each step is a node (``s<step id>``); a container step (if, while, for-each, parallel,
saga, ...) is a node whose children name it as ``parent``. Edges are the step's
outcomes (``next``, or ``outcome`` with the value shown), ``branch`` from a container
to the first step of each of its branches, and ``compensate`` from a step to the step
that undoes it.

A YAML pipeline using ``needs``/``matrix`` is compiled onto internal scheduling steps
(a loop of rounds of workers); its graph shows the pipeline instead: the loop becomes a
``pipeline`` container whose nodes are the pipeline's jobs (a matrix job once, with its
matrix in the label) and whose ``needs`` edges say which job waits for which. wfe-yaml
leaves the jobs on the body of the round's end step as ``pipeline_jobs`` (plain data:
``name``, ``needs``, ``matrix`` axis -> values or ``None``, ``units``), duck-typed like
``default_name`` and ``fingerprint_key`` so the host needs no import of wfe-yaml.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from wfe.core import WorkflowDefinition, WorkflowStep
from wfe.core.primitives import (
    ContainerStep,
    Decide,
    Delay,
    EndWorkflow,
    ForEach,
    If,
    Recur,
    Saga,
    Schedule,
    Sequence,
    SubWorkflow,
    Switch,
    WaitFor,
    When,
    While,
)

LABEL_LIMIT = 60
"""Outcome values are shown as their ``repr``, cut to this many characters."""


@attrs.frozen
class GraphNode:
    """One step of the definition, as drawn."""

    id: str
    """``s<step id>``: unique and stable; the SVG element's ``data-node-id``."""
    step_id: int
    label: str
    """The step's display name (renderers escape it for their output)."""
    kind: str
    """What the body is: ``step``, ``container``, ``if``, ``while``, ``foreach``,
    ``parallel``, ``sequence``, ``saga``, ``decide``, ``switch``, ``when``, ``wait``,
    ``delay``, ``schedule``, ``recur``, ``end``, ``subworkflow``; for YAML pipelines
    ``pipeline`` and ``job``."""
    parent: str | None
    """The id of the container node this one is inside; ``None`` at top level."""
    compensation: bool
    """Whether this is a compensation step (runs only to undo another)."""


@attrs.frozen
class GraphEdge:
    """A possible transition between two nodes."""

    source: str
    target: str
    kind: str
    """``next`` (plain), ``outcome`` (taken for one value), ``branch`` (container to a
    branch's first step), ``compensate`` (step to its undo), ``needs`` (pipeline job to
    a job that needs it)."""
    label: str | None
    """The outcome value (``repr``, cut) or what the edge means; ``None`` for ``next``."""


@attrs.frozen
class DefinitionGraph:
    """The drawable graph of one definition (id and version)."""

    workflow_id: str
    version: int
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]

    def node(self, node_id: str) -> GraphNode:
        """The node with this id (``KeyError`` when there is none)."""
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def children(self, node_id: str | None) -> tuple[GraphNode, ...]:
        """The nodes directly inside ``node_id`` (top-level nodes for ``None``)."""
        return tuple(n for n in self.nodes if n.parent == node_id)


def node_id(step_id: int) -> str:
    """The graph id of a step."""
    return f"s{step_id}"


def cut(text: str, limit: int = LABEL_LIMIT) -> str:
    """``text`` shortened to ``limit`` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


# Most specific first: Saga is a Sequence, the others are unrelated.
_KINDS: tuple[tuple[type, str], ...] = (
    (Saga, "saga"),
    (If, "if"),
    (While, "while"),
    (ForEach, "foreach"),
    (Switch, "switch"),
    (When, "when"),
    (Recur, "recur"),
    (Schedule, "schedule"),
    (Decide, "decide"),
    (WaitFor, "wait"),
    (Delay, "delay"),
    (EndWorkflow, "end"),
    (SubWorkflow, "subworkflow"),
)


def step_kind(step: WorkflowStep) -> str:
    """What kind of node a step is drawn as (unknown bodies are ``step``)."""
    body = step.body
    for base, kind in _KINDS:
        if issubclass(body, base):
            return kind
    if issubclass(body, Sequence):
        # The builder names a parallel block's body ``Sequence[parallel]``; any
        # sequence with several branches runs them at once, too.
        if body.__name__ == "Sequence[parallel]" or len(step.children) > 1:
            return "parallel"
        return "sequence"
    if issubclass(body, ContainerStep) or step.children:
        return "container"
    return "step"


def _outcome_label(value: Any, label: str | None) -> str | None:
    if label is not None:
        return cut(label)
    if value is None:
        return None
    if callable(value):
        return "(condition)"
    return cut(repr(value))


def definition_graph(definition: WorkflowDefinition) -> DefinitionGraph:
    """The graph of ``definition``: every step a node, every outcome, branch and
    compensation an edge; YAML pipelines drawn as their jobs and ``needs``."""
    nodes: list[GraphNode] = []
    edges: list[GraphEdge] = []
    steps = definition.steps
    # A pipeline's scheduling loop is drawn as the pipeline; what is inside it is not.
    loops = {s.parent for s in steps if s.parent is not None and _pipeline_jobs(s) is not None}
    hidden: set[int] = set()
    for loop in loops:
        hidden |= _descendants(definition, loop)
    for s in steps:
        if s.id in hidden:
            continue
        pipeline = s.id in loops
        nodes.append(
            GraphNode(
                id=node_id(s.id),
                step_id=s.id,
                # The loop's own name is the scheduler's; the container is the pipeline.
                label="pipeline" if pipeline else s.display_name,
                kind="pipeline" if pipeline else step_kind(s),
                parent=None if s.parent is None else node_id(s.parent),
                compensation=s.is_compensation,
            )
        )
        for o in s.outcomes:
            label = _outcome_label(o.value, o.label)
            kind = "next" if label is None else "outcome"
            edges.append(GraphEdge(node_id(s.id), node_id(o.next_step), kind, label))
        if not pipeline:
            for child in s.children:
                edges.append(GraphEdge(node_id(s.id), node_id(child), "branch", None))
        if s.compensation_step_id is not None:
            edges.append(
                GraphEdge(node_id(s.id), node_id(s.compensation_step_id), "compensate", None)
            )
    _add_pipelines(definition, nodes, edges)
    known = {n.id for n in nodes}
    kept = tuple(e for e in edges if e.source in known and e.target in known)
    return DefinitionGraph(definition.id, definition.version, tuple(nodes), kept)


def _descendants(definition: WorkflowDefinition, root: int) -> set[int]:
    """Every step inside container ``root`` (at any depth), not ``root`` itself."""
    inside: set[int] = set()
    changed = True
    while changed:
        changed = False
        for s in definition.steps:
            if (
                s.id not in inside
                and s.parent is not None
                and (s.parent in inside or s.parent == root)
            ):
                inside.add(s.id)
                changed = True
    return inside


def _pipeline_jobs(step: WorkflowStep) -> list[Mapping[str, Any]] | None:
    jobs = getattr(step.body, "pipeline_jobs", None)
    if isinstance(jobs, (list, tuple)) and all(isinstance(j, Mapping) for j in jobs):
        return list(jobs)
    return None


def _matrix_label(matrix: Any, units: int) -> str:
    if not isinstance(matrix, Mapping) or not matrix:
        return ""
    axes = "; ".join(
        f"{axis}: {', '.join(str(v) for v in values)}"
        if isinstance(values, (list, tuple))
        else f"{axis}: {values}"
        for axis, values in matrix.items()
    )
    return f" [matrix \u00d7{units}: {axes}]"


def _first_steps(definition: WorkflowDefinition, loop: WorkflowStep) -> dict[str, int]:
    """Unit name -> the first step the scheduler runs for it (the branch its decide
    takes for that name)."""
    first_step: dict[str, int] = {}
    for inner in sorted(_descendants(definition, loop.id)):
        s = definition.steps[inner]
        if issubclass(s.body, Decide):
            for o in s.outcomes:
                if isinstance(o.value, str):
                    first_step.setdefault(o.value, o.next_step)
    return first_step


def _jobs(
    definition: WorkflowDefinition,
) -> list[tuple[WorkflowStep, Mapping[str, Any], int, list[str]]]:
    """Each pipeline job with its loop, the step its node stands for, and its units."""
    out: list[tuple[WorkflowStep, Mapping[str, Any], int, list[str]]] = []
    for end in definition.steps:
        jobs = _pipeline_jobs(end)
        if jobs is None or end.parent is None:
            continue
        loop = definition.steps[end.parent]
        first_step = _first_steps(definition, loop)
        for job in jobs:
            name = str(job.get("name", ""))
            units = [str(u) for u in job.get("units", ()) or (name,)]
            sid = next((first_step[u] for u in units if u in first_step), None)
            if sid is not None:
                out.append((loop, job, sid, units))
    return out


def pipeline_units(definition: WorkflowDefinition) -> dict[int, list[str]]:
    """For a YAML pipeline: the step id of each job's node -> the job's unit names
    (its matrix instances, or its own name); empty for other definitions."""
    return {sid: units for _loop, _job, sid, units in _jobs(definition)}


def _add_pipelines(
    definition: WorkflowDefinition, nodes: list[GraphNode], edges: list[GraphEdge]
) -> None:
    """The jobs of each pipeline as nodes inside its loop, with ``needs`` edges. A
    job's node stands for the first step of its first unit (the step the scheduler runs
    for it), so step states map onto it."""
    job_node: dict[tuple[int, str], str] = {}
    found = _jobs(definition)
    for loop, job, sid, units in found:
        name = str(job.get("name", ""))
        job_node[(loop.id, name)] = node_id(sid)
        nodes.append(
            GraphNode(
                id=node_id(sid),
                step_id=sid,
                label=name + _matrix_label(job.get("matrix"), len(units)),
                kind="job",
                parent=node_id(loop.id),
                compensation=False,
            )
        )
    for loop, job, sid, _units in found:
        needs = job.get("needs") or ()
        if not needs:
            # The pipeline starts with the jobs that need nothing.
            edges.append(GraphEdge(node_id(loop.id), node_id(sid), "branch", None))
        for need in needs:
            source = job_node.get((loop.id, str(need)))
            if source is not None:
                edges.append(GraphEdge(source, node_id(sid), "needs", None))
