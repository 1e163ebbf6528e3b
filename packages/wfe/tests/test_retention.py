"""``host.purge``: ended workflows go with everything theirs; running ones stay."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import trio

from wfe.core import ConfigurationError, WorkflowBuilder, WorkflowNotFoundError, WorkflowStatus
from wfe.core.executor import EVERY_EVENT
from wfe.core.primitives import CHILD_FINISHED_EVENT
from wfe.host import BlockingWorkflowHost, PurgeReport, WorkflowHost, WorkflowHostBuilder

from . import pg_support


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


def lease_rows(store: str) -> list[str]:
    """The resources of the store's lease rows (read from the database itself), but for
    the SQLite store's ``wfe:boot`` row, which names the boot its lease clock counts from."""
    if store.startswith("sqlite:///"):
        with sqlite3.connect(store.removeprefix("sqlite:///")) as conn:
            found = conn.execute("SELECT resource FROM locks ORDER BY 1")
            return [r[0] for r in found if r[0] != "wfe:boot"]
    import psycopg

    schema = store.rsplit("schema=", 1)[1]
    with psycopg.connect(pg_support.URL) as conn:
        rows = conn.execute(f'SELECT resource FROM "{schema}".locks ORDER BY 1').fetchall()
    return [r[0] for r in rows]


@pytest.fixture(params=["sqlite", *(["postgres"] if pg_support.INSTALLED else [])])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        yield from pg_support.fresh_store()
    else:
        yield f"sqlite:///{tmp_path / 'wfe.db'}"


async def test_purge_takes_the_free_leases_of_purged_events(store: str) -> None:
    """Found by tools/soak.py: every event key ever published left a lease row behind
    (the host's wfe:event:<name>:<key>), so the table grew with events keyed by
    workflow id. Purging an event key's last event takes its free lease too; a key with
    an event left keeps it, and a later event of a purged key is still delivered."""
    waits = WorkflowBuilder(dict).start_with(lambda ctx: None)
    waits = waits.wait_for("go", lambda d, ctx: ctx.workflow.id).then(lambda ctx: None)
    b = WorkflowHostBuilder().persistence(store).register(waits.build("by-id", 1))
    async with b.build() as host:
        ids = [await host.start_workflow("by-id", 1, {}) for _ in range(5)]
        for wid in ids:
            await host.publish_event("go", wid)
        for wid in ids:
            assert (await host.wait_for_workflow(wid, timeout=30)).status.value == "COMPLETE"
        await host.publish_event("nobody", "waits")  # pending: neither it nor its lease go
        with trio.fail_after(30):
            while not any(r.startswith("wfe:event:nobody") for r in lease_rows(store)):
                await trio.sleep(0.05)
        assert sum(r.startswith("wfe:event:go:") for r in lease_rows(store)) == 5
        report = await host.purge(timedelta(0))
        assert (report.workflows, report.events) == (5, 5)
        assert lease_rows(store) == ["wfe:event:nobody:waits"]
        again = await host.start_workflow("by-id", 1, {})
        await host.publish_event("go", again)
        assert (await host.wait_for_workflow(again, timeout=30)).status.value == "COMPLETE"


async def test_purge_takes_a_child_s_notice_that_no_parent_took(store: str) -> None:
    """A child's end stores its notice to the parent whether the parent waits yet or
    not (one re-running after a crash may come to wait later). A parent terminated
    meanwhile never takes it: it goes, with its free lease row, when the child is
    purged."""
    kid = WorkflowBuilder(dict).start_with(lambda ctx: None).wait_for("go", "kid")
    mum = WorkflowBuilder(dict).start_with(lambda ctx: None).sub_workflow("kid", 1)
    b = WorkflowHostBuilder().persistence(store)
    b = b.register(kid.build("kid", 1)).register(mum.build("mum", 1))
    async with b.build() as host:
        parent = await host.start_workflow("mum", 1, {})
        with trio.fail_after(30):
            while not (children := await host.search("kid")).items:
                await trio.sleep(0.02)
        (child,) = [r.id for r in children.items]
        assert await host.terminate_workflow(parent)
        await host.publish_event("go", "kid")
        assert (await host.wait_for_workflow(child, timeout=30)).status.value == "COMPLETE"
        notice = f"wfe:event:{CHILD_FINISHED_EVENT}:{child}"
        with trio.fail_after(30):  # the notice's delivery, which found nobody, is over
            while notice not in lease_rows(store):
                await trio.sleep(0.02)
            while (lease := await host.locks.acquire(notice, timedelta(seconds=5))) is None:
                await trio.sleep(0.02)
        await host.locks.release(lease)
        (left,) = await host.persistence.get_pending_events(
            CHILD_FINISHED_EVENT, child, EVERY_EVENT
        )
        assert left.data["status"] == "COMPLETE"
        report = await host.purge(timedelta(0))
        assert report.workflows == 2
        assert (
            await host.persistence.get_pending_events(CHILD_FINISHED_EVENT, child, EVERY_EVENT)
            == []
        )
        assert lease_rows(store) == []
