"""A saga whose failing step runs beside a parallel branch (found by the property tests).

When a step inside a saga fails while a sibling branch of a ``parallel()`` block in the same
saga is still running, the saga compensates and the workflow completes, but the sibling's
pointer stays RUNNING in the store and its compensation never runs, although its body ran
and its data change was kept. On SQLite (a thread hop per write) the sibling usually
finishes first and is compensated; on the memory store it never is. Either way a COMPLETE
workflow must not keep a RUNNING pointer, and every step of the saga that ran must be
compensated.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from wfe.core import PointerStatus, StepError, WorkflowBuilder, WorkflowStatus

from .conftest import HostFactory


def _fail(ctx: Any) -> None:
    raise StepError("fails")


def _slow(log: list[str]) -> Any:
    async def run(ctx: Any) -> None:
        # Still running when its sibling fails (the race the property test hit by chance).
        await trio.sleep(0.2)
        log.append("s0")

    return run


@pytest.mark.xfail(
    # Not strict: whether the race is lost depends on thread timing, so the test passes
    # on some runs; it failed on every run of PostgreSQL and on some of memory and SQLite.
    strict=False,
    reason="bug: a saga compensating while a parallel sibling runs can strand the sibling's "
    "pointer RUNNING in a COMPLETE workflow, its compensation skipped",
)
async def test_saga_compensates_a_parallel_sibling_and_strands_no_pointer(
    host_factory: HostFactory, store_url: str
) -> None:
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .saga(
            lambda s: (
                s.parallel()
                .do(
                    lambda b: (
                        b.start_with(_slow(log))
                        .name("s0")
                        .compensate_with(lambda ctx: log.append("undo:s0"))
                    )
                )
                .do(
                    lambda b: (
                        b.start_with(_fail)
                        .name("s1")
                        .compensate_with(lambda ctx: log.append("undo:s1"))
                    )
                )
                .join()
            )
        )
        .build("saga-parallel", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("saga-parallel", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    running = [
        p.step_name for p in instance.execution_pointers if p.status is PointerStatus.RUNNING
    ]
    assert running == [], f"pointers left RUNNING in a COMPLETE workflow: {running}"
    assert "undo:s1" in log
    # The sibling may be cancelled before it ran (nothing to undo); if it ran, it is undone.
    assert "s0" not in log or "undo:s0" in log, log
