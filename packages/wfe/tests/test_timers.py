"""The host's timer task survives a wake-up that fails (a store that is down)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import trio

from wfe.core import SystemClock, WfeError
from wfe.host._timers import TimerWheel


async def test_a_failing_wake_up_is_logged_and_later_timers_still_fire(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = SystemClock()
    fired: list[str] = []
    all_fired = trio.Event()

    async def fire(item_id: str) -> None:
        if item_id == "down":
            raise WfeError("store unreachable")
        fired.append(item_id)
        if len(fired) == 2:
            all_fired.set()

    wheel = TimerWheel(clock, fire)
    now = clock.now()
    wheel.schedule("first", now - timedelta(seconds=2))
    wheel.schedule("down", now - timedelta(seconds=1))
    wheel.schedule("after", now)
    async with trio.open_nursery() as nursery:
        await nursery.start(wheel.serve)
        with trio.fail_after(10):
            await all_fired.wait()
        nursery.cancel_scope.cancel()
    assert fired == ["first", "after"]
    assert "timers failed: store unreachable" in caplog.text
