"""Chaos campaign: workflows of ten steps on three host processes while a random host is
SIGKILLed every few seconds and restarted, then checks that nothing was lost.

    python tools/chaos.py --store sqlite|postgres [--hosts 3] [--workflows 600]
                          [--seconds 180] [--kill-min 1] [--kill-max 3] [--seed 1]
                          [--pause-every N]

``sqlite``: a fresh SQLite file (its own locks and queues); ``postgres``: a fresh schema
on the PostgreSQL server with Valkey locks and queues under a fresh key prefix (both
removed afterwards; see campaigns/stores.py). The workflows are started in waves over
``--seconds``, during which a random host is killed every ``--kill-min``..``--kill-max``
seconds and a new one started in its place; then the hosts run until every workflow
has ended (or ``--drain`` seconds pass). With ``--pause-every N`` every Nth fault is a
SIGSTOP for 3-4 s instead (past the 2 s lease: the host is fenced out, then continues).

Checks (campaigns/records.py): every workflow COMPLETE with every step's result; no
committed step ran again; every re-run is a step that was in flight in a killed host,
and no kill cost more steps than a host runs at once (so re-runs <= kills x in-flight
steps); no workflow ran on two hosts at once; no host died by itself. Prints ``name
value unit`` lines and ``ok``/``FAILED``; exits 1 on a violation.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).parent / "campaigns"))
from chaos_host import CHAOS, CHAOS_STEPS
from fleet import Fleet
from records import judge, read_runs
from stores import PER_HOST, STORES, Store, open_store

from wfe.core import WorkflowStatus
from wfe.host import WorkflowHost

MB = 1024 * 1024


async def final_state(host: WorkflowHost, ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    state = {}
    for wid in ids:
        instance = await host.get_workflow(wid)
        state[wid] = (instance.status.name, dict(instance.data))
    return state


async def unfinished(host: WorkflowHost, ids: list[str]) -> list[str]:
    left = []
    for wid in ids:
        if (await host.get_workflow(wid)).status is WorkflowStatus.RUNNABLE:
            left.append(wid)
    return left


async def campaign(args: argparse.Namespace, store: Store, tmp: Path) -> int:
    rng = random.Random(args.seed)
    fleet = Fleet(store, args.hosts, tmp)
    client = store.builder().run_workflows(False).register(CHAOS)
    ids: list[str] = []
    died: list[tuple[int, int | None]] = []
    waves = max(1, int(args.seconds / args.wave_seconds))
    per_wave = math.ceil(args.workflows / waves)
    faults = 0
    await fleet.start()
    started = time.monotonic()
    try:
        async with client.build() as host:
            next_wave, next_kill = started, started + rng.uniform(args.kill_min, args.kill_max)
            while time.monotonic() - started < args.seconds:
                now = time.monotonic()
                if now >= next_wave and len(ids) < args.workflows:
                    for _ in range(min(per_wave, args.workflows - len(ids))):
                        ids.append(await host.start_workflow("chaos-seq", 1, {}))
                    next_wave = now + args.wave_seconds
                if now >= next_kill:
                    faults += 1
                    if args.pause_every and faults % args.pause_every == 0:
                        await fleet.pause(rng.randrange(args.hosts), rng.uniform(3, 4))
                    else:
                        await fleet.kill(rng.randrange(args.hosts))
                    next_kill = time.monotonic() + rng.uniform(args.kill_min, args.kill_max)
                fleet.sample()
                died += fleet.died()
                if died:
                    break
                await trio.sleep(0.1)
            while len(ids) < args.workflows:  # a run shorter than its waves
                ids.append(await host.start_workflow("chaos-seq", 1, {}))
            left = ids
            deadline = time.monotonic() + args.drain
            while not died and time.monotonic() < deadline:
                left = await unfinished(host, left)
                fleet.sample()
                died += fleet.died()
                if not left:
                    break
                await trio.sleep(1.0)
            state = await final_state(host, ids)
    finally:
        await fleet.stop()
    elapsed = time.monotonic() - started
    runs = read_runs(fleet.log)
    verdict = judge(runs, state, fleet.kills, CHAOS_STEPS, PER_HOST, fleet.pauses)
    for pid, code in died:
        verdict.problems.append(f"host {pid} died by itself (exit {code})")
    print(f"store {args.store} -")
    print(f"cpus {os.cpu_count()} cpus")
    print(f"hosts {args.hosts} hosts")
    print(f"workflows {len(ids)} workflows")
    print(f"steps {verdict.steps} steps")
    print(f"kills {len(fleet.kills)} kills")
    print(f"reruns {verdict.reruns} steps")
    print(f"pauses {sum(map(len, fleet.pauses.values()))} pauses")
    print(f"inflight_at_kills {verdict.inflight_at_kills} steps")
    print(f"inflight_at_pauses {verdict.inflight_at_pauses} steps")
    print(f"max_inflight_per_kill {verdict.max_inflight_per_kill} steps")
    print(f"rerun_bound {len(fleet.kills) * PER_HOST} steps")
    print(f"committed_reruns {verdict.committed_reruns} steps")
    print(f"lost {verdict.lost} workflows")
    print(f"overlaps {verdict.overlaps} overlaps")
    fleet.report_hosts(verdict.problems, "host_error_lines")
    print(f"duration {elapsed:.1f} s")
    for slot, rss in sorted(fleet.rss_max.items()):
        print(f"rss_max_host_{slot + 1} {rss / MB:.1f} MB")
    return fleet.verdict(verdict.problems, "problems")


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="wfe-chaos-") as tmpdir:
        tmp = Path(tmpdir)
        with open_store(args.store, tmp) as store:
            return await campaign(args, store, tmp)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=STORES, default="sqlite")
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--workflows", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=180.0, help="of starts and kills")
    parser.add_argument("--kill-min", type=float, default=1.0, help="seconds between kills")
    parser.add_argument("--kill-max", type=float, default=3.0, help="seconds between kills")
    parser.add_argument("--wave-seconds", type=float, default=2.0)
    parser.add_argument("--drain", type=float, default=300.0, help="seconds to finish after")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--pause-every", type=int, default=0, help="every Nth fault is a SIGSTOP for 3-4 s"
    )
    args = parser.parse_args()
    if args.hosts < 1 or args.workflows < 1 or not 0 < args.kill_min <= args.kill_max:
        parser.error("--hosts and --workflows must be positive, 0 < --kill-min <= --kill-max")
    return trio.run(run, args)


if __name__ == "__main__":
    sys.exit(main())
