"""Delays, retries and schedules on virtual time (trio's MockClock + TrioClock)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import trio
import trio.testing

from wfe.core import ErrorBehavior, StepError, TrioClock, WorkflowBuilder, WorkflowStatus
from wfe.host import WorkflowHostBuilder


def virtual_host(*definitions: Any) -> Any:
    builder = WorkflowHostBuilder().clock(TrioClock()).poll_interval(timedelta(minutes=5))
    for d in definitions:
        builder.register(d)
    return builder.build()


async def test_day_long_delay_completes_instantly(autojump_clock: trio.testing.MockClock) -> None:
    """A one-day delay runs on virtual time: the workflow completes without waiting a day."""
    stamps: list[Any] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: stamps.append(ctx.workflow.create_time))
        .delay(timedelta(days=1))
        .then(lambda ctx: stamps.append(trio.current_time()))
        .build("day", 1)
    )
    async with virtual_host(definition) as host:
        wid = await host.start_workflow("day", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=timedelta(days=2))
    assert instance.status is WorkflowStatus.COMPLETE
    assert 86_400 <= stamps[1] < 86_400 + 60
    assert instance.complete_time is not None
    assert instance.complete_time - instance.create_time >= timedelta(days=1)


async def test_hourly_retries_on_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    """Retries every hour, 3 times: four attempts spaced an hour apart, then suspended."""
    attempts: list[float] = []

    def flaky(ctx: Any) -> None:
        attempts.append(trio.current_time())
        raise StepError("down")

    definition = (
        WorkflowBuilder(dict)
        .start_with(flaky)
        .on_error(ErrorBehavior.retry(timedelta(hours=1), max_retries=3))
        .build("hourly", 1)
    )
    async with virtual_host(definition) as host:
        wid = await host.start_workflow("hourly", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=timedelta(days=1))
    assert instance.status is WorkflowStatus.SUSPENDED
    assert len(attempts) == 4
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert all(3600 <= g < 3600 + 60 for g in gaps)


async def test_schedule_on_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    ran: list[float] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .schedule(timedelta(hours=6))
        .do(lambda b: b.start_with(lambda ctx: ran.append(trio.current_time())))
        .build("sched", 1)
    )
    async with virtual_host(definition) as host:
        wid = await host.start_workflow("sched", 1, {})
        await host.wait_for_workflow(wid, timeout=timedelta(days=1))
    assert len(ran) == 1
    assert ran[0] >= 6 * 3600
