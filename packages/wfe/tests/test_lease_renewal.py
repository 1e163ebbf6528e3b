"""A step that outlasts its lease's ttl keeps the lease (the host renews it), so no
other host takes the workflow over."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import trio

from wfe.core import StepExecutionContext, WorkflowBuilder, WorkflowStatus
from wfe.host import WorkflowHost, WorkflowHostBuilder


def _host(db: Path, *definitions: object) -> WorkflowHost:
    builder = (
        WorkflowHostBuilder()
        .persistence(f"sqlite:///{db}")
        # Long enough that a loaded machine stalling the loop for a second (two suites
        # at once on two cores did, at 300 ms) still renews in time (every 0.5 s).
        .lease_ttl(timedelta(milliseconds=1500))
        .poll_interval(timedelta(milliseconds=50))
    )
    for d in definitions:
        builder.register(d)
    return builder.build()


async def test_steps_outlasting_the_ttl_run_once_while_another_host_polls(
    tmp_path: Path,
) -> None:
    runs: list[str] = []

    async def slow(ctx: StepExecutionContext) -> None:
        runs.append(ctx.workflow.id)
        await trio.sleep(4.0)  # over two and a half ttls: renewed every 0.5 s meanwhile

    definition = WorkflowBuilder(dict).start_with(slow).then(slow).build("slow", 1)
    db = tmp_path / "w.db"
    async with _host(db, definition) as a, _host(db, definition) as b:
        wids = [await a.start_workflow("slow", 1, {}) for _ in range(3)]
        wids += [await b.start_workflow("slow", 1, {}) for _ in range(3)]
        for wid in wids:
            assert (await a.wait_for_workflow(wid, 60)).status is WorkflowStatus.COMPLETE
    assert sorted(runs) == sorted(wids * 2)
