"""One host process of the chaos and soak campaigns (tools/chaos.py, tools/soak.py);
not a test, not a library.

    python chaos_host.py KIND URL VALKEY PREFIX LOG UP_FILE

Runs a host on the store (see stores.py) until killed, with every definition of both
campaigns registered, and writes UP_FILE once it serves. The chaos steps append
``begin``/``end`` lines (workflow id, step, pid, wall time) to LOG with ``O_APPEND``
(atomic for short lines) before they return, and store ``pid:begin`` under ``sN`` in
the workflow data, so the campaign can tell which run's checkpoint was committed.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).parent))
from stores import Store

from wfe.core import ErrorBehavior, StepError, StepExecutionContext, WorkflowBuilder

LOG = ""
PID = os.getpid()
CHAOS_STEPS = 10


def record(kind: str, wid: str, n: int, at: str) -> None:
    line = f"{kind} {wid} {n} {PID} {at}\n"
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def chaos_step(n: int) -> Any:
    async def body(ctx: StepExecutionContext) -> None:
        began = f"{time.time():.6f}"
        record("begin", ctx.workflow.id, n, began)
        await trio.sleep(0.02)
        ctx.workflow.data[f"s{n}"] = f"{PID}:{began}"
        record("end", ctx.workflow.id, n, f"{time.time():.6f}")

    return body


def _chaos() -> Any:
    chain = WorkflowBuilder(dict).start_with(chaos_step(1))
    for n in range(2, CHAOS_STEPS + 1):
        chain = chain.then(chaos_step(n))
    return chain.build("chaos-seq", 1)


CHAOS = _chaos()


def mark(key: str) -> Any:
    async def body(ctx: StepExecutionContext) -> None:
        await trio.sleep(0.01)
        ctx.workflow.data[key] = True

    return body


def flaky(ctx: StepExecutionContext) -> None:
    """Fails on its first two attempts, then succeeds (retried in between)."""
    if ctx.pointer.retry_count < 2:
        raise StepError(f"attempt {ctx.pointer.retry_count + 1} fails on purpose")
    ctx.workflow.data["ok"] = True


def broken(ctx: StepExecutionContext) -> None:
    raise StepError("always fails on purpose")


def _seq() -> Any:
    chain = WorkflowBuilder(dict).start_with(mark("s1"))
    for n in range(2, 6):
        chain = chain.then(mark(f"s{n}"))
    return chain.build("soak-seq", 1)


SOAK = [
    _seq(),
    WorkflowBuilder(dict)
    .start_with(mark("s1"))
    .wait_for("soak-go", lambda d, ctx: ctx.workflow.id)
    .output("event", lambda s: s.event_data)
    .then(mark("s2"))
    .build("soak-wait", 1),
    WorkflowBuilder(dict)
    .start_with(mark("s1"))
    .delay(timedelta(seconds=1))
    .then(mark("s2"))
    .build("soak-delay", 1),
    WorkflowBuilder(dict)
    .start_with(mark("s1"))
    .then(flaky)
    .on_error(ErrorBehavior.retry(timedelta(milliseconds=300), max_retries=5))
    .then(mark("s2"))
    .build("soak-retry", 1),
    # Retries exhausted: the workflow is suspended (the soak then terminates it).
    WorkflowBuilder(dict)
    .start_with(mark("s1"))
    .then(broken)
    .on_error(ErrorBehavior.retry(timedelta(milliseconds=200), max_retries=2))
    .build("soak-fail", 1),
    WorkflowBuilder(dict)
    .start_with(mark("s1"))
    .saga(
        lambda s: (
            s.start_with(mark("a"))
            .compensate_with(mark("undo_a"))
            .then(broken)
            .compensate_with(mark("undo_b"))
            .then(mark("never"))
        )
    )
    # Its own compensation makes the flow go on after the saga (without one, the
    # failure would move to the enclosing scope).
    .compensate_with(mark("undo_saga"))
    .then(mark("after"))
    .build("soak-saga", 1),
]


async def main(store: Store, up: str) -> None:
    builder = store.builder().register(CHAOS)
    for definition in SOAK:
        builder = builder.register(definition)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(die_with_parent, os.getppid())
        async with builder.build():
            await trio.Path(up).write_text(f"{PID}\n")
            await trio.sleep_forever()


async def die_with_parent(parent: int) -> None:
    """SIGKILL this host once the campaign's driver has died, however it died, so a
    stopped campaign leaves no host behind. (Not PR_SET_PDEATHSIG: that fires when the
    *thread* that spawned the host ends, and trio spawns processes from worker threads,
    which end after a few idle seconds.)"""
    while os.getppid() == parent:  # noqa: ASYNC110 - no event tells of a death
        await trio.sleep(0.2)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    LOG = sys.argv[5]
    trio.run(main, Store.from_argv(sys.argv[1:5]), sys.argv[6])
