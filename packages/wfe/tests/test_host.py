"""Host API behaviour: lifecycle order, registration, configuration errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
import trio

from wfe.core import (
    ConfigurationError,
    DefinitionError,
    ErrorBehavior,
    LifecycleEvent,
    ProviderNotFoundError,
    StepCompleted,
    StepError,
    StepStarted,
    WorkflowBuilder,
    WorkflowCompleted,
    WorkflowError,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowSuspended,
    WorkflowTerminated,
    WorkflowTimeoutError,
)
from wfe.host import WorkflowHostBuilder

from .conftest import HostFactory


async def collect(host: object, wid: str, last: type) -> list[LifecycleEvent]:
    events: list[LifecycleEvent] = []
    async for event in host.lifecycle_events():  # type: ignore[attr-defined]
        if event.workflow_instance_id != wid:
            continue
        events.append(event)
        if isinstance(event, last):
            return events
    return events


async def test_lifecycle_events_in_order(host_factory: HostFactory) -> None:
    """Started, each step's started/completed pair, then completed — in that order."""
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .name("a")
        .then(lambda ctx: None)
        .name("b")
        .build("life", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("life", 1, {}, reference="ref-1")
        await host.wait_for_workflow(wid, timeout=10)
        events = await collect(host, wid, WorkflowCompleted)
    kinds = [(type(e).__name__, getattr(e, "step_name", None)) for e in events]
    assert kinds == [
        ("WorkflowStarted", None),
        ("StepStarted", "a"),
        ("StepCompleted", "a"),
        ("StepStarted", "b"),
        ("StepCompleted", "b"),
        ("WorkflowCompleted", None),
    ]
    assert all(e.reference == "ref-1" and e.definition_id == "life" for e in events)
    times = [e.time for e in events]
    assert times == sorted(times)


async def test_error_suspend_resume_terminate_events(host_factory: HostFactory) -> None:
    """Errors, suspension, resumption and termination each publish their event."""

    def boom(ctx: object) -> None:
        raise StepError("kaput")

    definition = (
        WorkflowBuilder(dict)
        .start_with(boom)
        .on_error(ErrorBehavior.suspend())
        .build("life-err", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("life-err", 1, {})
        await host.wait_for_workflow(wid, timeout=10)
        await host.resume_workflow(wid)
        await host.wait_for_workflow(wid, timeout=10)
        await host.terminate_workflow(wid)
        events = await collect(host, wid, WorkflowTerminated)
    kinds = [type(e) for e in events]
    assert kinds[0] is WorkflowStarted
    assert kinds[1:4] == [StepStarted, WorkflowError, WorkflowSuspended]
    assert WorkflowResumed in kinds
    assert kinds[-1] is WorkflowTerminated
    assert StepCompleted not in kinds


async def test_register_conflicting_graph_same_version_rejected() -> None:
    one = WorkflowBuilder(dict).start_with(lambda ctx: None).build("dup", 1)
    two = WorkflowBuilder(dict).start_with(lambda ctx: None).then(lambda ctx: None).build("dup", 1)
    builder = WorkflowHostBuilder().register(one)
    host = builder.build()
    host.register(one)  # the same graph again is fine
    with pytest.raises(DefinitionError, match="different step graph"):
        host.register(two)


async def test_register_rejects_non_definitions() -> None:
    with pytest.raises(DefinitionError, match="cannot register str"):
        WorkflowHostBuilder().register("order").build()


async def test_unknown_store_scheme_names_the_installed_ones() -> None:
    with pytest.raises(ProviderNotFoundError, match=r"installed: memory, .*sqlite"):
        async with WorkflowHostBuilder().persistence("mysql://x/y").build():
            pass


async def test_unreachable_postgres_store_names_its_host() -> None:
    pytest.importorskip("wfe.postgres")
    with pytest.raises(ConfigurationError, match="database 'y' on x:5432"):
        async with WorkflowHostBuilder().persistence("postgresql://x/y").build():
            pass


async def test_host_methods_need_a_running_host() -> None:
    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("idle", 1)
    host = WorkflowHostBuilder().register(definition).build()
    with pytest.raises(ConfigurationError, match="not running"):
        await host.start_workflow("idle")


def test_builder_validates_options() -> None:
    builder = WorkflowHostBuilder()
    with pytest.raises(ConfigurationError, match="max_concurrent_workflows"):
        builder.max_concurrent_workflows(0)
    with pytest.raises(ConfigurationError, match="poll_interval"):
        builder.poll_interval(timedelta(0))
    with pytest.raises(ConfigurationError, match="phase"):
        builder.use_workflow_middleware("during", lambda instance: None)


async def test_search_finds_started_workflows(host_factory: HostFactory) -> None:
    """Started workflows are indexed and found by reference and data."""
    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("searchable", 1)
    async with host_factory(definition) as host:
        wid = await host.start_workflow("searchable", 1, {"customer": "Grace"}, reference="A-99")
        await host.wait_for_workflow(wid, timeout=10)
        import trio

        with trio.fail_after(10):
            while (await host.search("grace")).total == 0:
                await trio.sleep(0.05)
        page = await host.search("A-99", {"definition_id": "searchable"})
        none = await host.search("grace", {"definition_id": "other"})
    assert [r.id for r in page.items] == [wid]
    assert none.total == 0


async def test_client_host_runs_nothing(store_url: str) -> None:
    """run_workflows(False): the host starts and controls workflows but runs none."""
    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("client", 1)
    builder = WorkflowHostBuilder().persistence(store_url).register(definition)
    async with builder.run_workflows(False).build() as host:
        wid = await host.start_workflow("client", 1, {})
        import trio

        # "Runs nothing" has no event to wait for: a window in which a running host would
        # have started the step. A correct host passes however slow the machine is.
        await trio.sleep(0.3)
        instance = await host.get_workflow(wid)
        assert instance.execution_pointers[0].start_time is None
        assert await host.suspend_workflow(wid) is True
        assert await host.terminate_workflow(wid) is True


def test_step_body_without_run_rejected_at_build() -> None:
    from wfe.core import StepBody

    class NoRun(StepBody):
        pass

    with pytest.raises(DefinitionError, match="NoRun must implement async def run"):
        WorkflowBuilder(dict).start_with(NoRun)


async def test_errors_raised_inside_the_host_block_propagate_unwrapped() -> None:
    """An error raised in `async with host:` reaches the caller as itself, not an
    ExceptionGroup, so `pytest.raises(DefinitionNotFoundError)` around the block works."""
    from wfe.core import DefinitionNotFoundError

    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("known", 1)
    with pytest.raises(DefinitionNotFoundError):
        async with WorkflowHostBuilder().register(definition).build() as host:
            await host.start_workflow("unknown")


async def test_waiting_for_workflows_keeps_nothing_behind(host_factory: HostFactory) -> None:
    """Found by tools/soak.py's memory figures: each wait_for_workflow left a wake-up
    Event behind for the host's life. Waiters sharing one workflow still all wake: one
    giving up (timeout) leaves the other waiting, and it returns once the event comes."""
    quick = WorkflowBuilder(dict).start_with(lambda ctx: None).build("quick", 1)
    waits = WorkflowBuilder(dict).start_with(lambda ctx: None).wait_for("go", "k").build("w", 1)
    async with host_factory(quick, waits) as host:
        for _ in range(20):
            wid = await host.start_workflow("quick", 1, {})
            await host.wait_for_workflow(wid, timeout=30)
        assert host._waiters == {}
        wid = await host.start_workflow("w", 1, {})
        results: list[str] = []

        async def patient() -> None:
            results.append((await host.wait_for_workflow(wid, timeout=60)).status.value)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(patient)
            with pytest.raises(WorkflowTimeoutError):
                await host.wait_for_workflow(wid, timeout=0.3)
            await host.publish_event("go", "k")
        assert results == ["COMPLETE"]
        assert host._waiters == {}
