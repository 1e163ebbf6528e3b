"""The state of a workflow's step graph (``needs``/``matrix``), kept in the workflow data
under ``data["__wfe_graph__"]`` so it is saved with every checkpoint:

``status``
    unit name → ``running`` | ``complete`` | ``failed`` | ``skipped`` (absent: pending);
``reasons``
    unit name → why it was skipped or how it failed;
``blocked``
    units skipped because of a failure (a failed need, or ``fail_fast``): a resume
    runs them again, with the failed ones;
``seeds`` / ``batches``
    the units each worker of the current round took;
``reported``
    the graph reported its failures (its last step failed), so the next run of that
    step is a resume.

A *unit* is one step, or one combination of a matrix step (``test (3.11, linux)``).
The functions here run inside step inputs and bodies, on trio's single thread: a check
and the change it leads to happen with no checkpoint between them, so two workers can
never take the same unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from wfe.core import StepError

from ._data import record_step

GRAPH_KEY = "__wfe_graph__"
RUNNING, COMPLETE, FAILED, SKIPPED = "running", "complete", "failed", "skipped"


@attrs.frozen(kw_only=True)
class Unit:
    """One schedulable instance of a step."""

    name: str
    step: str
    needs: tuple[str, ...]
    when: Any = None


@attrs.frozen(kw_only=True)
class GraphPlan:
    """The units of a workflow's graph, and how their step runs them."""

    units: tuple[Unit, ...]
    max_parallel: Mapping[str, int] = attrs.field(factory=dict)
    fail_fast: frozenset[str] = frozenset()

    def units_of(self, step: str) -> list[str]:
        return [u.name for u in self.units if u.step == step]

    # -- rounds and workers ---------------------------------------------------------

    def start_round(self, data: dict[str, Any]) -> bool:
        """The condition of the graph's loop: take the units that can run now as the
        seeds of a new round; ``False`` when none can (the graph is done)."""
        state = graph_state(data)
        seeds = self._advance(state, data)
        state["seeds"], state["batches"] = seeds, {}
        return bool(seeds)

    def seeds(self, data: dict[str, Any]) -> list[str]:
        return list(graph_state(data).get("seeds", []))

    def claim(self, data: dict[str, Any], seed: str) -> bool:
        """The condition of a worker's loop: first its seed, then every unit that can run
        now (run together); ``False`` when nothing can, ending the worker."""
        state = graph_state(data)
        batches = state.setdefault("batches", {})
        if seed not in batches:
            batches[seed] = [seed]
            return True
        batches[seed] = self._advance(state, data)
        return bool(batches[seed])

    def batch(self, data: dict[str, Any], seed: str) -> list[str]:
        return list(graph_state(data).get("batches", {}).get(seed, []))

    def _advance(self, state: dict[str, Any], data: dict[str, Any]) -> list[str]:
        """Skip what can no longer run, then mark as running (and return) what can."""
        status: dict[str, str] = state["status"]
        taken: list[str] = []
        while True:
            changed = self._skip_blocked(state)
            running: dict[str, int] = {}
            for u in self.units:
                if status.get(u.name) == RUNNING:
                    running[u.step] = running.get(u.step, 0) + 1
            for u in self.units:
                if u.name in status:
                    continue
                needs = [k for n in u.needs for k in self.units_of(n)]
                if not all(status.get(k) == COMPLETE for k in needs):
                    continue
                if u.when is not None and not u.when.evaluate(data):
                    status[u.name] = SKIPPED
                    state["reasons"][u.name] = "its `when` condition is false"
                    record_step(data, u.name, {"skipped": True})
                    changed = True
                    continue
                limit = self.max_parallel.get(u.step)
                if limit is not None and running.get(u.step, 0) >= limit:
                    continue
                status[u.name] = RUNNING
                running[u.step] = running.get(u.step, 0) + 1
                taken.append(u.name)
            if not changed:
                return taken

    def _skip_blocked(self, state: dict[str, Any]) -> bool:
        status: dict[str, str] = state["status"]
        reasons: dict[str, str] = state["reasons"]
        blocked: list[str] = state["blocked"]
        changed = False
        progress = True
        while progress:
            progress = False
            for u in self.units:
                if u.name in status:
                    continue
                reason, by_failure = self._blocker(u, status, blocked)
                if reason is None:
                    continue
                status[u.name] = SKIPPED
                reasons[u.name] = reason
                if by_failure:
                    blocked.append(u.name)
                progress = changed = True
        return changed

    def _blocker(
        self, u: Unit, status: Mapping[str, str], blocked: list[str]
    ) -> tuple[str | None, bool]:
        for need in u.needs:
            for k in self.units_of(need):
                s = status.get(k)
                if s == FAILED:
                    return f"its need {k!r} failed", True
                if s == SKIPPED:
                    return f"its need {k!r} was skipped", k in blocked
        if u.step in self.fail_fast and u.name != u.step:
            for k in self.units_of(u.step):
                if status.get(k) == FAILED:
                    return f"fail_fast: {k!r} failed", True
        return None, False

    # -- the end of a round ----------------------------------------------------------

    def end_round(self, data: dict[str, Any]) -> None:
        """The last step of each round. After a resume: make the failed units (and those
        skipped because of them) pending again. Else, when nothing more can run and
        some unit failed: fail, naming every failed and skipped unit."""
        state = graph_state(data)
        status: dict[str, str] = state["status"]
        if state.get("reported"):
            again = [k for k, s in status.items() if s == FAILED] + list(state["blocked"])
            for k in again:
                status.pop(k, None)
                state["reasons"].pop(k, None)
            state["blocked"] = []
            state["reported"] = False
            return
        if any(k not in status for k in (u.name for u in self.units)):
            return  # more to run: the loop takes the next round
        failed = [k for k, s in status.items() if s == FAILED]
        if not failed:
            return
        state["reported"] = True
        lines = [f"{len(failed)} step(s) failed: {', '.join(failed)}"]
        for k in failed:
            lines.append(f"- {state['reasons'].get(k, 'failed')}")
        skipped = list(state["blocked"])
        if skipped:
            lines.append(f"skipped because of the failure: {', '.join(skipped)}")
        lines.append("resume runs the failed steps again, then what depends on them")
        raise StepError("\n".join(lines))


def graph_state(data: dict[str, Any]) -> dict[str, Any]:
    """The graph's state in ``data`` (created empty on first use)."""
    state = data.get(GRAPH_KEY)
    if not isinstance(state, dict):
        state = data[GRAPH_KEY] = {}
    for key, empty in (("status", {}), ("reasons", {}), ("blocked", [])):
        if not isinstance(state.get(key), type(empty)):
            state[key] = empty
    return state


def mark_failed(data: dict[str, Any], unit: Any, message: str) -> None:
    """Record that ``unit`` failed for good (its last attempt) with ``message``."""
    if not isinstance(unit, str):
        raise StepError(message)
    state = graph_state(data)
    state["status"][unit] = FAILED
    state["reasons"][unit] = message


def mark_done(data: dict[str, Any], unit: Any) -> None:
    """The unit's steps ended: complete, unless one of them failed."""
    if not isinstance(unit, str):
        return
    state = graph_state(data)
    if state["status"].get(unit) == RUNNING:
        state["status"][unit] = COMPLETE
