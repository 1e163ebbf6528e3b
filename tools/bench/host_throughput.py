"""Host-level figures on a store: 10-step workflow latency and throughput of 200 at once.

Prints ``metric value unit`` lines:

- ``ten_step_latency_p50`` / ``p90``: start_workflow to COMPLETE for a 10-step
  workflow, one at a time (30 runs);
- ``burst_200_workflows_per_second``: 200 ten-step workflows started at once, until
  the last completes.

    python tools/bench/host_throughput.py [--store memory://|sqlite]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import trio

from wfe.core import StepExecutionContext, WorkflowBuilder
from wfe.host import WorkflowHostBuilder


def noop(ctx: StepExecutionContext) -> None:
    return None


def ten_steps() -> object:
    builder = WorkflowBuilder(dict).start_with(noop)
    for _ in range(9):
        builder = builder.then(noop)
    return builder.build("ten", 1)


async def main(store: str) -> None:
    async with (
        WorkflowHostBuilder()
        .persistence(store)
        .register(ten_steps())
        .max_concurrent_workflows(32)
        .build()
    ) as host:
        latencies = []
        for _ in range(30):
            start = time.perf_counter()
            wid = await host.start_workflow("ten", 1, {})
            await host.wait_for_workflow(wid, timeout=60)
            latencies.append(time.perf_counter() - start)
        start = time.perf_counter()
        ids = [await host.start_workflow("ten", 1, {}) for _ in range(200)]
        started = time.perf_counter() - start
        for wid in ids:
            await host.wait_for_workflow(wid, timeout=300)
        burst = time.perf_counter() - start
    latencies.sort()
    print(f"store {store.split(':')[0]} -")
    print(f"ten_step_latency_p50 {statistics.median(latencies) * 1000:.1f} ms")
    print(f"ten_step_latency_p90 {latencies[int(len(latencies) * 0.9)] * 1000:.1f} ms")
    print(f"burst_200_start_calls {started * 1000:.0f} ms")
    print(f"burst_200_workflows_per_second {200 / burst:.0f} workflows/s")
    print(f"burst_200_steps_per_second {2000 / burst:.0f} steps/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", default="memory://")
    url = parser.parse_args().store
    if url == "sqlite":
        url = f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    trio.run(main, url)
