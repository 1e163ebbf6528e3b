"""BlockingWorkflowHost: the host's API as blocking calls, for sync and asyncio programs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from wfe.core import (
    ConfigurationError,
    DataSerializationError,
    DefinitionNotFoundError,
    StepCompleted,
    WorkflowBuilder,
    WorkflowCompleted,
    WorkflowDefinition,
    WorkflowStarted,
    WorkflowStatus,
    WorkflowTimeoutError,
)
from wfe.host import BlockingWorkflowHost, HostStoppedError, WorkflowHostBuilder


def approval() -> WorkflowDefinition:
    return (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .name("prepare")
        .wait_for("approved", lambda data, ctx: ctx.workflow.id)
        .output("approval", lambda step: step.event_data)
        .then(lambda ctx: None)
        .name("finish")
        .build("approval", 1)
    )


def builder(store_url: str) -> WorkflowHostBuilder:
    return (
        WorkflowHostBuilder()
        .persistence(store_url)
        .poll_interval(timedelta(seconds=1))
        .lease_ttl(timedelta(seconds=5))
        .register(approval())
    )


def test_sync_program_runs_a_workflow(store_url: str) -> None:
    """From plain synchronous code: start, publish, wait, read, search, list."""
    with BlockingWorkflowHost(builder(store_url)) as host:
        assert threading.current_thread() is threading.main_thread()
        wid = host.start_workflow("approval", 1, {"order": 7}, reference="PO-7")
        with pytest.raises(WorkflowTimeoutError):
            host.wait_for_workflow(wid, timeout=0.2)
        host.publish_event("approved", wid, {"by": "ann"})
        instance = host.wait_for_workflow(wid, timeout=10)
        assert instance.status is WorkflowStatus.COMPLETE
        assert instance.data == {"order": 7, "approval": {"by": "ann"}}
        assert host.get_workflow(wid).reference == "PO-7"
        assert host.get_errors(wid) == []
        assert [w.id for w in host.list_workflows()] == [wid]
        assert [w.id for w in host.list_workflows(status=WorkflowStatus.RUNNABLE)] == []
        page = host.search("PO-7")
        assert [r.id for r in page.items] == [wid]


def test_control_operations(store_url: str) -> None:
    """suspend, resume and terminate block and return whether they applied."""
    with BlockingWorkflowHost(builder(store_url)) as host:
        wid = host.start_workflow("approval", 1, {})
        assert host.suspend_workflow(wid) is True
        assert host.suspend_workflow(wid) is False
        assert host.wait_for_workflow(wid, timeout=10).status is WorkflowStatus.SUSPENDED
        assert host.resume_workflow(wid) is True
        assert host.terminate_workflow(wid) is True
        assert host.get_workflow(wid).status is WorkflowStatus.TERMINATED
        assert host.terminate_workflow(wid) is False


def test_register_after_start(store_url: str) -> None:
    """Definitions can be registered before or while the host runs."""
    host = BlockingWorkflowHost(WorkflowHostBuilder().persistence(store_url))
    host.register(WorkflowBuilder(dict).start_with(lambda ctx: None).build("early", 1))
    host.start()
    try:
        host.register(WorkflowBuilder(dict).start_with(lambda ctx: None).build("late", 1))
        for name in ("early", "late"):
            wid = host.start_workflow(name, 1, {})
            assert host.wait_for_workflow(wid, timeout=10).status is WorkflowStatus.COMPLETE
    finally:
        host.stop()
    host.stop()  # idempotent


def test_errors_in_the_host_thread_reraise_in_the_caller(store_url: str) -> None:
    """A call's exception comes back to the calling thread with its type and message."""
    with BlockingWorkflowHost(builder(store_url)) as host:
        with pytest.raises(DefinitionNotFoundError, match="nope"):
            host.start_workflow("nope", 1)
        with pytest.raises(DataSerializationError):
            host.start_workflow("approval", 1, {"bad": object()})


def test_lifecycle_events_blocking_iterator(store_url: str) -> None:
    """lifecycle_events() yields events in order to a plain thread and ends on stop."""
    host = BlockingWorkflowHost(builder(store_url)).start()
    try:
        stream = host.lifecycle_events()
        wid = host.start_workflow("approval", 1, {})
        host.publish_event("approved", wid, True)
        host.wait_for_workflow(wid, timeout=10)
        seen = []
        for event in stream:
            seen.append(event)
            if isinstance(event, WorkflowCompleted):
                break
        assert isinstance(seen[0], WorkflowStarted)
        assert [e.step_name for e in seen if isinstance(e, StepCompleted)][:1] == ["prepare"]
        with host.lifecycle_events(replay=False) as quiet, pytest.raises(TimeoutError):
            quiet.get(timeout=0.1)
        assert quiet.get(timeout=0.1) is None  # closed
        late = host.lifecycle_events(replay=False)
    finally:
        host.stop()
    assert list(late) == []  # the host stopped: the stream ended


def test_not_running_and_single_use(store_url: str) -> None:
    """Calls before start or after stop raise HostStoppedError; a host runs once."""
    host = BlockingWorkflowHost(builder(store_url))
    with pytest.raises(HostStoppedError, match="start"):
        host.start_workflow("approval", 1)
    host.start()
    host.stop()
    with pytest.raises(HostStoppedError, match="stopped"):
        host.get_workflow("x")
    with pytest.raises(ConfigurationError, match="already started"):
        host.start()


def test_startup_failure_raises_in_start() -> None:
    """A host that cannot start (unknown store scheme) raises from start()."""
    host = BlockingWorkflowHost(WorkflowHostBuilder().persistence("nosuchstore://x"))
    with pytest.raises(ConfigurationError, match="nosuchstore"):
        host.start()
    with pytest.raises(HostStoppedError):
        host.start_workflow("approval", 1)


def test_rejects_other_arguments() -> None:
    """Only a builder or a host can be wrapped."""
    with pytest.raises(ConfigurationError, match="WorkflowHostBuilder"):
        BlockingWorkflowHost("memory://")  # type: ignore[arg-type]


ASYNCIO_PROGRAM = textwrap.dedent(
    """
    import asyncio
    import sys
    from datetime import timedelta

    import trio

    from wfe.core import WorkflowBuilder, WorkflowStatus
    from wfe.host import BlockingWorkflowHost, WorkflowHostBuilder

    async def slow(ctx):
        await trio.sleep(0.1)  # the host's loop is trio, on its own thread

    definition = (
        WorkflowBuilder(dict)
        .wait_for("go", lambda data, ctx: ctx.workflow.id)
        .output("got", lambda step: step.event_data)
        .then(slow)
        .build("aio", 1)
    )

    async def main() -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        tick_task = asyncio.create_task(ticker())
        builder = WorkflowHostBuilder().persistence(sys.argv[1]).register(definition)
        with BlockingWorkflowHost(builder) as host:
            wid = await asyncio.to_thread(host.start_workflow, "aio", 1, {})
            await asyncio.to_thread(host.publish_event, "go", wid, 42)
            instance = await asyncio.to_thread(host.wait_for_workflow, wid, 10)
        tick_task.cancel()
        assert instance.status is WorkflowStatus.COMPLETE, instance.status
        assert instance.data == {"got": 42}, instance.data
        assert ticks > 0  # the asyncio loop kept running while the host worked
        print("ok", type(asyncio.get_running_loop()).__module__)

    asyncio.run(main())
    """
)


def test_asyncio_program(store_url: str, tmp_path: Path) -> None:
    """An asyncio program drives the host through asyncio.to_thread (own process, so
    the asyncio loop is the standard one)."""
    script = tmp_path / "program.py"
    script.write_text(ASYNCIO_PROGRAM)
    done = subprocess.run(
        [sys.executable, str(script), store_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok asyncio.unix_events"
