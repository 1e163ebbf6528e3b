"""A host process for test_faults_clock.py, run under libfaketime: N workflows
``s1`` → delay(2 s) → ``s2`` (waits for a file) → ``s3`` on a SQLite file, each step
start logged as ``<step> <workflow id>``; prints each workflow's final status."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import TextIO

import trio

from wfe.core import StepExecutionContext, WorkflowBuilder
from wfe.host import WorkflowHostBuilder


def _ready(go: str) -> bool:
    return Path(go).exists()


async def main(db: str, log: TextIO, go: str, n: int) -> None:
    def note(step: str, ctx: StepExecutionContext) -> None:
        log.write(f"{step} {ctx.workflow.id}\n")

    async def s1(ctx: StepExecutionContext) -> None:
        note("s1", ctx)

    async def s2(ctx: StepExecutionContext) -> None:
        note("s2", ctx)
        while not _ready(go):
            await trio.sleep(0.02)

    async def s3(ctx: StepExecutionContext) -> None:
        note("s3", ctx)

    definition = (
        WorkflowBuilder(dict)
        .start_with(s1)
        .delay(timedelta(seconds=2))
        .then(s2)
        .then(s3)
        .build("clock", 1)
    )
    builder = (
        WorkflowHostBuilder()
        .persistence(f"sqlite:///{db}")
        .register(definition)
        .lease_ttl(timedelta(seconds=3))
        .poll_interval(timedelta(milliseconds=100))
    )
    async with builder.build() as host:
        ids = [await host.start_workflow("clock", 1, {}) for _ in range(n)]
        for wid in ids:
            instance = await host.wait_for_workflow(wid, timeout=60)
            print(instance.status.value, flush=True)


if __name__ == "__main__":
    with open(sys.argv[2], "a", buffering=1) as log_file:
        trio.run(main, sys.argv[1], log_file, sys.argv[3], int(sys.argv[4]))
