"""Black-box acceptance tests of DESIGN.md, written from the design text alone.

§3/§6: error behaviors (retry, suspend, terminate) and saga compensation.
Stores: the in-memory store and ``sqlite:///<tmp>``.
"""

from __future__ import annotations

import itertools
import sys
from datetime import timedelta
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

from wfe.core import (
    ErrorBehavior,
    ExecutionError,
    PointerStatus,
    StepExecutionContext,
    WorkflowBuilder,
    WorkflowDefinition,
    WorkflowError,
    WorkflowStatus,
    WorkflowSuspended,
    WorkflowTerminated,
)
from wfe.host import WorkflowHost

# The helpers and data classes live in sibling modules so that they are importable by name
# (pytest's importlib mode does not put tests/ on sys.path).
sys.path.insert(0, str(Path(__file__).parent))
from acceptance_support import (
    Boom,
    _true,
    collecting,
    eventually,
    open_host,
    recorder,
    store_fixture,  # noqa: F401  (the ``store`` fixture)
    types_for,
    virtual_host,
)

# --------------------------------------------------------------------------- §3/§6 errors


def failing_def(
    def_id: str, fails: int, behavior: ErrorBehavior | None, attempts: list[float]
) -> WorkflowDefinition:
    """A step failing its first ``fails`` runs (``-1``: always)."""

    def flaky(ctx: StepExecutionContext) -> None:
        attempts.append(trio.current_time())
        if fails < 0 or len(attempts) <= fails:
            raise Boom(f"attempt {len(attempts)} failed")

    b = WorkflowBuilder(dict).start_with(flaky).name("Flaky")
    if behavior is not None:
        b = b.on_error(behavior)
    return b.then(lambda ctx: None).build(def_id, 1)


async def _error_count_at_least(host: WorkflowHost, wid: str, n: int) -> bool:
    return len(await host.get_errors(wid)) >= n


@pytest.mark.parametrize("n", [0, 1, 3])
async def test_retry_max_retries_n_means_n_plus_one_attempts(store: str, n: int) -> None:
    """max_retries=N: N retries after the first failure, then FAILED pointer, SUSPENDED workflow."""
    attempts: list[float] = []
    behavior = ErrorBehavior.retry(timedelta(milliseconds=50), max_retries=n)
    async with (
        open_host(store, failing_def("retry-n", -1, behavior, attempts)) as host,
        collecting(host) as seen,
    ):
        wid = await host.start_workflow("retry-n", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
        await eventually(lambda: _true(WorkflowSuspended in types_for(seen, wid)))
        await eventually(lambda: _error_count_at_least(host, wid, n + 1))
        errors = await host.get_errors(wid)
    assert len(attempts) == n + 1
    assert inst.status is WorkflowStatus.SUSPENDED
    flaky = [p for p in inst.execution_pointers if p.step_name == "Flaky"]
    assert flaky[-1].status is PointerStatus.FAILED
    assert len(errors) == n + 1
    assert all(isinstance(e, ExecutionError) for e in errors)
    assert all(e.workflow_id == wid for e in errors)
    assert any("failed" in e.message for e in errors)
    assert types_for(seen, wid).count(WorkflowError) == n + 1


async def test_retry_without_limit_keeps_retrying(autojump_clock: trio.testing.MockClock) -> None:
    """max_retries=None: no limit (here 25 failures, then success)."""
    attempts: list[float] = []
    behavior = ErrorBehavior.retry(timedelta(minutes=10))
    async with virtual_host(failing_def("unlimited", 25, behavior, attempts)) as host:
        wid = await host.start_workflow("unlimited", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=timedelta(days=2))
    assert inst.status is WorkflowStatus.COMPLETE
    assert len(attempts) == 26
    assert all(b - a >= 600 for a, b in itertools.pairwise(attempts))


async def test_default_error_behavior_retries_every_60s_three_times(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """§6: the default behaviour retries every 60 s, 3 times (4 attempts), then suspends."""
    attempts: list[float] = []
    async with virtual_host(failing_def("default-err", -1, None, attempts)) as host:
        wid = await host.start_workflow("default-err", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=timedelta(hours=1))
    assert inst.status is WorkflowStatus.SUSPENDED
    assert len(attempts) == 4
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert all(60 <= g < 120 for g in gaps), gaps


async def test_exhausted_workflow_can_be_resumed_after_a_fix(store: str) -> None:
    attempts: list[float] = []
    broken = {"yes": True}

    def flaky(ctx: StepExecutionContext) -> None:
        attempts.append(0)
        if broken["yes"]:
            raise Boom("still broken")

    definition = (
        WorkflowBuilder(dict)
        .start_with(flaky)
        .on_error(ErrorBehavior.retry(timedelta(milliseconds=20), max_retries=1))
        .build("fixme", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("fixme", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
        assert inst.status is WorkflowStatus.SUSPENDED
        broken["yes"] = False
        assert await host.resume_workflow(wid) is True
        done = await host.wait_for_workflow(wid, timeout=10)
    assert done.status is WorkflowStatus.COMPLETE
    assert len(attempts) == 3


async def test_suspend_behavior(store: str) -> None:
    attempts: list[float] = []
    async with open_host(store, failing_def("susp", 1, ErrorBehavior.suspend(), attempts)) as host:
        wid = await host.start_workflow("susp", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
        assert inst.status is WorkflowStatus.SUSPENDED
        assert len(attempts) == 1
        assert await host.resume_workflow(wid) is True
        done = await host.wait_for_workflow(wid, timeout=10)
    assert done.status is WorkflowStatus.COMPLETE
    assert len(attempts) == 2


async def test_terminate_behavior(store: str) -> None:
    attempts: list[float] = []
    async with (
        open_host(store, failing_def("term", -1, ErrorBehavior.terminate(), attempts)) as host,
        collecting(host) as seen,
    ):
        wid = await host.start_workflow("term", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
        await eventually(lambda: _true(WorkflowTerminated in types_for(seen, wid)))
    assert inst.status is WorkflowStatus.TERMINATED
    assert len(attempts) == 1
    assert WorkflowError in types_for(seen, wid)


async def test_definition_default_error_behavior_is_used(store: str) -> None:
    """A definition's default_error_behavior applies to steps without their own."""
    attempts: list[float] = []
    definition = failing_def("defdefault", -1, None, attempts)
    definition = attrs.evolve(definition, default_error_behavior=ErrorBehavior.terminate())
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("defdefault", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.TERMINATED
    assert len(attempts) == 1


# --------------------------------------------------------------------------- §6 compensation


def failing_step(ctx: StepExecutionContext) -> None:
    raise Boom("saga step failed")


async def test_saga_compensates_in_reverse_completion_order(store: str) -> None:
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .saga(
            lambda b: (
                b.start_with(recorder(log, "do1"))
                .compensate_with(recorder(log, "undo1"))
                .then(recorder(log, "do2"))
                .compensate_with(recorder(log, "undo2"))
                .then(recorder(log, "do3"))
                .compensate_with(recorder(log, "undo3"))
                .then(failing_step)
            )
        )
        .build("saga", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("saga", 1, {})
        await host.wait_for_workflow(wid, timeout=10)
        inst = await host.get_workflow(wid)
    assert log == ["do1", "do2", "do3", "undo3", "undo2", "undo1"]
    assert PointerStatus.COMPENSATED in {p.status for p in inst.execution_pointers}


async def test_saga_compensation_order_follows_completion_not_definition(store: str) -> None:
    """Parallel branches in a saga: the branch that completed last is compensated first."""
    log: list[str] = []

    async def slow(ctx: StepExecutionContext) -> None:
        await trio.sleep(0.3)
        log.append("slow")

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .saga(
            lambda b: (
                b.start_with(lambda ctx: None)
                .parallel()
                .do(lambda p: p.start_with(slow).compensate_with(recorder(log, "undo-slow")))
                .do(
                    lambda p: p.start_with(recorder(log, "fast")).compensate_with(
                        recorder(log, "undo-fast")
                    )
                )
                .join()
                .then(failing_step)
            )
        )
        .build("saga-par", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("saga-par", 1, {})
        await host.wait_for_workflow(wid, timeout=10)
    assert log == ["fast", "slow", "undo-slow", "undo-fast"]


async def test_saga_without_its_own_compensation_ends_the_flow(store: str) -> None:
    """As in workflow-core, the flow continues after a compensated saga only when the saga
    has its own compensate_with; without it the compensations run and the workflow ends
    (COMPLETE, with the failure recorded as an error)."""
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .saga(
            lambda b: (
                b.start_with(recorder(log, "do"))
                .compensate_with(recorder(log, "undo"))
                .then(failing_step)
            )
        )
        .then(recorder(log, "after-saga"))
        .build("saga-after", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("saga-after", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
        errors = await host.get_errors(wid)
    assert inst.status is WorkflowStatus.COMPLETE
    assert log == ["do", "undo"]
    assert len(errors) == 1


async def test_compensate_with_sequence_and_compensate_behavior(store: str) -> None:
    """compensate_with_sequence runs a sequence; ErrorBehavior.compensate() starts it."""
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(failing_step)
        .on_error(ErrorBehavior.compensate())
        .compensate_with_sequence(
            lambda b: b.start_with(recorder(log, "c1")).then(recorder(log, "c2"))
        )
        .build("cseq", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("cseq", 1, {})
        await host.wait_for_workflow(wid, timeout=10)
    assert log == ["c1", "c2"]
