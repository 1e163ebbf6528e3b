"""Error behaviours, control operations and bad input."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import trio

from wfe.core import (
    DataSerializationError,
    DefinitionNotFoundError,
    ErrorBehavior,
    PointerStatus,
    StepError,
    WorkflowBuilder,
    WorkflowError,
    WorkflowStatus,
    WorkflowTimeoutError,
)
from wfe.host import WorkflowHostBuilder

from .conftest import HostFactory

FAST_RETRY = ErrorBehavior.retry(timedelta(milliseconds=20), max_retries=2)


async def until_pointer(host: Any, wid: str, status: PointerStatus) -> None:
    """Wait until a pointer of ``wid`` has ``status`` in the store."""
    with trio.fail_after(10):
        while not any(
            p.status is status for p in (await host.get_workflow(wid)).execution_pointers
        ):
            await trio.sleep(0.02)


def failing(counter: dict[str, int], times: int = 1_000) -> Any:
    def step(ctx: Any) -> None:
        counter["n"] += 1
        if counter["n"] <= times:
            raise StepError(f"boom {counter['n']}")

    return step


async def test_retry_exhaustion_fails_step_and_suspends(host_factory: HostFactory) -> None:
    """max_retries=2 means 3 attempts; then the pointer is FAILED and the workflow SUSPENDED."""
    counter = {"n": 0}
    definition = (
        WorkflowBuilder(dict)
        .start_with(failing(counter))
        .name("charge")
        .on_error(FAST_RETRY)
        .build("retry", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("retry", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
        errors = await host.get_errors(wid)
    assert counter["n"] == 3
    assert instance.status is WorkflowStatus.SUSPENDED
    assert instance.execution_pointers[0].status is PointerStatus.FAILED
    assert [e.message for e in errors] == [f"step 'charge': boom {i}" for i in (1, 2, 3)]


async def test_retry_then_success_and_resume_after_fix(host_factory: HostFactory) -> None:
    """A suspended workflow resumes and re-runs its failed step."""
    counter = {"n": 0}
    definition = (
        WorkflowBuilder(dict)
        .start_with(failing(counter, times=3))
        .name("flaky")
        .on_error(FAST_RETRY)
        .then(lambda ctx: None)
        .build("resume-fix", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("resume-fix", 1, {})
        suspended = await host.wait_for_workflow(wid, timeout=10)
        assert suspended.status is WorkflowStatus.SUSPENDED
        assert await host.resume_workflow(wid) is True
        instance = await host.wait_for_workflow(wid, timeout=10)
        assert await host.resume_workflow(wid) is False
    assert instance.status is WorkflowStatus.COMPLETE
    assert counter["n"] == 4


async def test_terminate_behavior_terminates(host_factory: HostFactory) -> None:
    """on_error(terminate) terminates the workflow; later steps never run."""
    ran: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(failing({"n": 0}))
        .on_error(ErrorBehavior.terminate())
        .then(lambda ctx: ran.append("never"))
        .build("term", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("term", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.TERMINATED
    assert instance.complete_time is not None
    assert ran == []


async def test_suspend_behavior_and_default_behavior(host_factory: HostFactory) -> None:
    """on_error(suspend) suspends at the first failure; the definition default applies otherwise."""
    counter = {"n": 0}
    definition = (
        WorkflowBuilder(dict)
        .start_with(failing(counter))
        .build("dflt", 1, default_error_behavior=ErrorBehavior.suspend())
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("dflt", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.SUSPENDED
    assert counter["n"] == 1


async def test_suspend_resume_and_terminate_from_outside(host_factory: HostFactory) -> None:
    """suspend/resume/terminate change a waiting workflow and report whether they did."""
    definition = (
        WorkflowBuilder(dict).start_with(lambda ctx: None).wait_for("e", "k").build("ctl", 1)
    )
    # Waits for the same event: once it has it, the host is done delivering that event.
    sentinel = WorkflowBuilder(dict).wait_for("e", "k").build("ctl-sentinel", 1)
    async with host_factory(definition, sentinel) as host:
        wid = await host.start_workflow("ctl", 1, {})
        await until_pointer(host, wid, PointerStatus.WAITING_FOR_EVENT)
        assert await host.suspend_workflow(wid) is True
        assert (await host.get_workflow(wid)).status is WorkflowStatus.SUSPENDED
        assert await host.suspend_workflow(wid) is False
        assert await host.resume_workflow(wid) is True
        assert (await host.get_workflow(wid)).status is WorkflowStatus.RUNNABLE
        assert await host.terminate_workflow(wid) is True
        assert await host.terminate_workflow(wid) is False
        instance = await host.get_workflow(wid)
        await host.publish_event("e", "k")
        other = await host.start_workflow("ctl-sentinel", 1, {})
        assert (await host.wait_for_workflow(other, timeout=10)).status is WorkflowStatus.COMPLETE
        after = await host.get_workflow(wid)
    assert instance.status is WorkflowStatus.TERMINATED
    assert after.status is WorkflowStatus.TERMINATED
    assert all(p.end_time is not None for p in after.execution_pointers)


async def test_unknown_definition_is_a_clear_error(host_factory: HostFactory) -> None:
    """Starting an unregistered definition names it and what is registered."""
    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("known", 1)
    async with host_factory(definition) as host:
        with pytest.raises(DefinitionNotFoundError, match=r"'nope'.*known v1"):
            await host.start_workflow("nope")
        with pytest.raises(DefinitionNotFoundError, match="known v2"):
            await host.start_workflow("known", 2)


async def test_instance_of_unregistered_definition_is_retried_with_backoff(
    store_url: str,
) -> None:
    """A stored instance whose definition this host lacks gets an error and is not spun."""
    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("gone", 1)
    async with WorkflowHostBuilder().persistence(store_url).register(definition).build() as host:
        wid = await host.start_workflow("gone", 1, {}, reference="r")
        await host.wait_for_workflow(wid, timeout=10)
        # A second instance stored by "another deployment" with a definition we lack:
        persistence = host.persistence
        other = await persistence.get_workflow(wid)
        other.id = "x" * 32
        other.definition_id = "missing"
        other.status = WorkflowStatus.RUNNABLE
        other.next_execution = host.clock.now()
        for p in other.execution_pointers:
            p.id = p.id[::-1]
        await persistence.create_workflow(other)
        from wfe.core.protocols import QueueKind

        await host.queues.enqueue(QueueKind.WORKFLOW, other.id)
        with trio.fail_after(10):
            while not await host.get_errors(other.id):
                await trio.sleep(0.02)
        errors = await host.get_errors(other.id)
        stored = await host.get_workflow(other.id)
    assert len(errors) == 1
    assert "no definition 'missing' version 1" in errors[0].message
    assert stored.next_execution is not None
    assert stored.next_execution > host.clock.now()


async def test_unstorable_data_rejected_with_field_path(host_factory: HostFactory) -> None:
    """start_workflow rejects unstorable data, naming the field; nothing is stored."""
    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("bad-data", 1)
    async with host_factory(definition) as host:
        with pytest.raises(DataSerializationError, match=r"data\.items\[1\]\.fn") as info:
            await host.start_workflow("bad-data", 1, {"items": [1, {"fn": print}]})
        assert info.value.path == "data.items[1].fn"
        assert await host.list_workflows() == []


async def test_step_error_publishes_workflow_error(host_factory: HostFactory) -> None:
    """Every failure is an ExecutionError and a WorkflowError lifecycle event."""
    definition = (
        WorkflowBuilder(dict)
        .start_with(failing({"n": 0}))
        .on_error(ErrorBehavior.suspend())
        .build("err-event", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("err-event", 1, {})
        await host.wait_for_workflow(wid, timeout=10)
        events = []
        async for event in host.lifecycle_events():
            events.append(event)
            if isinstance(event, WorkflowError):
                break
    assert isinstance(events[-1], WorkflowError)
    assert "boom 1" in events[-1].message


async def test_stop_waits_for_running_step(host_factory: HostFactory, store_url: str) -> None:
    """StopAsync: leaving the host waits for the running step and persists its result."""
    finished: list[str] = []
    started = trio.Event()

    async def slow(ctx: Any) -> None:
        started.set()
        await trio.sleep(0.5)  # long enough to be running when the host is left
        finished.append("slow")

    definition = (
        WorkflowBuilder(dict)
        .start_with(slow)
        .then(lambda ctx: finished.append("next"))
        .build("stop", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("stop", 1, {})
        with trio.fail_after(10):
            await started.wait()
    assert finished == ["slow"]
    if store_url.startswith("memory"):
        return
    async with host_factory(definition) as host:
        instance = await host.get_workflow(wid)
        assert instance.execution_pointers[0].status is PointerStatus.COMPLETE
        if len(instance.execution_pointers) > 1:
            # The persistent store picks up where the first host stopped.
            done = await host.wait_for_workflow(wid, timeout=10)
            assert done.status is WorkflowStatus.COMPLETE


async def test_wait_for_workflow_times_out(host_factory: HostFactory) -> None:
    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).wait_for("x", "y").build("w", 1)
    async with host_factory(definition) as host:
        wid = await host.start_workflow("w", 1, {})
        with pytest.raises(WorkflowTimeoutError):
            await host.wait_for_workflow(wid, timeout=0.3)


async def test_definition_drift_is_reported_not_run(tmp_path: Any) -> None:
    """An instance started under one step graph is not run with another graph
    registered under the same id and version: it gets an error instead."""
    url = f"sqlite:///{tmp_path / 'drift.db'}"
    ran: list[str] = []
    original = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .wait_for("go", "k")
        .then(lambda ctx: ran.append("old"))
        .build("drift", 1)
    )
    changed = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .then(lambda ctx: ran.append("new"))
        .build("drift", 1)
    )
    async with WorkflowHostBuilder().persistence(url).register(original).build() as host:
        wid = await host.start_workflow("drift", 1, {})
        await until_pointer(host, wid, PointerStatus.WAITING_FOR_EVENT)
    async with WorkflowHostBuilder().persistence(url).register(changed).build() as host:
        await host.publish_event("go", "k")
        with trio.fail_after(10):
            while not await host.get_errors(wid):
                await trio.sleep(0.05)
        errors = await host.get_errors(wid)
        instance = await host.get_workflow(wid)
    assert "different step graph" in errors[0].message
    assert instance.status is WorkflowStatus.RUNNABLE
    assert ran == []


async def test_step_leaving_unstorable_data_fails_and_data_rolls_back(
    host_factory: HostFactory,
) -> None:
    """A step that puts an unstorable value into the data fails (naming the field), the
    data rolls back to its last stored form, and the workflow can still be saved."""

    def poison(ctx: Any) -> None:
        ctx.workflow.data["ok"] = 2
        ctx.workflow.data["bad"] = object()

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: ctx.workflow.data.update(ok=1))
        .then(poison)
        .on_error(ErrorBehavior.suspend())
        .build("poison", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("poison", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
        errors = await host.get_errors(wid)
    assert instance.status is WorkflowStatus.SUSPENDED
    assert instance.data == {"ok": 1}
    assert "data.bad" in errors[0].message


async def test_parallel_step_finishing_after_suspension_keeps_its_result(
    host_factory: HostFactory,
) -> None:
    """A branch that finishes after another branch suspended the workflow records its
    result; resuming does not run it again."""
    runs = {"slow": 0, "flaky": 0}

    async def slow(ctx: Any) -> None:
        runs["slow"] += 1
        await trio.sleep(0.3)

    def flaky(ctx: Any) -> None:
        runs["flaky"] += 1
        if runs["flaky"] == 1:
            raise StepError("first time fails")

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .parallel()
        .do(lambda b: b.start_with(slow).name("slow"))
        .do(lambda b: b.start_with(flaky).on_error(ErrorBehavior.suspend()))
        .join()
        .build("suspend-mid", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("suspend-mid", 1, {})
        suspended = await host.wait_for_workflow(wid, timeout=10)
        assert suspended.status is WorkflowStatus.SUSPENDED
        # The slow branch finishes after the suspension; resume once its result is stored.
        with trio.fail_after(10):
            while not any(
                p.step_name == "slow" and p.status is PointerStatus.COMPLETE
                for p in (await host.get_workflow(wid)).execution_pointers
            ):
                await trio.sleep(0.02)
        assert await host.resume_workflow(wid)
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert runs == {"slow": 1, "flaky": 2}
