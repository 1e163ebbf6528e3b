"""SQLite transactions per workflow, through the real host on a SQLite file store.

Prints ``metric value unit`` lines:

- ``transactions_per_10_step_workflow_write`` / ``_read``: one sequential 10-step
  workflow, from ``start_workflow`` until the host is idle again (queue takes and acks,
  leases, checkpoints, events, the search index: everything it caused);
- ``transactions_per_event_workflow_write`` / ``_read``: one workflow that waits for an
  event which is then published, start to finish;
- ``transactions_per_event_write`` / ``_read``: the part of that caused by publishing
  the event and delivering it (until the workflow has completed and the host is idle).

- ``writes_per_10_step_workflow``, ``writes_per_event_workflow``, ``writes_per_event``:
  the writes asked of the store for the same (``Database.write`` and ``.post`` calls).
  The SQLite store commits every write waiting in its writer thread in one transaction
  (group commit), so the write transactions are at most this, and fewer when writes
  overlap (a lease release and the next queue take, say).

Each figure is the median of ``--runs`` workflows run one after another. With
``--breakdown`` it also prints, per figure, which provider method made the reads
(transactions) and the writes (``breakdown.<figure>.<write|read>.<Class.method> N tx``).

How it counts: a trace callback on every sqlite3 connection opened while the bench runs
counts ``BEGIN IMMEDIATE`` (a write transaction) and plain ``BEGIN`` (a read snapshot)
statements: that needs nothing from the library. The breakdown, and knowing that no
transaction is still running in a worker thread, reach into a private class of
wfe-sqlite, which only a bench may do: every wfe.sqlite provider runs each write through
one ``wfe.sqlite._database.Database.write`` or ``.post`` call and each read transaction
through one ``.read`` call, so the bench wraps those three methods; a warning on stderr
says when the counts disagree (a transaction begun some other way). Schema creation at
start-up is not counted.

Background polling would add transactions per second of wall time rather than per
workflow, so the store's queue poll and the host's store poll are set to an hour
(in-process enqueues still wake the consumers at once). The SQLite store's search index
is on, as by default. A measurement ends when the host is quiescent: every trio task
blocked and no transaction in a worker thread, so nothing more can happen without a
timer. The figures are deterministic run to run.

    python tools/bench/transactions.py [--runs N] [--breakdown]
"""

from __future__ import annotations

import argparse
import collections
import sqlite3
import statistics
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import trio
import trio.lowlevel
import trio.testing

from wfe.core import StepExecutionContext, WorkflowBuilder, WorkflowDefinition, WorkflowStatus
from wfe.host import WorkflowHost, WorkflowHostBuilder
from wfe.sqlite._database import Database

_IDLE_POLL = timedelta(hours=1)
_QUIET = 0.005  # seconds every task must stay blocked to count as quiescent
_SETTLE_TIMEOUT = 30.0


class TransactionCounter:
    """Counts transactions two ways: ``BEGIN`` statements seen by a trace callback on every
    sqlite3 connection (the figures), and ``Database.write`` / ``Database.read`` calls by
    the provider method making them (the breakdown, and how many run in a thread now)."""

    def __init__(self) -> None:
        self.begins: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()
        self.in_flight = 0
        # Trace callbacks run in the providers' worker threads.
        self._lock = threading.Lock()

    def snapshot(self) -> Counts:
        with self._lock:
            return Counts(begins=collections.Counter(self.begins), calls=self.calls.copy())

    def _trace(self, statement: str) -> None:
        words = statement.split(None, 2)
        if words and words[0].upper() == "BEGIN":
            # BEGIN IMMEDIATE takes the write lock at once; a plain (deferred) BEGIN is how
            # wfe-sqlite opens its read snapshots.
            kind = "write" if len(words) > 1 and words[1].upper() == "IMMEDIATE" else "read"
            with self._lock:
                self.begins[kind] += 1

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Trace every sqlite3 connection opened from now on, and wrap the two
        ``Database`` methods on the class (for every Database in the process)."""
        original_connect = sqlite3.dbapi2.connect
        original_write, original_read = Database.write, Database.read
        original_post = Database.post

        def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            conn: sqlite3.Connection = original_connect(*args, **kwargs)
            conn.set_trace_callback(self._trace)
            return conn

        def wrap(kind: str, original: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
            async def counted(db: Database, *args: Any, **kwargs: Any) -> Any:
                # The caller's frame is the provider method (a coroutine) opening the
                # transaction: name it for --breakdown.
                caller = sys._getframe(1).f_code.co_qualname
                with self._lock:
                    self.calls[kind, caller] += 1
                    self.in_flight += 1
                try:
                    return await original(db, *args, **kwargs)
                finally:
                    with self._lock:
                        self.in_flight -= 1

            return counted

        def post(db: Database, fn: Callable[..., Any], **kwargs: Any) -> None:
            # Posted writes are not awaited: count one in flight until the writer thread
            # has run it (its commit follows at once, before anything can wake).
            caller = sys._getframe(1).f_code.co_qualname
            with self._lock:
                self.calls["write", caller] += 1
                self.in_flight += 1

            def run(conn: sqlite3.Connection) -> Any:
                try:
                    return fn(conn)
                finally:
                    with self._lock:
                        self.in_flight -= 1

            original_post(db, run, **kwargs)

        # SQLAlchemy's pysqlite dialect connects through ``sqlite3.dbapi2.connect``.
        sqlite3.dbapi2.connect = sqlite3.connect = connect  # type: ignore[assignment]
        Database.write = wrap("write", original_write)  # type: ignore[method-assign]
        Database.read = wrap("read", original_read)  # type: ignore[method-assign]
        Database.post = post  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            sqlite3.dbapi2.connect = sqlite3.connect = original_connect
            Database.write = original_write  # type: ignore[method-assign]
            Database.read = original_read  # type: ignore[method-assign]
            Database.post = original_post  # type: ignore[method-assign]


@attrs.frozen
class Counts:
    """Transactions by kind (from ``BEGIN``) and by (kind, provider method)."""

    begins: collections.Counter[str]
    calls: collections.Counter[tuple[str, str]]

    def __sub__(self, before: Counts) -> Counts:
        return Counts(begins=self.begins - before.begins, calls=self.calls - before.calls)

    def __add__(self, other: Counts) -> Counts:
        return Counts(begins=self.begins + other.begins, calls=self.calls + other.calls)

    def writes(self) -> int:
        """Writes asked of the store (``Database.write`` and ``.post`` calls)."""
        return sum(n for (k, _), n in self.calls.items() if k == "write")

    def untracked(self) -> dict[str, int]:
        """Transactions begun outside ``Database.write`` / ``.post`` / ``.read``, by kind.

        Reads are one transaction each. Writes are group-committed: one transaction holds
        one or more writes, so there can be fewer write transactions than writes, never
        more."""
        out = {}
        reads = sum(n for (k, _), n in self.calls.items() if k == "read")
        if self.begins["read"] != reads:
            out["read"] = self.begins["read"] - reads
        if self.begins["write"] > self.writes():
            out["write"] = self.begins["write"] - self.writes()
        return out


async def wait_quiescent(counter: TransactionCounter) -> None:
    """Until every other task is blocked and no transaction is in a worker thread."""
    with trio.fail_after(_SETTLE_TIMEOUT):
        while True:
            await trio.testing.wait_all_tasks_blocked(_QUIET)
            if counter.in_flight == 0:
                return
            await trio.lowlevel.checkpoint()


def noop(ctx: StepExecutionContext) -> None:
    return None


def ten_steps() -> WorkflowDefinition:
    builder = WorkflowBuilder(dict).start_with(noop)
    for _ in range(9):
        builder = builder.then(noop)
    return builder.build("bench-ten", 1)


def waits_for_event() -> WorkflowDefinition:
    return (
        WorkflowBuilder(dict)
        .start_with(noop)
        .wait_for("bench-ev", lambda data, ctx: data["key"])
        .then(noop)
        .build("bench-event", 1)
    )


async def measure(
    host: WorkflowHost,
    counter: TransactionCounter,
    action: Callable[[], Awaitable[object]],
) -> Counts:
    """Transactions opened from ``action`` until the host is quiescent again."""
    await wait_quiescent(counter)
    before = counter.snapshot()
    await action()
    await wait_quiescent(counter)
    return counter.snapshot() - before


async def expect_status(host: WorkflowHost, wid: str, status: WorkflowStatus) -> None:
    found = (await host.get_workflow(wid)).status
    if found is not status:
        raise SystemExit(f"workflow {wid} is {found.value} when quiescent, expected {status.value}")


async def run_ten_steps(host: WorkflowHost, counter: TransactionCounter) -> Counts:
    started: list[str] = []

    async def start() -> None:
        started.append(await host.start_workflow("bench-ten", 1, {}))

    counts = await measure(host, counter, start)
    await expect_status(host, started[0], WorkflowStatus.COMPLETE)
    return counts


async def run_event(
    host: WorkflowHost, counter: TransactionCounter, n: int
) -> tuple[Counts, Counts]:
    key = f"key-{n}"
    started: list[str] = []

    async def start() -> None:
        started.append(await host.start_workflow("bench-event", 1, {"key": key}))

    waiting = await measure(host, counter, start)
    await expect_status(host, started[0], WorkflowStatus.RUNNABLE)
    event = await measure(host, counter, lambda: host.publish_event("bench-ev", key, n))
    await expect_status(host, started[0], WorkflowStatus.COMPLETE)
    return waiting + event, event


def report(name: str, runs: list[Counts], breakdown: bool) -> None:
    for kind in ("write", "read"):
        totals = [counts.begins[kind] for counts in runs]
        print(f"{name}_{kind} {statistics.median(totals):g} tx", flush=True)
    writes = [counts.writes() for counts in runs]
    print(f"{name.replace('transactions', 'writes')} {statistics.median(writes):g} tx")
    for counts in runs:
        for kind, n in counts.untracked().items():
            print(
                f"warning: {name}: {n} {kind} transaction(s) began outside Database.{kind}; "
                "the breakdown misses them",
                file=sys.stderr,
            )
    if breakdown:
        # The run whose total is the median, so the parts add up to the figures above
        # (reads: the read transactions; writes: the writes, not their transactions).
        ordered = sorted(runs, key=lambda c: sum(c.calls.values()))
        for (kind, caller), n in sorted(ordered[len(ordered) // 2].calls.items()):
            print(f"breakdown.{name}.{kind}.{caller} {n} tx")


async def main(runs: int, breakdown: bool) -> None:
    counter = TransactionCounter()
    with tempfile.TemporaryDirectory() as tmp, counter.installed():
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        builder = (
            WorkflowHostBuilder()
            .persistence(url, poll_interval=_IDLE_POLL.total_seconds())
            .poll_interval(_IDLE_POLL)
            .register(ten_steps())
            .register(waits_for_event())
        )
        async with builder.build() as host:
            ten = [await run_ten_steps(host, counter) for _ in range(runs)]
            whole: list[Counts] = []
            per_event: list[Counts] = []
            for n in range(runs):
                w, e = await run_event(host, counter, n)
                whole.append(w)
                per_event.append(e)
    print("store sqlite -")
    report("transactions_per_10_step_workflow", ten, breakdown)
    report("transactions_per_event_workflow", whole, breakdown)
    report("transactions_per_event", per_event, breakdown)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="workflows per figure (median)")
    parser.add_argument("--breakdown", action="store_true", help="count by provider method")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    trio.run(main, args.runs, args.breakdown)
