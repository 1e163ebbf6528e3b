"""wfe's speed on a store, shape by shape, through the public API only.

Prints ``name value unit`` lines (``#`` lines are context):

- ``seq``: 200 ten-step workflows one after another, start to COMPLETE:
  ``seq_workflows_per_s``, ``seq_latency_p50``, ``seq_latency_p99`` (ms);
- ``conc``: the same 200 started at once (back to back, none awaited before the
  next start; each awaited by its own task), each timed from its own
  ``start_workflow`` call to its completion: ``conc_workflows_per_s``,
  ``conc_latency_p50``, ``conc_latency_p99`` (ms);
- ``long``: one workflow of 1,000 steps: ``long_steps_per_s``, ``long_step_overhead``
  (µs per step);
- ``event``: 100 workflows parked in ``wait_for``, one event each, sent one after
  another while every workflow is awaited with ``host.wait_for_workflow``:
  ``event_send_per_s``, ``event_send_to_done_latency_p50`` / ``_p99`` (ms);
- ``history``: one ``while_do`` loop of 20,000 iterations; ``history_ratio`` is the
  time of the last 1,000 iterations over the first 1,000 (1.0: flat);
- ``idle``: 10,000 workflows started (50 callers at once) and parked in ``wait_for``:
  ``idle_start_per_s`` (until the last is parked), ``idle_rss_mb`` (this process's
  resident memory with all of them waiting);
- ``yaml``: a 20-step YAML pipeline of shell steps against the same 20 commands run
  directly (the same way the shell step starts them, one after another); ``yaml`` is
  the engine's overhead per step in ms (median of interleaved pairs).

Every step is a real durable checkpoint, as users get it: the host's defaults, the
store's defaults (SQLite: WAL, ``synchronous=NORMAL``).

    python tools/bench/bench.py [--store URL] [--shapes seq,conc,long,event,history,idle,yaml]

``--store`` takes any persistence URL. Without it each shape gets a fresh SQLite file in
a temporary directory; ``sqlite`` alone means the same; any other URL is used as given
(each shape's workflows have their own ids, so a shared server store works too).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from wfe.core import (
    PointerStatus,
    StepExecutionContext,
    WorkflowBuilder,
    WorkflowDefinition,
    WorkflowStatus,
)
from wfe.host import WorkflowHost, WorkflowHostBuilder

SHAPES = ("seq", "conc", "long", "event", "history", "idle", "yaml")
_TIMEOUT = 600.0


def _noop(ctx: StepExecutionContext) -> None:
    return None


def _chain(name: str, steps: int) -> WorkflowDefinition:
    builder = WorkflowBuilder(dict).start_with(_noop)
    for _ in range(steps - 1):
        builder = builder.then(_noop)
    return builder.build(name, 1)


def _waiting(name: str, before: Callable[[StepExecutionContext], None]) -> WorkflowDefinition:
    return (
        WorkflowBuilder(dict)
        .start_with(before)
        .wait_for("go", lambda data, ctx: data["key"])
        .then(_noop)
        .build(name, 1)
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Store:
    """Hands each shape its store URL: a fresh SQLite file by default."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self._dir = Path(tempfile.mkdtemp(prefix="wfe-bench-"))
        self._n = 0

    def fresh(self) -> str:
        if self.url is None or self.url == "sqlite":
            self._n += 1
            return f"sqlite:///{self._dir / f'bench-{self._n}.db'}"
        return self.url

    def host(self, *definitions: Any) -> WorkflowHost:
        builder = WorkflowHostBuilder().persistence(self.fresh())
        for d in definitions:
            builder = builder.register(d)
        return builder.build()


def emit(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.6g} {unit}", flush=True)


# -- shapes ---------------------------------------------------------------------------


async def seq(store: Store) -> None:
    async with store.host(_chain("bench-seq", 10)) as host:
        for _ in range(5):  # warm up (imports, statement caches)
            await host.wait_for_workflow(await host.start_workflow("bench-seq", 1, {}), _TIMEOUT)
        latencies = []
        began = time.perf_counter()
        for _ in range(200):
            t0 = time.perf_counter()
            wid = await host.start_workflow("bench-seq", 1, {})
            await host.wait_for_workflow(wid, _TIMEOUT)
            latencies.append(time.perf_counter() - t0)
        total = time.perf_counter() - began
    emit("seq_workflows_per_s", 200 / total, "wf/s")
    emit("seq_latency_p50", statistics.median(latencies) * 1000, "ms")
    emit("seq_latency_p99", _pct(latencies, 0.99) * 1000, "ms")


async def conc(store: Store) -> None:
    async with store.host(_chain("bench-conc", 10)) as host:
        await host.wait_for_workflow(await host.start_workflow("bench-conc", 1, {}), _TIMEOUT)
        latencies: list[float] = []

        async def done(wid: str, t0: float) -> None:
            await host.wait_for_workflow(wid, _TIMEOUT)
            latencies.append(time.perf_counter() - t0)

        began = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(200):
                t0 = time.perf_counter()
                wid = await host.start_workflow("bench-conc", 1, {})
                nursery.start_soon(done, wid, t0)
        total = time.perf_counter() - began
    emit("conc_workflows_per_s", 200 / total, "wf/s")
    emit("conc_latency_p50", statistics.median(latencies) * 1000, "ms")
    emit("conc_latency_p99", _pct(latencies, 0.99) * 1000, "ms")


async def long(store: Store) -> None:
    async with store.host(_chain("bench-long", 1000), _chain("bench-warm", 10)) as host:
        await host.wait_for_workflow(await host.start_workflow("bench-warm", 1, {}), _TIMEOUT)
        t0 = time.perf_counter()
        wid = await host.start_workflow("bench-long", 1, {})
        await host.wait_for_workflow(wid, _TIMEOUT)
        total = time.perf_counter() - t0
    emit("long_steps_per_s", 1000 / total, "steps/s")
    emit("long_step_overhead", total / 1000 * 1e6, "us")


class Parked:
    """Counts the workflows whose step before the wait has run."""

    def __init__(self, target: int) -> None:
        self.count = 0
        self.target = target
        self.all = trio.Event()

    def step(self, ctx: StepExecutionContext) -> None:
        self.count += 1
        if self.count >= self.target:
            self.all.set()


async def _park(host: WorkflowHost, name: str, parked: Parked, callers: int) -> list[str]:
    """Start ``n`` workflows waiting for an event keyed by their number; return their ids
    once every one of them has opened its wait (seen through ``get_workflow``)."""
    n = parked.target
    ids: list[str] = [""] * n
    todo = iter(range(n))

    async def starter() -> None:
        for i in todo:
            ids[i] = await host.start_workflow(name, 1, {"key": f"{name}-{i}"})

    async with trio.open_nursery() as nursery:
        for _ in range(callers):
            nursery.start_soon(starter)
    await parked.all.wait()
    # The step before the wait ran for all; the wait is stored by the same pass, so
    # check the last ones started until each shows its waiting pointer.
    for wid in ids[-min(n, 50) :]:
        while not any(  # noqa: ASYNC110 - the store is read, no event to wait on
            p.status is PointerStatus.WAITING_FOR_EVENT
            for p in (await host.get_workflow(wid)).execution_pointers
            if p.end_time is None
        ):
            await trio.sleep(0.002)
    return ids


async def event(store: Store) -> None:
    parked = Parked(100)
    async with store.host(_waiting("bench-event", parked.step)) as host:
        ids = await _park(host, "bench-event", parked, 10)
        sent: dict[int, float] = {}
        latencies: list[float] = []

        async def waiter(i: int) -> None:
            await host.wait_for_workflow(ids[i], _TIMEOUT)
            latencies.append(time.perf_counter() - sent[i])

        async with trio.open_nursery() as nursery:
            for i in range(100):
                nursery.start_soon(waiter, i)
            await trio.sleep(0.01)  # every waiter is waiting
            began = time.perf_counter()
            for i in range(100):
                sent[i] = time.perf_counter()
                await host.publish_event("go", f"bench-event-{i}", {"n": i})
            send_time = time.perf_counter() - began
    emit("event_send_per_s", 100 / send_time, "events/s")
    emit("event_send_to_done_latency_p50", statistics.median(latencies) * 1000, "ms")
    emit("event_send_to_done_latency_p99", _pct(latencies, 0.99) * 1000, "ms")


async def history(store: Store) -> None:
    iterations = 20_000
    stamps: list[float] = []

    def body(ctx: StepExecutionContext) -> None:
        stamps.append(time.perf_counter())
        ctx.workflow.data["i"] += 1

    definition = (
        WorkflowBuilder(dict)
        .start_with(_noop)
        .while_do(lambda data, ctx: data["i"] < iterations, lambda b: b.start_with(body))
        .build("bench-history", 1)
    )
    async with store.host(definition) as host:
        wid = await host.start_workflow("bench-history", 1, {"i": 0})
        await host.wait_for_workflow(wid, _TIMEOUT)
    first = stamps[1000] - stamps[0]
    last = stamps[-1] - stamps[-1001]
    print(f"# history: first 1,000 iterations {first:.3f} s, last 1,000 {last:.3f} s")
    emit("history_ratio", last / first, "x")


async def idle(store: Store) -> None:
    n = 10_000
    parked = Parked(n)
    async with store.host(_waiting("bench-idle", parked.step)) as host:
        t0 = time.perf_counter()
        await _park(host, "bench-idle", parked, 50)
        total = time.perf_counter() - t0
        rss = _rss_mb()
    emit("idle_start_per_s", n / total, "wf/s")
    emit("idle_rss_mb", rss, "MB")


_YAML_STEPS = 20


def _yaml_commands() -> list[str]:
    return [f"echo step {i}" for i in range(_YAML_STEPS)]


async def _direct(commands: list[str]) -> float:
    t0 = time.perf_counter()
    for cmd in commands:
        await trio.run_process(
            ["sh", "-c", cmd],
            stdin=subprocess.DEVNULL,
            capture_stdout=True,
            capture_stderr=True,
            start_new_session=True,
        )
    return time.perf_counter() - t0


async def yaml(store: Store) -> None:
    from wfe.yaml import load_workflow_from_str

    commands = _yaml_commands()
    steps = "\n".join(
        f"    - name: s{i}\n      config: {{run: {cmd!r}}}" for i, cmd in enumerate(commands)
    )
    text = f"workflow:\n  id: bench-yaml\n  steps:\n{steps}\n"
    compiled = load_workflow_from_str(textwrap.dedent(text), {}, file="bench.yaml")
    overheads: list[float] = []
    async with store.host(*compiled) as host:

        async def pipeline() -> float:
            t0 = time.perf_counter()
            wid = await host.start_workflow("bench-yaml", None, {})
            inst = await host.wait_for_workflow(wid, _TIMEOUT)
            if inst.status is not WorkflowStatus.COMPLETE:
                raise RuntimeError(f"the YAML pipeline ended {inst.status.value}")
            return time.perf_counter() - t0

        await pipeline()
        await _direct(commands)
        for _ in range(5):
            engine = await pipeline()
            direct = await _direct(commands)
            overheads.append((engine - direct) / _YAML_STEPS)
    print(f"# yaml: per-step overheads of 5 pairs (ms): {[round(o * 1000, 2) for o in overheads]}")
    emit("yaml", statistics.median(overheads) * 1000, "ms")


_SHAPES: dict[str, Callable[[Store], Awaitable[None]]] = {
    "seq": seq,
    "conc": conc,
    "long": long,
    "event": event,
    "history": history,
    "idle": idle,
    "yaml": yaml,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", default=None, help="persistence URL (default: fresh SQLite)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help=",".join(SHAPES))
    args = parser.parse_args(argv)
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if s not in _SHAPES]
    if unknown:
        parser.error(f"unknown shape(s) {', '.join(unknown)}; choose from {', '.join(SHAPES)}")
    store = Store(args.store)
    where = "fresh SQLite files" if args.store in (None, "sqlite") else args.store.split("://")[0]
    print(f"# store: {where}; cpus {os.cpu_count()}; python {sys.version.split()[0]}")
    for shape in shapes:
        print(f"# shape {shape}", flush=True)
        wall, cpu = time.perf_counter(), time.process_time()
        trio.run(_SHAPES[shape], store)
        # CPU time is far steadier than wall time on a shared machine: compare both.
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"# shape {shape}: {wall:.2f} s wall, {cpu:.2f} s process CPU", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
