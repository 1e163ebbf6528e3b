"""Shared helpers of the DESIGN.md §7 (YAML workflows) acceptance tests."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from wfe.core import WfeError, WorkflowInstance, WorkflowStatus
from wfe.host import WorkflowHostBuilder
from wfe.yaml import (
    CompiledWorkflow,
    load_workflow_from_str,
)


async def until_dead(pid: int, timeout: float = 5.0) -> None:
    """Wait until process ``pid`` is gone (a zombie awaiting its reaper counts as gone);
    a process of another session offers no event to await, so poll /proc."""
    with trio.fail_after(timeout):
        while True:
            try:
                stat = await trio.Path(f"/proc/{pid}/stat").read_text()
            except FileNotFoundError:
                return
            if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
                return
            await trio.sleep(0.02)


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def listing(directory: Path) -> list[str]:
    """The sorted names in ``directory``."""
    return sorted(p.name for p in directory.iterdir())


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dedent(text))
    return path


class Outcome:
    """A finished (or no longer runnable) run: its instance and its errors."""

    def __init__(self, instance: WorkflowInstance, errors: list[str], elapsed: float) -> None:
        self.instance = instance
        self.errors = errors
        self.elapsed = elapsed

    @property
    def status(self) -> WorkflowStatus:
        return self.instance.status

    @property
    def data(self) -> dict[str, Any]:
        data = self.instance.data
        assert isinstance(data, dict)
        return data

    def error_text(self) -> str:
        return "\n".join(self.errors)


class Rejected:
    """``start_workflow`` refused the data."""

    def __init__(self, error: WfeError) -> None:
        self.error = error


async def run(
    workflows: CompiledWorkflow | Sequence[CompiledWorkflow],
    data: dict[str, Any] | None = None,
    *,
    timeout: float = 30,
) -> Outcome:
    """Register every compiled workflow, start the first, wait until it stops running."""
    result = await run_or_reject(workflows, data, timeout=timeout)
    assert isinstance(result, Outcome), result.error
    return result


async def run_or_reject(
    workflows: CompiledWorkflow | Sequence[CompiledWorkflow],
    data: dict[str, Any] | None = None,
    *,
    timeout: float = 30,
) -> Outcome | Rejected:
    """Like ``run``, but a start refused with a ``WfeError`` is returned, not raised."""
    compiled = [workflows] if isinstance(workflows, CompiledWorkflow) else list(workflows)
    builder = WorkflowHostBuilder()
    for c in compiled:
        builder = builder.register(c)
    first = compiled[0].definition
    async with builder.build() as host:
        started = time.monotonic()
        try:
            wid = await host.start_workflow(first.id, first.version, dict(data or {}))
        except WfeError as exc:
            return Rejected(exc)
        instance = await host.wait_for_workflow(wid, timeout=timeout)
        elapsed = time.monotonic() - started
        errors = [e.message for e in await host.get_errors(wid)]
    return Outcome(instance, errors, elapsed)


def one(text: str, config: dict[str, Any] | None = None) -> CompiledWorkflow:
    compiled = load_workflow_from_str(dedent(text), config or {})
    assert isinstance(compiled, list)
    return compiled[0]


def issues_text(result: Any) -> str:
    """The text of whatever ``validate`` returned (a list of issues, or similar)."""
    if isinstance(result, list | tuple):
        return "\n".join(str(i) for i in result)
    return str(result)
