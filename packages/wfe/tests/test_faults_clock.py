"""The host's wall clock stepping forward and back (as an NTP correction does) under a
real host on a real SQLite file, while workflows sleep and a step runs: nothing runs
twice, nothing is stuck, and a step in flight keeps its lease (leases are timed by
trio's monotonic clock, which does not step).

The clock is the engine's own (``WorkflowHostBuilder.clock``): :class:`SteppedClock` is
:class:`~wfe.core.SystemClock` with an offset the test changes, so ``sleep_until`` is the
real one, computing its delay from the stepped ``now()``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import trio

from wfe.core import (
    PointerStatus,
    StepExecutionContext,
    SystemClock,
    WorkflowBuilder,
    WorkflowDefinition,
    WorkflowStatus,
)
from wfe.host import WorkflowHost, WorkflowHostBuilder

from .fault_support import wait_until

N = 8


class SteppedClock(SystemClock):
    """The system's wall clock plus :attr:`offset`."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class Flow:
    """``s1``; a delay of ``sleep``; ``s2`` (which waits for :attr:`gate` when
    ``gated``); counting each step's runs per workflow."""

    def __init__(self, sleep: timedelta, *, gated: bool = False) -> None:
        self.sleep = sleep
        self.gate = trio.Event()
        if not gated:
            self.gate.set()
        self.runs: dict[tuple[str, str], int] = {}
        self.in_s2: set[str] = set()

    def definition(self) -> WorkflowDefinition:
        def count(ctx: StepExecutionContext, step: str) -> None:
            key = (ctx.workflow.id, step)
            self.runs[key] = self.runs.get(key, 0) + 1

        async def s1(ctx: StepExecutionContext) -> None:
            count(ctx, "s1")

        async def s2(ctx: StepExecutionContext) -> None:
            count(ctx, "s2")
            self.in_s2.add(ctx.workflow.id)
            await self.gate.wait()
            ctx.workflow.data["done"] = True

        return WorkflowBuilder(dict).start_with(s1).delay(self.sleep).then(s2).build("stepped", 1)


def _host(db: Path, flow: Flow, clock: SteppedClock) -> WorkflowHost:
    return (
        WorkflowHostBuilder()
        .persistence(f"sqlite:///{db}")
        .register(flow.definition())
        .clock(clock)
        .poll_interval(timedelta(milliseconds=100))
        .lease_ttl(timedelta(seconds=1))
        .build()
    )


async def _all_sleeping(host: WorkflowHost, ids: list[str]) -> bool:
    for wid in ids:
        pointers = (await host.get_workflow(wid)).execution_pointers
        if not any(p.status is PointerStatus.SLEEPING for p in pointers):
            return False
    return True


async def _wait_sleeping(host: WorkflowHost, ids: list[str]) -> None:
    with trio.fail_after(15):
        while not await _all_sleeping(host, ids):
            await trio.sleep(0.01)


def _ran_once(flow: Flow, ids: list[str]) -> None:
    for wid in ids:
        assert flow.runs.get((wid, "s1")) == 1, f"s1 of {wid} ran {flow.runs.get((wid, 's1'))}x"
        assert flow.runs.get((wid, "s2")) == 1, f"s2 of {wid} ran {flow.runs.get((wid, 's2'))}x"


async def test_a_backward_step_delays_timers_by_at_most_the_step(tmp_path: Path) -> None:
    """Workflows sleeping 1 s when the clock steps back 3 s wake once the wall clock
    reaches their time again (4 s of real time at most), each step run once; a workflow
    started after the step runs at once."""
    clock, flow = SteppedClock(), Flow(timedelta(seconds=1))
    async with _host(tmp_path / "wfe.db", flow, clock) as host:
        ids = [await host.start_workflow("stepped", 1, {}) for _ in range(N)]
        await _wait_sleeping(host, ids)
        clock.offset = timedelta(seconds=-3)
        late = await host.start_workflow("stepped", 1, {})
        with trio.fail_after(10):
            done = [await host.wait_for_workflow(wid, timeout=10) for wid in [*ids, late]]
    assert {w.status for w in done} == {WorkflowStatus.COMPLETE}
    _ran_once(flow, [*ids, late])


async def test_a_forward_step_wakes_due_sleepers_and_reruns_nothing(tmp_path: Path) -> None:
    """Workflows sleeping an hour when the clock steps forward two hours are due by it
    and complete (the store's times are wall times); a step running across the step
    keeps its lease and is not run again."""
    clock, flow = SteppedClock(), Flow(timedelta(hours=1), gated=True)
    async with _host(tmp_path / "wfe.db", flow, clock) as host:
        ids = [await host.start_workflow("stepped", 1, {}) for _ in range(N)]
        await _wait_sleeping(host, ids)
        clock.offset = timedelta(hours=2)
        await wait_until(lambda: flow.in_s2 == set(ids), "every workflow in s2")
        # Past several lease lengths of real time with s2 in flight: renewals keep it.
        deadline = trio.current_time() + 3
        await wait_until(lambda: trio.current_time() >= deadline, "3 s with s2 running")
        flow.gate.set()
        with trio.fail_after(10):
            done = [await host.wait_for_workflow(wid, timeout=10) for wid in ids]
    assert {w.status for w in done} == {WorkflowStatus.COMPLETE}
    _ran_once(flow, ids)
