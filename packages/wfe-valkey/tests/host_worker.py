"""One host process for the multi-host tests (a script, not collected).

    python host_worker.py STORE_URL VALKEY_URL PREFIX LOG

Runs a host on the store STORE_URL with Valkey locks and queues (keys under PREFIX)
until killed. Each step of the ``multi`` workflow appends ``begin``/``end`` lines
(workflow id, step, pid, wall time) to LOG with ``O_APPEND`` (atomic for short lines),
so the test can tell what ran where and when; it writes ``up`` once the host runs.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from typing import Any

import trio

from wfe.core import StepExecutionContext, WorkflowBuilder
from wfe.host import WorkflowHostBuilder
from wfe.valkey import ValkeyLockProvider, ValkeyQueueProvider

STEPS = 3
PID = os.getpid()
LOG = ""


def record(*parts: Any) -> None:
    line = " ".join(str(p) for p in (*parts, PID, f"{time.time():.6f}")) + "\n"
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def step(n: int) -> Any:
    async def body(ctx: StepExecutionContext) -> None:
        record("begin", ctx.workflow.id, n)
        await trio.sleep(0.02)  # a step awaiting 20 ms of I/O
        ctx.workflow.data[f"s{n}"] = PID
        record("end", ctx.workflow.id, n)

    return body


def definition() -> Any:
    chain = WorkflowBuilder(dict).start_with(step(1))
    for n in range(2, STEPS + 1):
        chain = chain.then(step(n))
    return chain.build("multi", 1)


def host_builder(store: str, server: str, prefix: str) -> WorkflowHostBuilder:
    """The builder every process of the test uses (the test's client too)."""
    return (
        WorkflowHostBuilder()
        .persistence(store)
        .locks(ValkeyLockProvider(server, prefix=prefix))
        .queues(ValkeyQueueProvider(server, prefix=prefix, visibility_timeout=5.0))
        .lease_ttl(timedelta(seconds=3))
        .poll_interval(timedelta(milliseconds=500))
        .register(definition())
    )


async def main(store: str, server: str, prefix: str) -> None:
    async with host_builder(store, server, prefix).build():
        record("up", "-", "-")
        await trio.sleep_forever()


if __name__ == "__main__":
    LOG = sys.argv[4]
    trio.run(main, *sys.argv[1:4])
