"""Search and retention figures on a store with many instances.

Fills a store with ``--count`` ended instances (default 100,000; each indexed), then
prints ``metric value unit`` lines (``#`` lines are context):

- ``search_<query>_ms``: median time of one ``host.search`` page of 50 for several
  queries (everything, a word every instance has, a rare word, a status filter, a data
  filter, a page 50,000 deep);
- ``list_process_ms``: a whole ``wfe list --search`` process (start-up included);
- ``purge_s`` / ``purge_per_s``: ``host.purge`` of every instance;
- ``soak_db_mb_first`` / ``soak_db_mb_last`` / ``soak_growth``: the database size after
  the first and the last of ``--rounds`` rounds of starting ``--per-round`` real
  workflows, running them to the end and purging them.

    python tools/bench/search_purge.py [--store URL] [--count N] [--rounds R]

Without ``--store``, a fresh SQLite file in a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio

from wfe.core import StepExecutionContext, WorkflowBuilder, WorkflowInstance, WorkflowStatus
from wfe.core.discovery import load_provider
from wfe.core.protocols import DataFilter, SearchFilters
from wfe.core.testing import make_instance
from wfe.host import WorkflowHost, WorkflowHostBuilder

NOW = datetime.now(UTC)
WORDS = ["ship", "bill", "pack", "check", "refund", "notify", "audit", "retry"]


def instance(i: int) -> WorkflowInstance:
    ended = NOW - timedelta(days=60, minutes=i)
    return make_instance(
        definition_id=f"bench{i % 10}",
        reference=f"order-{i}",
        description=f"{WORDS[i % len(WORDS)]} parcel {i % 97}",
        data={"customer": f"c{i % 1000}", "amount": i % 500, "rush": i % 7 == 0},
        status=WorkflowStatus.COMPLETE if i % 10 else WorkflowStatus.TERMINATED,
        create_time=ended - timedelta(minutes=5),
        complete_time=ended,
    )


async def fill(
    url: str, count: int, make: Callable[[int], WorkflowInstance] | None = None
) -> float:
    """Create and index ``count`` instances (``make(i)``, by default :func:`instance`);
    returns seconds taken."""
    make = instance if make is None else make
    started = time.perf_counter()
    store: Any = load_provider("wfe.persistence", url)
    async with store:
        await store.ensure_store_exists()
        async with store.default_search() as index:
            batch: list[WorkflowInstance] = []
            for i in range(count):
                made = make(i)
                await store.create_workflow(made)
                batch.append(made)
                if len(batch) == 1000:
                    await _index(index, batch)
                    batch = []
            await _index(index, batch)
    return time.perf_counter() - started


async def _index(index: Any, batch: list[WorkflowInstance]) -> None:
    if hasattr(index, "index_many"):
        await index.index_many(batch)
    else:
        for made in batch:
            await index.index(made)


async def median_ms(host: WorkflowHost, terms: str, filters: SearchFilters, skip: int) -> float:
    times = []
    for _ in range(15):
        t = time.perf_counter()
        await host.search(terms, filters, skip, 50)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def noop(ctx: StepExecutionContext) -> None:
    return None


def three_steps() -> Any:
    return WorkflowBuilder(dict).start_with(noop).then(noop).then(noop).build("soak", 1)


def db_mb(url: str) -> float | None:
    """The store's size on disk: the SQLite file (with its WAL), or the tables and
    indexes of the PostgreSQL schema."""
    if url.startswith(("postgresql://", "postgres://")):
        from urllib.parse import parse_qs, urlsplit

        import psycopg

        parts = urlsplit(url)
        schema = parse_qs(parts.query).get("schema", ["wfe"])[0]
        with psycopg.connect(
            parts._replace(query="").geturl().replace("postgres://", "postgresql://")
        ) as conn:
            row = conn.execute(
                "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind IN ('r', 'm')",
                (schema,),
            ).fetchone()
        return float(row[0]) / 1e6 if row else None
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url[len("sqlite:///") :])
    total = sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())
    return total / 1e6


async def soak(url: str, rounds: int, per_round: int) -> list[float | None]:
    sizes = []
    builder = WorkflowHostBuilder().persistence(url).register(three_steps())
    async with builder.build() as host:
        for _ in range(rounds):
            ids = [await host.start_workflow("soak", 1) for _ in range(per_round)]
            for wid in ids:
                await host.wait_for_workflow(wid, timeout=120)
            await host.purge(timedelta(0))
            sizes.append(db_mb(url))
    return sizes


async def main(args: argparse.Namespace) -> None:
    url = args.store
    print(f"# store {url.split('@')[-1]}, {args.count} instances")
    print(f"fill_s {await fill(url, args.count):.1f} s")
    print(f"# database {db_mb(url)} MB after filling")
    async with WorkflowHostBuilder().persistence(url).run_workflows(False).build() as host:
        for name, terms, filters, skip in (
            ("all", "", SearchFilters(), 0),
            ("common_word", "parcel", SearchFilters(), 0),
            ("rare_word", "order-77777", SearchFilters(), 0),
            ("status", "", SearchFilters(status=WorkflowStatus.TERMINATED), 0),
            ("data", "", SearchFilters(data=[DataFilter("customer", "c42")]), 0),
            ("words_and_filters", "ship", SearchFilters(definition_id="bench0"), 0),
            ("deep_page", "", SearchFilters(), args.count // 2),
        ):
            print(f"search_{name}_ms {await median_ms(host, terms, filters, skip):.1f} ms")
    env = {**os.environ, "NO_COLOR": "1"}
    cmd = [sys.executable, "-m", "wfe.host._cli", "list", "--search", "refund", "--store", url]
    times = []
    for _ in range(5):
        t = time.perf_counter()
        await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, env=env)
        times.append((time.perf_counter() - t) * 1000)
    print(f"list_process_ms {statistics.median(times):.0f} ms")
    async with WorkflowHostBuilder().persistence(url).run_workflows(False).build() as host:
        t = time.perf_counter()
        report = await host.purge(timedelta(days=1), batch=1000)
        took = time.perf_counter() - t
    print(f"# purged {report.workflows} workflows")
    print(f"purge_s {took:.1f} s")
    print(f"purge_per_s {report.workflows / took:.0f} workflows/s")
    sizes = await soak(url, args.rounds, args.per_round)
    if sizes[0] is not None and sizes[-1] is not None:
        print(f"soak_db_mb_first {sizes[0]:.1f} MB")
        print(f"soak_db_mb_last {sizes[-1]:.1f} MB")
        print(f"soak_growth {sizes[-1] / sizes[0]:.2f} ratio")
        print("# sizes by round: " + ", ".join(f"{s:.1f}" for s in sizes if s is not None))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="a persistence URL (default: a fresh SQLite file)")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=500)
    parsed = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if parsed.store is None:
            parsed.store = f"sqlite:///{Path(tmp) / 'bench.db'}"
        trio.run(main, parsed)
