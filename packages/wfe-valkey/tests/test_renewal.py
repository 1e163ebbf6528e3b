"""A step that runs longer than the lease TTL keeps its lease by renewal: a second host
polling the same store never takes the instance over meanwhile."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import trio

from wfe.core import StepExecutionContext, WorkflowBuilder, WorkflowStatus
from wfe.host import WorkflowHostBuilder
from wfe.valkey import ValkeyLockProvider, ValkeyQueueProvider


async def test_a_long_step_is_not_taken_over_by_another_host(
    server_url: str, prefix: str, tmp_path: Path
) -> None:
    runs: list[str] = []

    def definition(name: str) -> object:
        async def long_step(ctx: StepExecutionContext) -> None:
            runs.append(name)
            await trio.sleep(2.0)  # over three lease TTLs: only renewals keep it held

        return WorkflowBuilder(dict).start_with(long_step).build("long", 1)

    def host(name: str) -> WorkflowHostBuilder:
        return (
            WorkflowHostBuilder()
            .persistence(f"sqlite:///{tmp_path / 'wfe.db'}")
            .locks(ValkeyLockProvider(server_url, prefix=prefix))
            .queues(ValkeyQueueProvider(server_url, prefix=prefix, visibility_timeout=0.3))
            .lease_ttl(timedelta(milliseconds=600))
            .poll_interval(timedelta(milliseconds=100))
            .register(definition(name))
        )

    async with host("a").build() as a, host("b").build():
        wid = await a.start_workflow("long", 1, {})
        done = await a.wait_for_workflow(wid, timeout=60)
    assert done.status is WorkflowStatus.COMPLETE
    assert len(runs) == 1, f"the step ran {len(runs)} times: {runs}"
