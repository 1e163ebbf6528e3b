"""Helpers of the SQLite fault tests: a real small tmpfs, a filler that fills it, a
two-step workflow whose second step waits for a gate the test opens, and waiting for
conditions (never guessed sleeps)."""

from __future__ import annotations

import contextlib
import errno
import subprocess
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trio

from wfe.core import StepExecutionContext, WorkflowBuilder, WorkflowDefinition
from wfe.host import WorkflowHostBuilder

PAYLOAD = 64 * 1024
"""Bytes of data each workflow's second step stores: enough that the checkpoints need
new pages of a full disk (the WAL cannot hold them in the room it already has)."""


@contextlib.contextmanager
def small_tmpfs(directory: Path, size: str = "16m") -> Iterator[Path]:
    """A real tmpfs of ``size`` mounted on ``directory`` (unmounted afterwards, also on
    failure); skips when mounting is not permitted (not root, no CAP_SYS_ADMIN)."""
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here (needs root): {mounted.stderr}")
    try:
        yield directory
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(directory)], capture_output=True)
        done = subprocess.run(["umount", str(directory)], capture_output=True, check=False)
        if done.returncode != 0:  # still open somewhere: detach it now, freed when closed
            subprocess.run(["umount", "-l", str(directory)], capture_output=True, check=False)


def fill(directory: Path) -> Path:
    """Write a filler file in ``directory`` until its file system is full."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 12, 1 << 9):
            block = b"\0" * chunk
            while True:
                try:
                    f.write(block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    return filler


class Gated:
    """A two-step workflow: ``s1`` records its run; ``s2`` waits for :attr:`gate`, then
    stores :data:`PAYLOAD` bytes. Counts the runs of each step per workflow."""

    def __init__(self) -> None:
        self.gate = trio.Event()
        self.at_gate: set[str] = set()
        self.runs: dict[tuple[str, str], int] = {}

    def definition(self) -> WorkflowDefinition:
        async def first(ctx: StepExecutionContext) -> None:
            self._count(ctx, "s1")
            ctx.workflow.data["s1"] = ctx.workflow.id

        async def second(ctx: StepExecutionContext) -> None:
            self._count(ctx, "s2")
            self.at_gate.add(ctx.workflow.id)
            await self.gate.wait()
            ctx.workflow.data["s2"] = "x" * PAYLOAD

        return WorkflowBuilder(dict).start_with(first).then(second).build("gated", 1)

    def _count(self, ctx: StepExecutionContext, step: str) -> None:
        key = (ctx.workflow.id, step)
        self.runs[key] = self.runs.get(key, 0) + 1


def host_builder(db: Path, definition: WorkflowDefinition) -> WorkflowHostBuilder:
    return (
        WorkflowHostBuilder()
        .persistence(f"sqlite:///{db}")
        .register(definition)
        .poll_interval(timedelta(milliseconds=100))
        .lease_ttl(timedelta(seconds=2))
        .grace_period(timedelta(seconds=1))
    )


async def wait_until(condition: Callable[[], Any], what: str, timeout: float = 15) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``timeout`` s."""
    with trio.move_on_after(timeout):
        while not condition():
            await trio.sleep(0.01)
        return
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
