"""The chaos campaign's checks, from the step log the hosts append and the final store.

A step run is a ``begin`` line and, if its process lived to the step's return, an
``end`` line (flushed before the step returns). The run whose checkpoint was committed
is the one whose ``pid:begin`` token is in the workflow's data. From these:

- a *committed step ran again*: another run of the same step began after the
  committed run ended (its checkpoint could only be committed after its end, and once
  committed no host may run the step again);
- a *re-run*: a run beyond the first of a step; each must be an uncommitted run in a
  process that was later killed (the step was in flight at the kill), and no kill may
  cost more in-flight steps than a host runs at once;
- an *overlap*: two processes running steps of one workflow at the same time (a killed
  process's unfinished run counts until its kill).

A process stopped (SIGSTOP) past its lease while a run was in flight loses that run
to another host, which runs the step again, possibly while the stopped one's body is
still in its interval (its result is then refused): such re-runs and overlaps are
allowed, and counted as in flight at pauses.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Pauses = dict[int, list[tuple[float, float]]]  # pid -> [(SIGSTOP, SIGCONT) wall times]

# A run is in flight from a little before its ``begin`` (scheduled, its lease checked)
# until a little after its ``end`` (its checkpoint being written).
_IN_FLIGHT_SLACK = 0.5


def paused_during(pauses: Pauses, pid: int, began: float, ended: float | None) -> bool:
    """Whether ``pid`` was stopped while a run from ``began`` to ``ended`` was in flight."""
    until = float("inf") if ended is None else ended + _IN_FLIGHT_SLACK
    slack = _IN_FLIGHT_SLACK
    return any(stop <= until and began <= cont + slack for stop, cont in pauses.get(pid, []))


@dataclass
class Run:
    pid: int
    token: str  # "pid:begin", as the step stores it
    begin: float
    end: float | None = None


@dataclass
class Verdict:
    """The figures and the violations of one campaign."""

    steps: int = 0
    reruns: int = 0
    inflight_at_kills: int = 0
    inflight_at_pauses: int = 0
    max_inflight_per_kill: int = 0
    committed_reruns: int = 0
    overlaps: int = 0
    lost: int = 0
    problems: list[str] = field(default_factory=list)


def read_runs(log: Path) -> dict[tuple[str, str], list[Run]]:
    """Every run of every (workflow, step) in the log, in log order."""
    runs: dict[tuple[str, str], list[Run]] = defaultdict(list)
    open_runs: dict[tuple[str, str, int], Run] = {}
    for line in log.read_text().splitlines():
        kind, wid, n, pid_text, at = line.split()
        pid = int(pid_text)
        if kind == "begin":
            run = Run(pid, f"{pid}:{at}", float(at))
            open_runs[(wid, n, pid)] = run
            runs[(wid, n)].append(run)
        elif kind == "end" and (wid, n, pid) in open_runs:
            open_runs.pop((wid, n, pid)).end = float(at)
    return runs


def judge(
    runs: dict[tuple[str, str], list[Run]],
    final: dict[str, tuple[str, dict[str, Any]]],
    kills: dict[int, float],
    steps: int,
    per_host: int,
    pauses: Pauses | None = None,
) -> Verdict:
    """Check the runs against the store's final state (``final``: id -> status, data),
    the kills (pid -> wall time) and pauses; ``per_host``: steps one host runs at once."""
    pauses = pauses or {}
    v = Verdict()
    lost: set[str] = set()
    uncommitted_by_pid: dict[int, int] = defaultdict(int)
    for wid, (status, data) in final.items():
        if status != "COMPLETE":
            lost.add(wid)
            v.problems.append(f"{wid} ended {status}")
        for n in map(str, range(1, steps + 1)):
            attempts = runs.get((wid, n), [])
            v.steps += 1
            v.reruns += max(0, len(attempts) - 1)
            token = data.get(f"s{n}")
            committed = next((r for r in attempts if r.token == token), None)
            if committed is None:
                if status == "COMPLETE":
                    lost.add(wid)
                    v.problems.append(f"{wid} step {n}: committed run {token!r} not in the log")
                continue
            if committed.end is None:
                v.problems.append(f"{wid} step {n}: committed run {token} never returned")
                continue
            for r in attempts:
                if r is committed:
                    continue
                if r.begin > committed.end:
                    v.committed_reruns += 1
                    v.problems.append(f"{wid} step {n} ran again on {r.pid} after its commit")
                killed = kills.get(r.pid)
                if killed is not None and killed >= r.begin:
                    uncommitted_by_pid[r.pid] += 1
                elif paused_during(pauses, r.pid, r.begin, r.end):
                    v.inflight_at_pauses += 1
                else:
                    v.problems.append(f"{wid} step {n} ran again while {r.pid} lived")
    v.lost = len(lost)
    v.inflight_at_kills = sum(uncommitted_by_pid.values())
    v.max_inflight_per_kill = max(uncommitted_by_pid.values(), default=0)
    if v.reruns > v.inflight_at_kills + v.inflight_at_pauses:
        v.problems.append(
            f"{v.reruns} re-runs, but only {v.inflight_at_kills} steps in flight at kills"
            f" and {v.inflight_at_pauses} at pauses"
        )
    if v.max_inflight_per_kill > per_host:
        v.problems.append(f"a kill cost {v.max_inflight_per_kill} steps (a host runs {per_host})")
    _overlaps(v, runs, kills, pauses)
    return v


def _overlaps(
    v: Verdict, runs: dict[tuple[str, str], list[Run]], kills: dict[int, float], pauses: Pauses
) -> None:
    by_workflow: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for (wid, _), attempts in runs.items():
        for r in attempts:
            end = r.end if r.end is not None else kills.get(r.pid, float("inf"))
            by_workflow[wid].append((r.begin, end, r.pid))
    for wid, spans in by_workflow.items():
        spans.sort()
        latest_end, latest_pid = float("-inf"), -1
        for begin, end, pid in spans:
            fenced = paused_during(pauses, latest_pid, begin, latest_end)
            if pid != latest_pid and begin < latest_end and not fenced:
                v.overlaps += 1
                v.problems.append(f"{wid} ran on {latest_pid} and {pid} at once")
            if end > latest_end:
                latest_end, latest_pid = end, pid
