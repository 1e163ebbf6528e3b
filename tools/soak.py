"""Soak: mixed load for ``--minutes`` on three host processes with periodic kills, checking
that memory and the database stay bounded and that no workflow is lost.

    python tools/soak.py --store sqlite|postgres [--minutes 30] [--hosts 3] [--rate 5]
                         [--kill-every 20] [--sample-every 30] [--seed 1]
                         [--private-postgres]

Every second ``--rate`` workflows are started, cycling through sequences of five steps,
workflows waiting for an event (published 0-3 s later), short delays, steps failing
twice and then succeeding on retry, workflows whose retries run out (suspended, then
terminated by the soak), and sagas whose failing step is compensated. Every minute,
ended workflows older than two minutes are purged (``host.purge``). Every
``--kill-every`` seconds a random host other than the first is SIGKILLed and
restarted; the first host lives the whole run so that its memory shows growth.

Every ``--sample-every`` seconds a row of the series is printed (RSS of every host,
database size: SQLite file + WAL, or the schema's ``pg_total_relation_size``). Then
``name value unit`` lines (first/last/max of each, workflows, kills, lost) and
``ok``/``FAILED``. Checks: every started workflow is seen ending in its expected status
with its steps' results; no host dies by itself or prints a traceback; in the last
third of the run the long-lived host's RSS and the database size stay within 10 % (+4
MB for RSS, +2 MB for the database) of their maximum over the first two thirds. Exits
1 on a violation.

PostgreSQL reclaims the space of purged and updated rows by (auto)vacuum: on a server
with autovacuum off the database grows however much is purged. ``--private-postgres``
runs on a private cluster with the server's defaults (campaigns/private_pg.py) instead
of ``WFE_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).parent / "campaigns"))
from chaos_host import SOAK
from fleet import Fleet
from private_pg import private_postgres
from stores import PG_URL, STORES, Store, open_store, rss_bytes

from wfe.core import WorkflowNotFoundError, WorkflowStatus
from wfe.host import WorkflowHost

MIX = ("seq", "wait", "delay", "retry", "saga", "seq", "wait", "retry", "fail", "seq")
# Bounded: the last third's maximum within 10 % (plus a little, for noise) of the
# maximum before it. Steady growth from zero fails this (it would reach 1.5x), a
# plateau passes.
GROWTH = 0.10
RSS_SLACK = 4 * 1024 * 1024
DB_SLACK = 2 * 1024 * 1024
PURGE_AGE = timedelta(minutes=2)
MB = 1024 * 1024


def expected(kind: str, wid: str, data: dict[str, Any]) -> str | None:
    """What is wrong with a finished workflow's data, or None."""
    keys = {
        "seq": ("s1", "s2", "s3", "s4", "s5"),
        "wait": ("s1", "s2"),
        "delay": ("s1", "s2"),
        "retry": ("s1", "ok", "s2"),
        "fail": ("s1",),
        "saga": ("s1", "a", "undo_b", "undo_a", "undo_saga", "after"),
    }[kind]
    missing = [k for k in keys if not data.get(k)]
    if missing:
        return f"{kind} {wid} lacks {', '.join(missing)}"
    if kind == "wait" and data.get("event") != {"for": wid}:
        return f"{kind} {wid} got event {data.get('event')!r}"
    if kind == "saga" and "never" in data:
        return f"{kind} {wid} ran the step after the failure"
    return None


@dataclass
class Ledger:
    """Every started workflow until it is seen ended in its expected status."""

    outstanding: dict[str, str] = field(default_factory=dict)  # id -> kind
    terminating: set[str] = field(default_factory=set)
    events: list[tuple[float, str]] = field(default_factory=list)  # (due, id)
    started: int = 0
    finished: int = 0
    purged: int = 0
    problems: list[str] = field(default_factory=list)

    async def start(self, host: WorkflowHost, kind: str, rng: random.Random) -> None:
        wid = await host.start_workflow(f"soak-{kind}", 1, {})
        self.outstanding[wid] = kind
        self.started += 1
        if kind == "wait":
            self.events.append((time.monotonic() + rng.uniform(0, 3), wid))

    async def publish_due(self, host: WorkflowHost) -> None:
        now = time.monotonic()
        due = [e for e in self.events if e[0] <= now]
        self.events = [e for e in self.events if e[0] > now]
        for _, wid in due:
            await host.publish_event("soak-go", wid, {"for": wid})

    async def check(self, host: WorkflowHost) -> None:
        for wid, kind in list(self.outstanding.items()):
            try:
                instance = await host.get_workflow(wid)
            except WorkflowNotFoundError:
                self.problems.append(f"{kind} {wid} vanished before it was seen ending")
                del self.outstanding[wid]
                continue
            status = instance.status
            if status is WorkflowStatus.RUNNABLE:
                continue
            want = WorkflowStatus.SUSPENDED if kind == "fail" else WorkflowStatus.COMPLETE
            if wid in self.terminating:
                want = WorkflowStatus.TERMINATED
            if status is not want:
                self.problems.append(f"{kind} {wid} ended {status.value}, not {want.value}")
            elif status is WorkflowStatus.SUSPENDED:
                problem = expected(kind, wid, instance.data)
                if problem:
                    self.problems.append(problem)
                # Ended by hand so that the purge removes it like the others.
                await host.terminate_workflow(wid)
                self.terminating.add(wid)
                continue
            elif status is WorkflowStatus.COMPLETE:
                problem = expected(kind, wid, instance.data)
                if problem:
                    self.problems.append(problem)
            del self.outstanding[wid]
            self.terminating.discard(wid)
            self.finished += 1


@dataclass
class Series:
    rows: list[tuple[float, list[int], int]] = field(default_factory=list)  # t, rss, db

    def add(self, t: float, rss: list[int], db: int) -> None:
        self.rows.append((t, rss, db))
        hosts = " ".join(f"{r / MB:.1f}" for r in rss)
        print(f"# t={t:.0f}s rss_mb=[{hosts}] db_mb={db / MB:.2f}", flush=True)

    def bounded(self, name: str, values: list[int], slack: int) -> str | None:
        """None when the last third's maximum is within GROWTH (+ ``slack`` bytes) of the
        maximum before it."""
        third = len(values) // 3
        if third < 1:
            return None
        before, last = max(values[: len(values) - third]), max(values[-third:])
        if last > before * (1 + GROWTH) + slack:
            return (
                f"{name} grew to {last / MB:.1f} MB in the last third"
                f" (earlier max {before / MB:.1f} MB)"
            )
        return None


def autovacuum(store: Store) -> str:
    if store.kind != "postgres":
        return "-"
    import psycopg

    with psycopg.connect(store.server) as conn:
        row = conn.execute("SHOW autovacuum").fetchone()
    return str(row[0]) if row else "?"


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    ledger, series = Ledger(), Series()
    load_seconds = args.minutes * 60
    with ExitStack() as stack:
        tmpdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="wfe-soak-"))
        pg_url = PG_URL
        if args.private_postgres and args.store == "postgres":
            pg_url = stack.enter_context(private_postgres())
        store = stack.enter_context(open_store(args.store, Path(tmpdir), pg_url))
        print(f"# store {args.store}, autovacuum {autovacuum(store)}", flush=True)
        fleet = Fleet(store, args.hosts, Path(tmpdir))
        client = store.builder().run_workflows(False)
        for definition in SOAK:
            client = client.register(definition)
        await fleet.start()
        started = time.monotonic()
        try:
            async with client.build() as host:
                next_kill = started + args.kill_every
                next_purge = started + 60
                next_sample = started
                next_check = started
                tick = 0
                while True:
                    now = time.monotonic()
                    loading = now - started < load_seconds
                    if not loading and not ledger.outstanding:
                        break
                    if now - started > load_seconds + 300:
                        break  # the drain's deadline: what is left is lost
                    if loading:
                        for _ in range(args.rate):
                            await ledger.start(host, MIX[tick % len(MIX)], rng)
                            tick += 1
                    await ledger.publish_due(host)
                    if now >= next_check:
                        await ledger.check(host)
                        next_check = now + 2
                    if loading and now >= next_kill and args.hosts > 1:
                        await fleet.kill(rng.randrange(1, args.hosts))
                        next_kill = now + args.kill_every
                    if now >= next_purge:
                        report = await host.purge(PURGE_AGE)
                        ledger.purged += report.workflows
                        next_purge = now + 60
                    if loading and now >= next_sample:
                        series.add(now - started, fleet.sample(), store.size_bytes())
                        next_sample = now + args.sample_every
                    for pid, code in fleet.died():
                        ledger.problems.append(f"host {pid} died by itself (exit {code})")
                        return report_and_exit(args, ledger, series, fleet, started)
                    await trio.sleep(max(0.0, 1.0 - (time.monotonic() - now)))
                await ledger.check(host)
                series.add(time.monotonic() - started, fleet.sample(), store.size_bytes())
        finally:
            await fleet.stop()
        for wid, kind in ledger.outstanding.items():
            ledger.problems.append(f"{kind} {wid} never ended (lost)")
        return report_and_exit(args, ledger, series, fleet, started)


def report_and_exit(
    args: argparse.Namespace, ledger: Ledger, series: Series, fleet: Fleet, started: float
) -> int:
    rows = series.rows[:-1] if len(series.rows) > 1 else series.rows  # the load phase
    sentinel = [rss[0] for _, rss, _ in rows]
    db = [size for _, _, size in rows]
    for problem in (
        series.bounded("long-lived host RSS", sentinel, RSS_SLACK),
        series.bounded("database size", db, DB_SLACK),
    ):
        if problem:
            ledger.problems.append(problem)
    lost = sum("lost" in p or "vanished" in p for p in ledger.problems)
    print(f"soak_store {args.store} -")
    print(f"soak_cpus {os.cpu_count()} cpus")
    print(f"soak_minutes {args.minutes} min")
    print(f"soak_duration {time.monotonic() - started:.0f} s")
    print(f"soak_workflows {ledger.started} workflows")
    print(f"soak_finished {ledger.finished} workflows")
    print(f"soak_purged {ledger.purged} workflows")
    print(f"soak_kills {len(fleet.kills)} kills")
    fleet.report_hosts(ledger.problems, "soak_host_error_lines")
    print(f"soak_lost {lost} workflows")
    if sentinel:
        print(f"soak_rss_long_lived_first {sentinel[0] / MB:.1f} MB")
        print(f"soak_rss_long_lived_last {sentinel[-1] / MB:.1f} MB")
        print(f"soak_rss_long_lived_max {max(sentinel) / MB:.1f} MB")
    print(f"soak_rss_host_max {max(fleet.rss_max.values(), default=0) / MB:.1f} MB")
    print(f"soak_rss_driver {rss_bytes(os.getpid()) / MB:.1f} MB")
    if db:
        print(f"soak_db_first {db[0] / MB:.2f} MB")
        print(f"soak_db_last {db[-1] / MB:.2f} MB")
        print(f"soak_db_max {max(db) / MB:.2f} MB")
    return fleet.verdict(ledger.problems, "soak_problems")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=STORES, required=True)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--rate", type=int, default=5, help="workflows started per second")
    parser.add_argument("--kill-every", type=float, default=20.0, help="seconds between kills")
    parser.add_argument("--sample-every", type=float, default=30.0, help="seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--private-postgres", action="store_true", help="on a private cluster (autovacuum on)"
    )
    return trio.run(run, parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
