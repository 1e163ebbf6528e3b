"""Per-step cost vs history length: a 10,000-iteration sequential loop.

Prints ``metric value unit`` lines: steps/s overall, and the mean time per iteration
for the first and the last 1,000 iterations (their ratio should stay near 1: the
executor's per-step cost must not grow with the instance's history).

    python tools/bench/executor_loop.py [--store memory://|sqlite:///path] [--iterations N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import trio

from wfe.core import StepExecutionContext, WorkflowBuilder
from wfe.host import WorkflowHostBuilder


@attrs.define
class LoopData:
    i: int = 0


async def main(store: str, iterations: int) -> None:
    stamps: list[float] = []

    def body(ctx: StepExecutionContext) -> None:
        ctx.workflow.data.i += 1
        stamps.append(time.perf_counter())

    limit = iterations
    definition = (
        WorkflowBuilder(LoopData)
        .start_with(lambda ctx: None)
        .while_do(lambda d: d.i < limit, lambda b: b.start_with(body))
        .build("bench-loop", 1)
    )
    async with WorkflowHostBuilder().persistence(store).register(definition).build() as host:
        start = time.perf_counter()
        wid = await host.start_workflow("bench-loop", 1, LoopData())
        instance = await host.wait_for_workflow(wid, timeout=3600)
        total = time.perf_counter() - start
    assert instance.data.i == iterations, instance.data
    window = min(1000, iterations // 2)
    first = (stamps[window] - stamps[0]) / window
    last = (stamps[-1] - stamps[-1 - window]) / window
    # Each iteration is two step runs: the loop body and the while container's re-check.
    print(f"store {store.split(':')[0]} -")
    print(f"loop_iterations {iterations} count")
    print(f"pointers {len(instance.execution_pointers)} count")
    print(f"steps_per_second {2 * iterations / total:.0f} steps/s")
    print(f"first_{window}_iteration_mean {first * 1e6:.0f} us")
    print(f"last_{window}_iteration_mean {last * 1e6:.0f} us")
    print(f"last_to_first_ratio {last / first:.2f} x")
    for k in range(0, iterations - window + 1, window):
        mean = (stamps[k + window - 1] - stamps[k]) / (window - 1)
        print(f"iterations_{k}_to_{k + window}_mean {mean * 1e6:.0f} us")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", default="memory://")
    parser.add_argument("--iterations", type=int, default=10_000)
    args = parser.parse_args()
    store: Any = args.store
    if store == "sqlite":
        store = f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    trio.run(main, store, args.iterations)


if __name__ == "__main__":
    cli()
