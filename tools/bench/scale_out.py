"""Scale-out figures: 1, 2 and 3 host processes on one store with Valkey locks and queues.

    python tools/bench/scale_out.py [--store sqlite|URL] [--valkey URL] [--hosts 1,2,3]
                                    [--workflows 300] [--steps 10] [--io-concurrency 4]

For each host count, in two scenarios — ``io`` (every step awaits 20 ms, as a step
calling another service would, and each host runs at most ``--io-concurrency`` workflows
at once, so one host is bound by waiting, not by CPU) and ``trivial`` (steps that do
nothing, 16 workflows at once per host: bound by CPU and the store) — host processes
are started on the store, a client in this process starts the workflows and waits for
each (woken through Valkey pub/sub), and the run is timed from the first start to the
last completion. ``--store sqlite`` (the default) uses a fresh SQLite file per run; a
URL (``postgresql://...``) is used as it is, each run's workflows counted alone.

Prints ``name value unit`` lines: steps per second per scenario and host count, the
speed-up over one host, the cross-host wake-up latency (a workflow completing on a host
process to ``wait_for_workflow`` returning here), Valkey lock and queue cycle costs from
this process, and the connections the hosts held.

    python tools/bench/scale_out.py host STORE VALKEY PREFIX SCENARIO STEPS CONCURRENCY UP_FILE

is one host process (used by the above).
"""

# The "up" files are written by other processes: polling them is the point.
# ruff: noqa: ASYNC110, ASYNC240
from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio
import valkey

from wfe.core import StepExecutionContext, WorkflowBuilder
from wfe.core.protocols import QueueKind
from wfe.host import WorkflowHostBuilder
from wfe.valkey import ValkeyLockProvider, ValkeyQueueProvider

SCENARIOS = ("io", "trivial")


def definition(scenario: str, steps: int) -> Any:
    async def io(ctx: StepExecutionContext) -> None:
        await trio.sleep(0.02)

    def trivial(ctx: StepExecutionContext) -> None:
        return None

    body = io if scenario == "io" else trivial
    chain = WorkflowBuilder(dict).start_with(body)
    for _ in range(steps - 1):
        chain = chain.then(body)
    return chain.build(f"scale-{scenario}", 1)


def builder(
    store: str, server: str, prefix: str, scenario: str, steps: int, concurrency: int
) -> WorkflowHostBuilder:
    return (
        WorkflowHostBuilder()
        .persistence(store)
        .locks(ValkeyLockProvider(server, prefix=prefix))
        .queues(ValkeyQueueProvider(server, prefix=prefix))
        .poll_interval(timedelta(seconds=2))
        .max_concurrent_workflows(concurrency)
        .register(definition(scenario, steps))
    )


async def serve_host(
    store: str, server: str, prefix: str, scenario: str, steps: int, concurrency: int, up: str
) -> None:
    async with builder(store, server, prefix, scenario, steps, concurrency).build():
        Path(up).write_text("up\n")
        await trio.sleep_forever()


async def run_once(
    store: str,
    server: str,
    n_hosts: int,
    scenario: str,
    workflows: int,
    steps: int,
    concurrency: int,
    tmp: Path,
) -> tuple[float, list[float], int]:
    """Seconds from the first start to the last completion, wake-up latencies (s), and
    the connections the hosts held at the end."""
    prefix = f"wfe-bench:{secrets.token_hex(4)}:"
    ups = [tmp / f"up-{prefix.split(':')[1]}-{i}" for i in range(n_hosts)]
    script = str(Path(__file__).resolve())
    host_command = [sys.executable, script, "host", store, server, prefix, scenario]
    host_command += [str(steps), str(concurrency)]
    procs = [await trio.lowlevel.open_process([*host_command, str(u)]) for u in ups]
    try:
        with trio.fail_after(120):
            while not all(u.exists() for u in ups):
                await trio.sleep(0.02)
        client = builder(store, server, prefix, scenario, steps, concurrency)
        client = client.run_workflows(False).build()
        async with client as host:
            wakeups: list[float] = []
            # A few single workflows first: completion on a host -> this wait returns.
            for _ in range(20):
                wid = await host.start_workflow(f"scale-{scenario}", 1, {})
                done = await host.wait_for_workflow(wid, timeout=120)
                assert done.complete_time is not None
                wakeups.append((datetime.now(UTC) - done.complete_time).total_seconds())
            start = time.perf_counter()
            ids = [await host.start_workflow(f"scale-{scenario}", 1, {}) for _ in range(workflows)]
            for wid in ids:
                await host.wait_for_workflow(wid, timeout=600)
            elapsed = time.perf_counter() - start
        connections = count_connections(server, prefix)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            with trio.move_on_after(10) as scope:
                await proc.wait()
            if scope.cancelled_caught:
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
        clean(server, prefix)
    return elapsed, wakeups, connections


def count_connections(server: str, prefix: str) -> int:
    client = valkey.Valkey.from_url(server)
    try:
        return sum(1 for c in client.client_list() if str(c.get("name", "")).startswith(prefix))
    finally:
        client.close()


def clean(server: str, prefix: str) -> None:
    client = valkey.Valkey.from_url(server)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


async def provider_cycles(server: str) -> None:
    """Lock and queue costs through the providers, from one trio task."""
    prefix = f"wfe-bench:{secrets.token_hex(4)}:"
    n = 500
    try:
        async with ValkeyLockProvider(server, prefix=prefix) as locks:
            start = time.perf_counter()
            for _ in range(n):
                lease = await locks.acquire("bench", timedelta(seconds=30))
                assert lease is not None
                await locks.release(lease)
            lock_us = (time.perf_counter() - start) / n * 1e6
        async with ValkeyQueueProvider(server, prefix=prefix) as queues:
            start = time.perf_counter()
            for i in range(n):
                await queues.enqueue(QueueKind.WORKFLOW, f"id-{i}")
                item = await queues.dequeue(QueueKind.WORKFLOW, 1.0)
                assert item is not None
                await queues.ack(item)
            queue_us = (time.perf_counter() - start) / n * 1e6
    finally:
        clean(server, prefix)
    print(f"valkey_lock_cycle {lock_us:.0f} us")
    print(f"valkey_queue_cycle {queue_us:.0f} us")


async def main(args: argparse.Namespace) -> None:
    counts = [int(x) for x in args.hosts.split(",")]
    print(f"store {args.store.split(':')[0]} -")
    print(f"cpus {os.cpu_count()} -")
    print(f"workflows_per_run {args.workflows} workflows")
    print(f"steps_per_workflow {args.steps} steps")
    print(f"io_concurrency_per_host {args.io_concurrency} workflows")
    await provider_cycles(args.valkey)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for scenario in SCENARIOS:
            rates: dict[int, float] = {}
            for n in counts:
                store = args.store
                if store == "sqlite":
                    store = f"sqlite:///{tmp / f'{scenario}-{n}.db'}"
                concurrency = args.io_concurrency if scenario == "io" else 16
                elapsed, wakeups, connections = await run_once(
                    store, args.valkey, n, scenario, args.workflows, args.steps, concurrency, tmp
                )
                rates[n] = args.workflows * args.steps / elapsed
                name = f"{scenario}_hosts_{n}"
                print(f"{name}_steps_per_second {rates[n]:.0f} steps/s")
                print(f"{name}_workflows_per_second {args.workflows / elapsed:.0f} workflows/s")
                print(f"{name}_connections {connections} connections")
                wake = sorted(wakeups)
                print(f"{name}_wakeup_p50 {statistics.median(wake) * 1000:.1f} ms")
                print(f"{name}_wakeup_p90 {wake[int(len(wake) * 0.9)] * 1000:.1f} ms")
            if 1 in rates:
                for n in counts:
                    if n != 1:
                        print(f"{scenario}_hosts_{n}_speedup {rates[n] / rates[1]:.2f} x")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "host":
        store, server, prefix, scenario, steps, concurrency, up = sys.argv[2:9]
        trio.run(serve_host, store, server, prefix, scenario, int(steps), int(concurrency), up)
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default="sqlite", help="sqlite (a fresh file) or a URL")
    parser.add_argument("--valkey", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--hosts", default="1,2,3", help="host counts, comma-separated")
    parser.add_argument("--workflows", type=int, default=300)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument(
        "--io-concurrency",
        type=int,
        default=4,
        help="workflows one host runs at once in the io scenario (its I/O-bound limit)",
    )
    trio.run(main, parser.parse_args())
