"""What ``wfe show`` adds for YAML pipelines: the graph of a workflow using ``needs`` or
``matrix`` (each step's status and why it was skipped or failed), its artifacts, and
the internal steps that schedule the graph (hidden)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wfe.core import ExecutionPointer, PointerStatus

from ._cli_view import is_hidden

GRAPH_KEY = "__wfe_graph__"
_STATUS = {
    "failed": PointerStatus.FAILED.value,
    "skipped": PointerStatus.SKIPPED.value,
    "complete": PointerStatus.COMPLETE.value,
    "running": PointerStatus.RUNNING.value,
}


def graph_state(data: Any) -> dict[str, Any] | None:
    """A YAML workflow's graph state (``status``, ``reasons``), if it has one."""
    state = data.get(GRAPH_KEY) if isinstance(data, dict) else None
    if isinstance(state, dict) and isinstance(state.get("status"), dict):
        return state
    return None


def graph_rows(data: Any) -> list[dict[str, str]]:
    """Each graph step (matrix instances apart): name, status, reason."""
    state = graph_state(data)
    if state is None:
        return []
    found = state.get("reasons")
    reasons: dict[str, Any] = found if isinstance(found, dict) else {}
    return [
        {"name": str(name), "status": str(status), "reason": str(reasons.get(name, ""))}
        for name, status in state["status"].items()
    ]


def shown_pointers(pointers: list[ExecutionPointer]) -> list[ExecutionPointer]:
    """The pointers a timeline shows: not the graph's scheduling steps (unless failed)."""
    return [
        p for p in pointers if not is_hidden(p.step_name or "") or p.status is PointerStatus.FAILED
    ]


def step_status(p: ExecutionPointer, data: Any) -> str:
    """A pointer's status as shown: a graph step whose last attempt failed (kept in the
    graph so its independent steps go on) is FAILED although its pointer completed."""
    state = graph_state(data)
    if state is not None and p.status is PointerStatus.COMPLETE:
        said = state["status"].get(p.step_name)
        if said in ("failed", "skipped"):
            return _STATUS[said]
    return p.status.value


def never_ran(data: Any, pointers: list[ExecutionPointer]) -> list[dict[str, str]]:
    """Graph steps that were skipped without running (no pointer of theirs exists)."""
    names = {p.step_name for p in pointers}
    return [r for r in graph_rows(data) if r["status"] == "skipped" and r["name"] not in names]


def artifacts(data: Any) -> list[dict[str, str]]:
    """Every recorded artifact: step, name, path."""
    steps = data.get("steps") if isinstance(data, dict) else None
    out: list[dict[str, str]] = []
    if not isinstance(steps, Mapping):
        return out
    for step, record in steps.items():
        found = record.get("artifacts") if isinstance(record, Mapping) else None
        if isinstance(found, Mapping):
            for name, path in found.items():
                out.append({"step": str(step), "name": str(name), "path": str(path)})
    return out
