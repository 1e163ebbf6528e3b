"""``host.purge``: ended workflows go with everything theirs; running ones stay."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import trio

from wfe.core import ConfigurationError, WorkflowBuilder, WorkflowNotFoundError, WorkflowStatus
from wfe.host import BlockingWorkflowHost, PurgeReport, WorkflowHost, WorkflowHostBuilder


def definitions() -> list[object]:
    quick = WorkflowBuilder(dict).start_with(lambda ctx: None).then(lambda ctx: None)
    waits = WorkflowBuilder(dict).start_with(lambda ctx: None).wait_for("go", "k")
    return [quick.build("quick", 1), waits.build("waits", 1)]


async def indexed(host: WorkflowHost, count: int, finished: int) -> None:
    """Wait until the index (eventually current) holds ``count`` entries, ``finished``
    of them no longer RUNNABLE."""
    with trio.fail_after(30):
        while True:
            items = (await host.search("")).items
            ended = [r for r in items if r.status is not WorkflowStatus.RUNNABLE]
            if len(items) == count and len(ended) == finished:
                return
            await trio.sleep(0.02)


def builder(tmp_path: Path) -> WorkflowHostBuilder:
    b = WorkflowHostBuilder().persistence(f"sqlite:///{tmp_path / 'wfe.db'}")
    for d in definitions():
        b = b.register(d)
    return b


async def test_purge_takes_ended_workflows_and_their_index_entries(tmp_path: Path) -> None:
    async with builder(tmp_path).build() as host:
        done = [await host.start_workflow("quick", 1, reference="gone") for _ in range(3)]
        waiting = await host.start_workflow("waits", 1, reference="kept")
        ended = await host.start_workflow("waits", 1, reference="ended")
        for wid in done:
            await host.wait_for_workflow(wid, timeout=30)
        assert await host.terminate_workflow(ended)
        await indexed(host, 5, finished=4)
        dry = await host.purge(timedelta(0), dry_run=True)
        assert (dry.workflows, dry.dry_run) == (4, True)
        assert (await host.search("")).total == 5
        report = await host.purge(timedelta(0), batch=2)
        assert isinstance(report, PurgeReport)
        assert report.workflows == 4
        for wid in [*done, ended]:
            with pytest.raises(WorkflowNotFoundError):
                await host.get_workflow(wid)
            assert await host.get_errors(wid) == []
        assert (await host.get_workflow(waiting)).status is WorkflowStatus.RUNNABLE
        assert [r.id for r in (await host.search("")).items] == [waiting]
        # The survivor still works: its event arrives and it completes.
        await host.publish_event("go", "k")
        assert (await host.wait_for_workflow(waiting, timeout=30)).status.value == "COMPLETE"


async def test_purge_keeps_what_is_younger_and_refuses_running(tmp_path: Path) -> None:
    async with builder(tmp_path).build() as host:
        wid = await host.start_workflow("quick", 1)
        await host.wait_for_workflow(wid, timeout=30)
        assert (await host.purge(timedelta(days=1))).workflows == 0
        assert (await host.get_workflow(wid)).status is WorkflowStatus.COMPLETE
        with pytest.raises(ConfigurationError, match="never RUNNABLE"):
            await host.purge(timedelta(0), [WorkflowStatus.RUNNABLE])
        with pytest.raises(ConfigurationError, match="older_than"):
            await host.purge(timedelta(days=-1))


def test_blocking_host_purges_too(tmp_path: Path) -> None:
    with BlockingWorkflowHost(builder(tmp_path)) as host:
        wid = host.start_workflow("quick", 1)
        host.wait_for_workflow(wid, timeout=30)
        assert host.purge(timedelta(0)).workflows == 1
        with pytest.raises(WorkflowNotFoundError):
            host.get_workflow(wid)
