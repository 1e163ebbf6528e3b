"""Asyncio step bodies (wfe.host.asyncio) run asyncio code inside the trio host."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import pytest
import trio

from wfe.core import (
    ErrorBehavior,
    ExecutionResult,
    PointerStatus,
    StepExecutionContext,
    WorkflowBuilder,
    WorkflowStatus,
)
from wfe.host.asyncio import AsyncioStepBody, asyncio_step

from .conftest import HostFactory

pytest.importorskip("trio_asyncio")


class EchoOverTcp(AsyncioStepBody):
    """Talks to an asyncio TCP server with asyncio streams: asyncio-only APIs."""

    message: str = ""

    async def run_asyncio(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        loop = asyncio.get_running_loop()
        assert asyncio.current_task() is not None

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            line = await reader.readline()
            writer.write(line.upper())
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(self.message.encode() + b"\n")
            await writer.drain()
            reply = await asyncio.wait_for(reader.readline(), timeout=5)
            writer.close()
            await writer.wait_closed()
        finally:
            server.close()
            await server.wait_closed()
        ctx.workflow.data["reply"] = reply.decode().strip()
        ctx.workflow.data["loop"] = type(loop).__name__
        return ExecutionResult.next()


async def test_asyncio_step_uses_asyncio_streams(host_factory: HostFactory) -> None:
    """An AsyncioStepBody runs on a running asyncio loop and can use asyncio networking."""
    definition = (
        WorkflowBuilder(dict)
        .start_with(EchoOverTcp)
        .input("message", lambda data, ctx: data["message"])
        .then(lambda ctx: None)
        .build("aio-echo", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("aio-echo", 1, {"message": "hello"})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data["reply"] == "HELLO"
    assert instance.data["loop"] == "TrioEventLoop"


async def test_asyncio_step_function_and_parallel_branches(host_factory: HostFactory) -> None:
    """asyncio_step(fn) wraps an asyncio function; parallel asyncio steps overlap."""
    active = {"now": 0, "max": 0}

    async def sleepy(ctx: StepExecutionContext) -> None:
        active["now"] += 1
        active["max"] = max(active["max"], active["now"])
        # Stay until all three run at once (or give up after 10 s: max stays below 3).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                while active["max"] < 3:
                    await asyncio.sleep(0.01)
        active["now"] -= 1

    definition = (
        WorkflowBuilder(dict)
        .for_each(lambda data, ctx: [1, 2, 3], lambda b: b.start_with(asyncio_step(sleepy)))
        .build("aio-parallel", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("aio-parallel", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert active["max"] == 3


async def test_asyncio_step_error_follows_error_behaviour(host_factory: HostFactory) -> None:
    """An exception raised by asyncio code is a step error with the step's behaviour."""
    attempts = {"n": 0}

    async def flaky(ctx: StepExecutionContext) -> None:
        attempts["n"] += 1
        await asyncio.sleep(0)
        if attempts["n"] == 1:
            raise ConnectionRefusedError("backend down")

    definition = (
        WorkflowBuilder(dict)
        .start_with(asyncio_step(flaky))
        .name("call")
        .on_error(ErrorBehavior.retry(timedelta(milliseconds=20), max_retries=1))
        .build("aio-error", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("aio-error", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
        errors = await host.get_errors(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert attempts["n"] == 2
    assert len(errors) == 1
    assert "backend down" in errors[0].message


async def test_terminating_cancels_the_asyncio_task(host_factory: HostFactory) -> None:
    """Terminating the workflow cancels the running asyncio coroutine."""
    started = trio.Event()
    seen: dict[str, Any] = {}

    async def forever(ctx: StepExecutionContext) -> None:
        trio.lowlevel.current_trio_token().run_sync_soon(started.set)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise

    definition = WorkflowBuilder(dict).start_with(asyncio_step(forever)).build("aio-cancel", 1)
    async with host_factory(definition) as host:
        wid = await host.start_workflow("aio-cancel", 1, {})
        with trio.fail_after(10):
            await started.wait()
        assert await host.terminate_workflow(wid) is True
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.TERMINATED
    assert instance.execution_pointers[0].status is PointerStatus.CANCELLED
    assert seen == {"cancelled": True}


async def test_run_asyncio_must_be_implemented(host_factory: HostFactory) -> None:
    """A subclass without run_asyncio fails its step with a message naming it."""

    class Missing(AsyncioStepBody):
        pass

    definition = (
        WorkflowBuilder(dict)
        .start_with(Missing)
        .on_error(ErrorBehavior.terminate())
        .build("aio-missing", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("aio-missing", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
        errors = await host.get_errors(wid)
    assert instance.status is WorkflowStatus.TERMINATED
    assert "Missing must implement run_asyncio(self, ctx)" in errors[0].message
