"""Shared helpers and fixtures of the DESIGN.md §3-§6 acceptance tests.

Test modules import the ``store`` fixture (``store_fixture``) from here explicitly: pytest
picks up imported fixtures, and ``conftest.py``, which other tests use, stays untouched. The
function has its own name so that test parameters named ``store`` do not shadow an import.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pg_support
import pytest
import trio
import trio.lowlevel
import trio.testing

from wfe.core import (
    ExecutionResult,
    PointerStatus,
    StepBody,
    StepExecutionContext,
    TrioClock,
    WorkflowBuilder,
    WorkflowDefinition,
    WorkflowInstance,
)
from wfe.host import WorkflowHost, WorkflowHostBuilder


@pytest.fixture(
    params=["memory", "sqlite", *(["postgres"] if pg_support.INSTALLED else [])], name="store"
)
def store_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store URL: the in-memory store, a SQLite file and a PostgreSQL schema."""
    if request.param == "postgres":
        yield from pg_support.fresh_store()
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'acceptance.db'}"
    else:
        yield "memory://"


@contextlib.asynccontextmanager
async def open_host(
    store_url: str,
    *definitions: Any,
    configure: Callable[[WorkflowHostBuilder], Any] | None = None,
) -> AsyncIterator[WorkflowHost]:
    """A host on ``store_url`` with ``definitions`` registered (short poll interval)."""
    builder = (
        WorkflowHostBuilder().persistence(store_url).poll_interval(timedelta(milliseconds=200))
    )
    for d in definitions:
        builder.register(d)
    if configure is not None:
        configure(builder)
    async with builder.build() as host:
        yield host


def recorder(log: list[str], name: str) -> Callable[[StepExecutionContext], None]:
    """A sync function step appending ``name`` to ``log``."""

    def step(ctx: StepExecutionContext) -> None:
        log.append(name)

    return step


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll ``check`` until it holds, failing after ``timeout`` seconds."""
    with trio.fail_after(timeout):
        while not await check():
            await trio.sleep(0.02)


async def until_waiting(host: WorkflowHost, wid: str, count: int = 1) -> WorkflowInstance:
    """Wait until ``count`` pointers of ``wid`` wait for an event; return the instance."""
    found: list[WorkflowInstance] = []

    async def check() -> bool:
        inst = await host.get_workflow(wid)
        found[:] = [inst]
        waiting = [
            p for p in inst.execution_pointers if p.status is PointerStatus.WAITING_FOR_EVENT
        ]
        return len(waiting) >= count

    await eventually(check)
    return found[0]


async def until_a_sibling_waits(ctx: StepExecutionContext, timeout: float = 10.0) -> None:
    """Inside a step body: wait until another pointer of the running instance waits for
    an event (a parallel branch reached its ``wait_for``)."""
    with trio.fail_after(timeout):
        while not any(
            p.status is PointerStatus.WAITING_FOR_EVENT for p in ctx.workflow.execution_pointers
        ):
            await trio.sleep(0.01)


@contextlib.asynccontextmanager
async def collecting(host: WorkflowHost) -> AsyncIterator[list[Any]]:
    """Collect the host's lifecycle events into a list while the block runs."""
    seen: list[Any] = []

    async def consume() -> None:
        async for event in host.lifecycle_events():
            seen.append(event)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        await trio.lowlevel.checkpoint()
        yield seen
        await trio.sleep(0.2)
        nursery.cancel_scope.cancel()


def types_for(seen: list[Any], wid: str) -> list[type]:
    return [type(e) for e in seen if e.workflow_instance_id == wid]


def virtual_host(*definitions: Any, store_url: str = "memory://") -> Any:
    builder = (
        WorkflowHostBuilder()
        .persistence(store_url)
        .clock(TrioClock())
        .poll_interval(timedelta(minutes=5))
    )
    for d in definitions:
        builder.register(d)
    return builder.build()


class Boom(Exception):
    """A step failure."""


async def _true(value: bool) -> bool:
    return value


class Waiter(StepBody):
    """wait_for_event from a StepBody; the re-run sees the event on ctx.pointer."""

    got: list[Any] = []  # noqa: RUF012

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult:
        if not ctx.pointer.event_published:
            return ExecutionResult.wait_for_event("body-ev", "k1", datetime.now(UTC))
        Waiter.got.append(ctx.pointer.event_data)
        return ExecutionResult.next()


def wait_def(
    def_id: str,
    key: Any = "k",
    effective_date: Any = None,
    loops: int = 1,
) -> WorkflowDefinition:
    """Wait ``loops`` times for event "ev"/key, appending each event_data to data["got"]."""

    def keep(step: Any, data: Any) -> None:
        data["got"].append(step.event_data)

    return (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .while_do(
            lambda data, *_: len(data["got"]) < loops,
            lambda b: (
                b.start_with(lambda ctx: None)
                .wait_for("ev", key, effective_date=effective_date)
                .output(keep)
            ),
        )
        .build(def_id, 1)
    )
