"""One host process of the crash campaign (see crash.py); not a test, not a library.

    python crash_host.py DB LOG

Runs a host on the SQLite file DB until killed. Steps append ``begin``/``end`` lines
(workflow id, step, pid, monotonic-free wall time) to LOG with ``O_APPEND``, which is
atomic for short lines, so the campaign can tell what ran where and when.
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

LOG = ""
PID = os.getpid()


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
        await trio.sleep(0.02)
        ctx.workflow.data[f"s{n}"] = PID
        record("end", ctx.workflow.id, n)

    return body


def build_seq() -> Any:
    chain = WorkflowBuilder(dict).start_with(step(1))
    for n in range(2, 6):
        chain = chain.then(step(n))
    return chain.build("campaign-seq", 1)


WAIT = (
    WorkflowBuilder(dict)
    .start_with(step(1))
    .wait_for("campaign-go", lambda d, ctx: ctx.workflow.id)
    .output("event", lambda s: s.event_data)
    .then(step(3))
    .build("campaign-wait", 1)
)


SEQ = build_seq()


async def main(db: str) -> None:
    builder = (
        WorkflowHostBuilder()
        .persistence(f"sqlite:///{db}")
        .lease_ttl(timedelta(seconds=2))
        .poll_interval(timedelta(milliseconds=500))
        .register(SEQ)
        .register(WAIT)
    )
    async with builder.build():
        record("up", "-", "-")
        await trio.sleep_forever()


if __name__ == "__main__":
    LOG = sys.argv[2]
    trio.run(main, sys.argv[1])
