"""The host's wall clock stepping forward and back (as an NTP correction does) under a
real host on a real SQLite file, while workflows sleep and a step runs: nothing runs
twice, nothing is stuck, and a step in flight keeps its lease (leases are timed by
trio's monotonic clock, which does not step).

The clock is the engine's own (``WorkflowHostBuilder.clock``): :class:`SteppedClock` is
:class:`~wfe.core.SystemClock` with an offset the test changes, so ``sleep_until`` is the
real one, computing its delay from the stepped ``now()``."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
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


# Debian installs it under the machine's multiarch directory (x86_64-linux-gnu, ...).
LIBFAKETIME = next(
    iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))),
    Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
)


def _step_starts(log: Path, step: str) -> list[str]:
    if not log.exists():
        return []
    return [line.split()[1] for line in log.read_text().splitlines() if line.split()[0] == step]


@pytest.fixture
def libfaketime() -> Path:
    """libfaketime's library; skips without it, unless ``WFE_REQUIRE_SERVICES`` names
    ``faketime`` (CI installs it)."""
    if not LIBFAKETIME.exists():
        names = {n.strip() for n in os.environ.get("WFE_REQUIRE_SERVICES", "").split(",")}
        if "faketime" in names:
            pytest.fail(f"{LIBFAKETIME} is missing (apt-get install faketime)")
        pytest.skip(f"libfaketime is not installed ({LIBFAKETIME}; apt-get install faketime)")
    return LIBFAKETIME


async def test_a_host_process_whose_wall_clock_steps_runs_every_step_once(
    tmp_path: Path, libfaketime: Path
) -> None:
    """A real host process under libfaketime (wall clock only; monotonic clocks do not
    step, as with an NTP correction): its clock steps 3 s back while its workflows sleep
    2 s, then an hour forward while their next step runs. The sleepers wake (at most the
    step late), the step in flight keeps its lease (the SQLite lease clock does not
    follow the wall clock), and every step runs exactly once."""
    n = 5
    offset, log, go = tmp_path / "offset", tmp_path / "steps.log", tmp_path / "go"
    offset.write_text("+0\n")
    env = {
        **os.environ,
        "LD_PRELOAD": str(libfaketime),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    worker = Path(__file__).with_name("clock_worker.py")
    args = [str(tmp_path / "wfe.db"), str(log), str(go), str(n)]
    async with trio.open_nursery() as nursery:
        proc: trio.Process = await nursery.start(
            partial(
                trio.run_process,
                [sys.executable, str(worker), *args],
                env=env,
                capture_stdout=True,
                check=False,
            )
        )
        try:
            await wait_until(lambda: len(_step_starts(log, "s1")) == n, "every s1", 30)
            offset.write_text("-3\n")
            await wait_until(lambda: len(_step_starts(log, "s2")) == n, "every s2", 30)
            offset.write_text("+3600\n")
            # Renewals must keep the leases across the step: let a whole TTL pass.
            deadline = trio.current_time() + 3.5
            await wait_until(lambda: trio.current_time() >= deadline, "3.5 s with s2 running")
            go.touch()
            with trio.fail_after(30):
                await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
    assert proc.returncode == 0
    for step in ("s1", "s2", "s3"):
        starts = _step_starts(log, step)
        assert len(starts) == n, f"{step} ran {len(starts)} times for {n} workflows"
        assert len(set(starts)) == n, f"{step} ran twice for a workflow: {starts}"
