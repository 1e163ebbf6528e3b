"""Crash campaign: several host processes on one SQLite file, a random one SIGKILLed
every 1-3 s and restarted, while waves of workflows (sequences of five steps, and
workflows that wait for an event, its event published at once) are started every
few seconds for ``--seconds`` and then run to the end.

    python tools/campaigns/crash.py [--hosts 3] [--workflows 100] [--seconds 180]

Checks, and prints one ``metric value unit`` line each plus ``ok``/``FAILED``:
every workflow completes with every step's result; a step runs again only when its
earlier run was in flight in a process that was killed (at-least-once, never for a
stored step); no instance runs on two live hosts at once (step intervals of different
processes never overlap unless the earlier process was killed during its interval);
every event reaches its own workflow once. Exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import trio

from wfe.host import WorkflowHostBuilder

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from crash_host import SEQ, WAIT  # noqa: E402  (the hosts' definitions)


def spawn(db: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "crash_host.py"), str(db), str(log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def start_all(db: Path, count: int) -> tuple[list[str], list[str]]:
    """Start the workflows from a client host (it runs nothing itself)."""
    seq, wait = [], []
    client = (
        WorkflowHostBuilder()
        .persistence(f"sqlite:///{db}")
        .run_workflows(False)
        .register(SEQ)
        .register(WAIT)
    )
    async with client.build() as host:
        for i in range(count):
            if i % 4 == 3:
                wait.append(await host.start_workflow("campaign-wait", 1, {}))
            else:
                seq.append(await host.start_workflow("campaign-seq", 1, {}))
    return seq, wait


async def publish_all(db: Path, ids: list[str]) -> None:
    client = WorkflowHostBuilder().persistence(f"sqlite:///{db}").run_workflows(False)
    async with client.build() as host:
        for wid in ids:
            await host.publish_event("campaign-go", wid, {"for": wid})


def stored(db: Path) -> dict[str, tuple[str, dict[str, object]]]:
    with sqlite3.connect(db, timeout=30) as conn:
        rows = conn.execute("SELECT id, status, data FROM workflows").fetchall()
    return {wid: (status, json.loads(data)) for wid, status, data in rows}


# A run is in flight from a little before its ``begin`` (scheduled, its lease checked)
# until a little after its ``end`` (its checkpoint is being written); a host stopped in
# that window loses the run to the new holder, which runs the step again, and the
# store refuses the stopped host's result.
_IN_FLIGHT_SLACK = 0.5


def paused_during(
    pauses: dict[int, list[tuple[float, float]]], pid: int, began: float, ended: float
) -> bool:
    """Whether ``pid`` was stopped (SIGSTOP) while the run from ``began`` to ``ended``
    was in flight (see above)."""
    slack = _IN_FLIGHT_SLACK
    return any(
        stop <= ended + slack and began <= cont + slack for stop, cont in pauses.get(pid, [])
    )


def check(
    db: Path,
    log: Path,
    kills: dict[int, float],
    pauses: dict[int, list[tuple[float, float]]],
    seq: list[str],
    wait: list[str],
) -> list[str]:
    problems: list[str] = []
    runs: dict[tuple[str, str], list[tuple[int, float, float | None]]] = defaultdict(list)
    open_runs: dict[tuple[str, str, int], float] = {}
    for line in log.read_text().splitlines():
        kind, wid, n, pid_text, at = line.split()
        if kind == "begin":
            open_runs[(wid, n, int(pid_text))] = float(at)
        elif kind == "end":
            began = open_runs.pop((wid, n, int(pid_text)), float(at))
            runs[(wid, n)].append((int(pid_text), began, float(at)))
    for (wid, n, host), began in open_runs.items():
        runs[(wid, n)].append((host, began, None))
    state = stored(db)
    for wid in seq + wait:
        status, data = state[wid]
        steps = ("1", "2", "3", "4", "5") if wid in seq else ("1", "3")
        if status != "COMPLETE":
            problems.append(f"{wid} ended {status}")
        for n in steps:
            if f"s{n}" not in data:
                problems.append(f"{wid} lost step {n}")
        if wid in wait and data.get("event") != {"for": wid}:
            problems.append(f"{wid} got event {data.get('event')!r}")
    by_workflow: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for (wid, n), attempts in runs.items():
        # A run may repeat only when an earlier one was in flight in a process that was
        # killed, or stopped past its lease (its result is then refused).
        finished_live = [
            a
            for a in attempts
            if a[0] not in kills
            and a[2] is not None
            and not paused_during(pauses, a[0], a[1], a[2])
        ]
        if len(finished_live) > 1:
            problems.append(f"step {n} of {wid} ran {len(finished_live)} times on live hosts")
        for pid, began, ended in attempts:
            end = ended if ended is not None else kills.get(pid, began)
            by_workflow[wid].append((pid, began, end))
    for wid, spans in by_workflow.items():
        spans.sort(key=lambda s: s[1])
        for (pid_a, _, end_a), (pid_b, begin_b, _) in itertools.pairwise(spans):
            lost = pid_a in kills or paused_during(pauses, pid_a, begin_b, end_a)
            if pid_a != pid_b and begin_b < end_a and not lost:
                problems.append(f"{wid} ran on {pid_a} and {pid_b} at once")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--workflows", type=int, default=100, help="per wave")
    parser.add_argument("--seconds", type=float, default=180.0, help="of waves and faults")
    parser.add_argument("--wave-seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--pause-every", type=int, default=0, help="every Nth fault is a SIGSTOP for 3-4 s"
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="wfe-campaign-") as tmp:
        db, log = Path(tmp) / "w.db", Path(tmp) / "log"
        hosts = [spawn(db, log) for _ in range(args.hosts)]
        kills: dict[int, float] = {}
        pauses: dict[int, list[tuple[float, float]]] = defaultdict(list)
        faults = 0
        seq: list[str] = []
        wait: list[str] = []
        started = time.monotonic()
        next_wave = started
        next_kill = time.monotonic() + rng.uniform(1, 3)
        deadline = started + args.seconds + 120  # the last wave's time to finish
        try:
            while time.monotonic() < deadline:
                time.sleep(0.1)
                if time.monotonic() >= next_wave and time.monotonic() - started < args.seconds:
                    # A wave: start workflows and publish the waiting ones' events at once
                    # (an event may arrive before its wait: it stays pending).
                    new_seq, new_wait = trio.run(start_all, db, args.workflows)
                    trio.run(publish_all, db, new_wait)
                    seq += new_seq
                    wait += new_wait
                    next_wave = time.monotonic() + args.wave_seconds
                if time.monotonic() >= next_kill:
                    faults += 1
                    victim = rng.randrange(len(hosts))
                    proc = hosts[victim]
                    if args.pause_every and faults % args.pause_every == 0:
                        stopped_at = time.time()
                        proc.send_signal(signal.SIGSTOP)
                        time.sleep(rng.uniform(3, 4))  # past the 2 s lease
                        pauses[proc.pid].append((stopped_at, time.time()))
                        proc.send_signal(signal.SIGCONT)
                    else:
                        proc.send_signal(signal.SIGKILL)
                        proc.wait()
                        kills[proc.pid] = time.time()
                        hosts[victim] = spawn(db, log)
                    next_kill = time.monotonic() + rng.uniform(1, 3)
                if time.monotonic() - started >= args.seconds:
                    state = stored(db)
                    if all(state[w][0] == "COMPLETE" for w in seq + wait):
                        break
        finally:
            for proc in hosts:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        problems = check(db, log, kills, pauses, seq, wait)
        elapsed = time.monotonic() - started
        print(f"campaign_workflows {len(seq) + len(wait)} workflows")
        print(f"campaign_kills {len(kills)} kills")
        print(f"campaign_pauses {sum(map(len, pauses.values()))} pauses")
        print(f"campaign_seconds {elapsed:.1f} s")
        print(f"campaign_problems {len(problems)} problems")
        for p in problems[:50]:
            print("  " + p)
        if problems:
            wid = next((w for w in seq + wait if w in problems[0]), None)
            print(f"pauses: {dict(pauses)}; kills: {kills}")
            for line in log.read_text().splitlines():
                if wid and wid in line:
                    print("  log: " + line)
        print("ok" if not problems else "FAILED")
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
