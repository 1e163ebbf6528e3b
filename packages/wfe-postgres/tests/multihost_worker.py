"""A host process for the multi-host tests (a script, not collected).

    python multihost_worker.py URL LOG serve      # run workflows until none is RUNNABLE
    python multihost_worker.py URL LOG start N    # start N workflows, run nothing

Every step appends ``start|end WORKFLOW STEP PID NANOSECONDS`` to LOG (``O_APPEND``
lines are atomic; ``time.monotonic_ns`` is one clock for all processes on Linux), so
the test can check that no two executions of one workflow overlapped.
"""

# The log is shared with other processes: polling the store is the point.
from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import trio

from wfe.core import StepExecutionContext, WorkflowBuilder, WorkflowStatus
from wfe.host import WorkflowHostBuilder

URL, LOG, MODE = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
STEPS = 3


def record(*parts: Any) -> None:
    line = " ".join(str(p) for p in parts) + "\n"
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def step(n: int) -> Any:
    async def body(ctx: StepExecutionContext) -> None:
        wid = ctx.workflow.id
        record("start", wid, n, os.getpid(), time.monotonic_ns())
        await trio.sleep(0.002)  # a little work, so overlaps would be visible
        ctx.workflow.data[f"s{n}"] = os.getpid()
        record("end", wid, n, os.getpid(), time.monotonic_ns())

    return body


BUILDER = WorkflowBuilder(dict).start_with(step(1))
for _n in range(2, STEPS + 1):
    BUILDER = BUILDER.then(step(_n))
DEFINITION = BUILDER.build("multihost", 1)


async def main() -> None:
    builder = (
        WorkflowHostBuilder()
        .persistence(URL)
        .register(DEFINITION)
        .lease_ttl(timedelta(seconds=5))
        .poll_interval(timedelta(milliseconds=500))
    )
    if MODE == "start":
        async with builder.run_workflows(False).build() as host:
            for _ in range(int(sys.argv[4])):
                await host.start_workflow("multihost", 1, {})
        return
    async with builder.build() as host:
        with trio.fail_after(240):
            while await host.list_workflows(status=WorkflowStatus.RUNNABLE, take=1):
                await trio.sleep(0.1)
        print("done", flush=True)


if __name__ == "__main__":
    trio.run(main)
