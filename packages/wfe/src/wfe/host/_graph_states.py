"""Where an instance stands on its definition graph: a state per step, for colouring.

A step visited several times (loop iterations, for-each items) shows its most telling
visit: a failure or a visit still in progress before completed ones. A YAML pipeline's
job shows the graph state its units recorded in the workflow data (a unit whose last
attempt failed is kept as ``failed`` although its pointer completed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wfe.core import PointerStatus, WorkflowDefinition, WorkflowInstance

from ._graph_model import pipeline_units

POINTER_STATES: Mapping[PointerStatus, str] = {
    PointerStatus.PENDING: "pending",
    PointerStatus.PENDING_PREDECESSOR: "pending",
    PointerStatus.RUNNING: "running",
    PointerStatus.SLEEPING: "sleeping",
    PointerStatus.WAITING_FOR_EVENT: "waiting",
    PointerStatus.COMPLETE: "complete",
    PointerStatus.SKIPPED: "skipped",
    PointerStatus.FAILED: "failed",
    PointerStatus.COMPENSATED: "compensated",
    PointerStatus.CANCELLED: "cancelled",
}
"""The state shown for each pointer status."""

# Which state a step visited several times shows: the first of these that any visit has.
_PRECEDENCE = (
    "failed",
    "running",
    "waiting",
    "sleeping",
    "pending",
    "compensated",
    "cancelled",
    "complete",
    "skipped",
)
GRAPH_KEY = "__wfe_graph__"


def _strongest(states: set[str]) -> str:
    return next(s for s in _PRECEDENCE if s in states)


def instance_states(definition: WorkflowDefinition, instance: WorkflowInstance) -> dict[int, str]:
    """Step id -> state (``complete``, ``running``, ``failed``, ``waiting``, ...) for
    the steps ``instance`` has reached; steps it has not reached are absent."""
    seen: dict[int, set[str]] = {}
    for p in instance.execution_pointers:
        seen.setdefault(p.step_id, set()).add(POINTER_STATES.get(p.status, "pending"))
    states = {step: _strongest(found) for step, found in seen.items()}
    recorded = _graph_status(instance.data)
    for step, units in pipeline_units(definition).items():
        found = {recorded[u] for u in units if u in recorded}
        if not found:
            continue  # the graph has not taken any of its units yet
        if any(u not in recorded for u in units):
            found.add("pending")  # some matrix instances have not started
        states[step] = _strongest(found)
    return states


def _graph_status(data: Any) -> dict[str, str]:
    state = data.get(GRAPH_KEY) if isinstance(data, dict) else None
    status = state.get("status") if isinstance(state, dict) else None
    if not isinstance(status, dict):
        return {}
    return {str(k): str(v) for k, v in status.items() if str(v) in _PRECEDENCE}
