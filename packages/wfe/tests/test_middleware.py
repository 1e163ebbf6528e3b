"""Step middleware and workflow middleware (pre, execute, post)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
import trio

from wfe.core import (
    ConfigurationError,
    ErrorBehavior,
    ExecutionResult,
    PointerStatus,
    StepBody,
    StepExecutionContext,
    WorkflowBuilder,
    WorkflowError,
    WorkflowInstance,
    WorkflowStatus,
)
from wfe.host import WorkflowHostBuilder

from .conftest import HostFactory

Result = ExecutionResult | None
Next = Callable[[], Awaitable[Result]]


def recorder(name: str, log: list[tuple[str, str, float]]) -> Any:
    """A step middleware that records when it starts and ends (workflow-core's
    MiddlewareScenario)."""

    async def mw(ctx: StepExecutionContext, body: StepBody, next: Next) -> Result:
        log.append((name, "start", trio.current_time()))
        await trio.sleep(0.01)
        try:
            return await next()
        finally:
            await trio.sleep(0.01)
            log.append((name, "end", trio.current_time()))

    return mw


async def test_step_middleware_nests_in_registration_order(host_factory: HostFactory) -> None:
    """The first registered middleware starts first and ends last, around the body."""
    log: list[tuple[str, str, float]] = []

    def body(ctx: StepExecutionContext) -> None:
        log.append(("body", "run", trio.current_time()))

    definition = WorkflowBuilder(dict).start_with(body).build("mw-order", 1)

    def configure(b: WorkflowHostBuilder) -> None:
        b.use_step_middleware(recorder("outer", log)).use_step_middleware(recorder("inner", log))

    async with host_factory(definition, configure=configure) as host:
        wid = await host.start_workflow("mw-order", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert [(n, what) for n, what, _ in log] == [
        ("outer", "start"),
        ("inner", "start"),
        ("body", "run"),
        ("inner", "end"),
        ("outer", "end"),
    ]
    times = {(n, what): t for n, what, t in log}
    assert times["outer", "start"] < times["inner", "start"] < times["body", "run"]
    assert times["body", "run"] < times["inner", "end"] < times["outer", "end"]


async def test_step_middleware_error_is_a_step_error(host_factory: HostFactory) -> None:
    """A middleware that raises fails the step: its error behaviour applies and the
    error is recorded as an ExecutionError."""
    calls = {"mw": 0, "body": 0}

    async def flaky(ctx: StepExecutionContext, body: StepBody, next: Next) -> Result:
        calls["mw"] += 1
        if calls["mw"] == 1:
            raise RuntimeError("middleware says no")
        return await next()

    def body(ctx: StepExecutionContext) -> None:
        calls["body"] += 1

    definition = (
        WorkflowBuilder(dict)
        .start_with(body)
        .name("guarded")
        .on_error(ErrorBehavior.retry(timedelta(milliseconds=20), max_retries=2))
        .build("mw-error", 1)
    )
    async with host_factory(definition, configure=lambda b: b.use_step_middleware(flaky)) as host:
        wid = await host.start_workflow("mw-error", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
        errors = await host.get_errors(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert calls == {"mw": 2, "body": 1}
    assert len(errors) == 1
    assert "step 'guarded'" in errors[0].message
    assert "middleware says no" in errors[0].message
    assert errors[0].pointer_id == instance.execution_pointers[0].id


async def test_step_middleware_error_with_terminate_behaviour(host_factory: HostFactory) -> None:
    """The step's own error behaviour decides: terminate ends the workflow."""

    async def deny(ctx: StepExecutionContext, body: StepBody, next: Next) -> Result:
        raise PermissionError("denied")

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .on_error(ErrorBehavior.terminate())
        .build("mw-terminate", 1)
    )
    async with host_factory(definition, configure=lambda b: b.use_step_middleware(deny)) as host:
        wid = await host.start_workflow("mw-terminate", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.TERMINATED
    assert instance.execution_pointers[0].status is PointerStatus.FAILED


async def test_step_middleware_can_short_circuit(host_factory: HostFactory) -> None:
    """A middleware that returns without calling next skips the body; its result counts."""
    ran: list[str] = []

    async def skip_b(ctx: StepExecutionContext, body: StepBody, next: Next) -> Result:
        if ctx.step.name == "b":
            return ExecutionResult.next()
        return await next()

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: ran.append("a"))
        .name("a")
        .then(lambda ctx: ran.append("b"))
        .name("b")
        .then(lambda ctx: ran.append("c"))
        .name("c")
        .build("mw-skip", 1)
    )
    async with host_factory(definition, configure=lambda b: b.use_step_middleware(skip_b)) as host:
        wid = await host.start_workflow("mw-skip", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert ran == ["a", "c"]
    assert [p.status for p in instance.execution_pointers] == [PointerStatus.COMPLETE] * 3


async def test_pre_middleware_changes_data_before_first_step(host_factory: HostFactory) -> None:
    """``pre`` runs once at start, before storing: the first step sees its change."""
    seen: list[Any] = []
    pre_calls: list[str] = []

    async def stamp(instance: WorkflowInstance) -> None:
        pre_calls.append(instance.definition_id)
        instance.data["tenant"] = "acme"

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: seen.append(dict(ctx.workflow.data)))
        .then(lambda ctx: None)
        .build("pre", 1)
    )
    async with host_factory(
        definition, configure=lambda b: b.use_workflow_middleware("pre", stamp)
    ) as host:
        wid = await host.start_workflow("pre", 1, {"n": 1})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert seen == [{"n": 1, "tenant": "acme"}]
    assert instance.data == {"n": 1, "tenant": "acme"}
    assert pre_calls == ["pre"]


async def test_pre_middleware_can_reject_a_start(host_factory: HostFactory) -> None:
    """An exception in ``pre`` propagates from start_workflow and nothing is stored."""

    def reject(instance: WorkflowInstance) -> None:  # sync middleware works too
        if instance.data.get("amount", 0) > 100:
            raise ValueError("amount over limit")

    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("pre-reject", 1)
    async with host_factory(
        definition, configure=lambda b: b.use_workflow_middleware("pre", reject)
    ) as host:
        with pytest.raises(ValueError, match="amount over limit"):
            await host.start_workflow("pre-reject", 1, {"amount": 500})
        assert await host.list_workflows() == []
        wid = await host.start_workflow("pre-reject", 1, {"amount": 5})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE


async def test_execute_middleware_wraps_each_pass(host_factory: HostFactory) -> None:
    """``execute`` wraps every execution pass; steps run inside it."""
    log: list[str] = []
    inside = {"flag": False}

    async def around(instance: WorkflowInstance, next: Callable[[], Awaitable[None]]) -> None:
        log.append(f"enter {instance.definition_id}")
        inside["flag"] = True
        try:
            await next()
        finally:
            inside["flag"] = False
            log.append("exit")

    def step(ctx: StepExecutionContext) -> None:
        log.append(f"step inside={inside['flag']}")

    definition = (
        WorkflowBuilder(dict)
        .start_with(step)
        .wait_for("go", lambda data, ctx: ctx.workflow.id)
        .then(step)
        .build("exec-mw", 1)
    )
    async with host_factory(
        definition, configure=lambda b: b.use_workflow_middleware("execute", around)
    ) as host:
        wid = await host.start_workflow("exec-mw", 1, {})
        with trio.fail_after(10):
            while log.count("exit") < 1:
                await trio.sleep(0.01)
        await host.publish_event("go", wid)
        instance = await host.wait_for_workflow(wid, timeout=10)
        with trio.fail_after(10):
            while log[-1] != "exit":
                await trio.sleep(0.01)
    assert instance.status is WorkflowStatus.COMPLETE
    assert log.count("step inside=True") == 2
    assert "step inside=False" not in log
    assert log.count("enter exec-mw") >= 2  # at least one pass before and one after the event


async def test_execute_middleware_error_is_recorded_and_retried(host_factory: HostFactory) -> None:
    """An ``execute`` middleware that fails does not crash the host: the error is
    recorded and the instance is retried later."""
    attempts = {"n": 0}

    async def flaky(instance: WorkflowInstance, next: Callable[[], Awaitable[None]]) -> None:
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise RuntimeError("no database today")
        await next()

    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("exec-fail", 1)
    async with host_factory(
        definition, configure=lambda b: b.use_workflow_middleware("execute", flaky)
    ) as host:
        events: list[Any] = []

        async def collect() -> None:
            async for event in host.lifecycle_events():
                if isinstance(event, WorkflowError):
                    events.append(event)
                    return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect)
            wid = await host.start_workflow("exec-fail", 1, {})
            instance = await host.wait_for_workflow(wid, timeout=20)
        errors = await host.get_errors(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert attempts["n"] == 2
    assert len(errors) == 1
    assert errors[0].pointer_id is None
    assert "execute middleware" in errors[0].message
    assert "no database today" in errors[0].message
    assert events[0].message == errors[0].message


async def test_post_middleware_runs_once_on_completion(host_factory: HostFactory) -> None:
    """``post`` runs once with the finished instance."""
    finished: list[tuple[str, WorkflowStatus]] = []
    done = trio.Event()

    async def after(instance: WorkflowInstance) -> None:
        finished.append((instance.id, instance.status))
        done.set()

    definition = (
        WorkflowBuilder(dict).start_with(lambda ctx: None).then(lambda ctx: None).build("post", 1)
    )
    async with host_factory(
        definition, configure=lambda b: b.use_workflow_middleware("post", after)
    ) as host:
        wid = await host.start_workflow("post", 1, {})
        await host.wait_for_workflow(wid, timeout=10)
        with trio.fail_after(10):
            await done.wait()
        await trio.sleep(0.1)  # give a duplicate call the chance to show
    assert finished == [(wid, WorkflowStatus.COMPLETE)]


async def test_post_middleware_runs_on_termination(host_factory: HostFactory) -> None:
    """``post`` also runs when a waiting workflow is terminated."""
    finished: list[WorkflowStatus] = []
    done = trio.Event()

    def after(instance: WorkflowInstance) -> None:
        finished.append(instance.status)
        done.set()

    definition = (
        WorkflowBuilder(dict).wait_for("never", "k").then(lambda ctx: None).build("post-term", 1)
    )
    async with host_factory(
        definition, configure=lambda b: b.use_workflow_middleware("post", after)
    ) as host:
        wid = await host.start_workflow("post-term", 1, {})
        with trio.fail_after(10):
            while not (await host.get_workflow(wid)).execution_pointers[0].event_name:
                await trio.sleep(0.02)
        assert await host.terminate_workflow(wid) is True
        with trio.fail_after(10):
            await done.wait()
    assert finished == [WorkflowStatus.TERMINATED]


async def test_post_middleware_error_is_recorded_not_fatal(host_factory: HostFactory) -> None:
    """A failing ``post`` is recorded as an ExecutionError; the host and the other
    post middleware carry on."""
    later = trio.Event()

    async def broken(instance: WorkflowInstance) -> None:
        raise RuntimeError("audit log offline")

    async def fine(instance: WorkflowInstance) -> None:
        later.set()

    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("post-fail", 1)

    def configure(b: WorkflowHostBuilder) -> None:
        b.use_workflow_middleware("post", broken)
        b.use_workflow_middleware("post")(fine)  # decorator form

    async with host_factory(definition, configure=configure) as host:
        wid = await host.start_workflow("post-fail", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
        with trio.fail_after(10):
            await later.wait()
        errors = await host.get_errors(wid)
        # The host still works.
        wid2 = await host.start_workflow("post-fail", 1, {})
        assert (await host.wait_for_workflow(wid2, timeout=10)).status is WorkflowStatus.COMPLETE
    assert instance.status is WorkflowStatus.COMPLETE
    assert len(errors) == 1
    assert "post middleware" in errors[0].message
    assert "broken" in errors[0].message
    assert "audit log offline" in errors[0].message


def test_unknown_phase_is_rejected() -> None:
    """An unknown phase names the valid ones."""
    with pytest.raises(ConfigurationError, match="'pre', 'execute' or 'post'"):
        WorkflowHostBuilder().use_workflow_middleware("before", lambda i: None)
