"""A host process for the durability tests (run as a script, not collected by pytest).

    python durability_worker.py DB LOG start-crash      # start a workflow, run it, hang in step 2
    python durability_worker.py DB LOG resume WID       # run the store until WID ends
    python durability_worker.py DB LOG start-wait       # start a workflow that waits for an event
    python durability_worker.py DB LOG publish WID      # publish its event, run until it ends
    python durability_worker.py DB LOG many N START     # run N workflows (START=1 starts them)

Every step appends a line to LOG (``O_APPEND`` writes are atomic for short lines), so
the test can see what ran, where and when.
"""

# The log file is written by other processes: polling it with plain file reads is the point.
# ruff: noqa: ASYNC240
from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import trio

from wfe.core import PointerStatus, StepExecutionContext, WorkflowBuilder, WorkflowStatus
from wfe.host import WorkflowHostBuilder

DB, LOG, MODE = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
ARGS = sys.argv[4:]


def record(*parts: Any) -> None:
    line = " ".join(str(p) for p in (*parts, os.getpid(), f"{time.time():.6f}")) + "\n"
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def step1(ctx: StepExecutionContext) -> None:
    record("step1", ctx.workflow.id)


async def step2(ctx: StepExecutionContext) -> None:
    first = "step2" not in LOG.read_text()
    record("step2", ctx.workflow.id)
    if first:
        await trio.sleep(3600)  # killed here on the first attempt


def step3(ctx: StepExecutionContext) -> None:
    record("step3", ctx.workflow.id)


async def timed(ctx: StepExecutionContext) -> None:
    record("begin", ctx.workflow.id, ctx.step.id)
    await trio.sleep(0.01)
    record("end", ctx.workflow.id, ctx.step.id)


CRASH = WorkflowBuilder(dict).start_with(step1).then(step2).then(step3).build("crash", 1)
WAIT = (
    WorkflowBuilder(dict)
    .start_with(step1)
    .wait_for("approved", lambda d, ctx: ctx.workflow.id)
    .output("approval", lambda step: step.event_data)
    .then(step3)
    .build("wait", 1)
)
MANY = WorkflowBuilder(dict).start_with(timed).then(timed).then(timed).build("many", 1)


async def wait_all(host: Any, ids: list[str]) -> None:
    for wid in ids:
        await host.wait_for_workflow(wid, timeout=120)


async def main() -> None:
    builder = (
        WorkflowHostBuilder()
        .persistence(f"sqlite:///{DB}")
        .lease_ttl(timedelta(seconds=2))
        .poll_interval(timedelta(milliseconds=300))
        .register(CRASH)
        .register(WAIT)
        .register(MANY)
    )
    if MODE == "many":
        # Both hosts take the workflows from the queue, so they contend for each one
        # (a starter running them itself would leave the other host little to do).
        builder.eager_start(False)
    async with builder.build() as host:
        if MODE == "start-crash":
            wid = await host.start_workflow("crash", 1, {})
            print(wid, flush=True)
            await trio.sleep_forever()
        elif MODE == "resume":
            instance = await host.wait_for_workflow(ARGS[0], timeout=60)
            print(instance.status.value, flush=True)
        elif MODE == "start-wait":
            wid = await host.start_workflow("wait", 1, {})
            print(wid, flush=True)
            # Stop the host once the wait is stored.
            with trio.fail_after(30):
                while not any(
                    p.status is PointerStatus.WAITING_FOR_EVENT
                    for p in (await host.get_workflow(wid)).execution_pointers
                ):
                    await trio.sleep(0.05)
        elif MODE == "publish":
            await host.publish_event("approved", ARGS[0], {"by": "ops"})
            instance = await host.wait_for_workflow(ARGS[0], timeout=60)
            print(instance.status.value, instance.data["approval"]["by"], flush=True)
        elif MODE == "many":
            count, start = int(ARGS[0]), ARGS[1] == "1"
            ids_file = LOG.with_suffix(".ids")
            if start:
                ids = [await host.start_workflow("many", 1, {}) for _ in range(count)]
                ids_file.write_text("\n".join(ids))
            else:
                with trio.fail_after(30):
                    while not ids_file.exists() or len(ids_file.read_text().split()) < count:
                        await trio.sleep(0.05)
                ids = ids_file.read_text().split()
            await wait_all(host, ids)
            done = [await host.get_workflow(i) for i in ids]
            print(sum(i.status is WorkflowStatus.COMPLETE for i in done), flush=True)


if __name__ == "__main__":
    trio.run(main)
