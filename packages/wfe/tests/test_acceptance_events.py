"""Black-box acceptance tests of DESIGN.md, written from the design text alone.

§4/§6: wait_for and event delivery, including naive datetimes.
Stores: the in-memory store and ``sqlite:///<tmp>``.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from wfe.core import (
    ExecutionResult,
    PointerStatus,
    StepBody,
    StepExecutionContext,
    WfeError,
    WorkflowBuilder,
    WorkflowStatus,
)
from wfe.host import WorkflowHost

# The helpers and data classes live in sibling modules so that they are importable by name
# (pytest's importlib mode does not put tests/ on sys.path).
sys.path.insert(0, str(Path(__file__).parent))
from acceptance_support import (
    Waiter,
    eventually,
    open_host,
    recorder,
    store_fixture,  # noqa: F401  (the ``store`` fixture)
    until_a_sibling_waits,
    until_waiting,
    wait_def,
)

# ---------------------------------------------------------------- §4/§6 wait_for and events


@pytest.mark.parametrize("key_form", ["str", "fn"])
async def test_wait_for_key_as_string_or_function(store: str, key_form: str) -> None:
    key: Any = "k" if key_form == "str" else (lambda data, ctx: data["key"])
    definition = wait_def("wk", key=key)
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("wk", 1, {"got": [], "key": "k"})
        await until_waiting(host, wid)
        await host.publish_event("ev", "other-key", "wrong")
        await host.publish_event("ev", "k", "right")
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.data["got"] == ["right"]


async def test_event_published_before_the_workflow_starts_is_delivered(store: str) -> None:
    async with open_host(store, wait_def("early")) as host:
        await host.publish_event("ev", "k", "early-bird")
        wid = await host.start_workflow("early", 1, {"got": []})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.data["got"] == ["early-bird"]


async def test_subscription_gets_the_earliest_eligible_event_and_no_replay(store: str) -> None:
    """Two pending events, a loop of waits: earliest first, then the second, none twice."""
    async with open_host(store, wait_def("loop3", loops=3)) as host:
        await host.publish_event("ev", "k", "first")
        await trio.sleep(0.01)  # distinct publish times, far above the clock's resolution
        await host.publish_event("ev", "k", "second")
        wid = await host.start_workflow("loop3", 1, {"got": []})
        # Each wait is stored (WAITING_FOR_EVENT) before the host hands it the pending event,
        # so a waiting pointer alone does not mean both events have arrived: wait for both.
        await eventually(lambda: _got_len(host, wid, 2))
        inst = await until_waiting(host, wid)
        assert inst.data["got"] == ["first", "second"]
        assert inst.status is WorkflowStatus.RUNNABLE
        await host.publish_event("ev", "k", "third")
        done = await host.wait_for_workflow(wid, timeout=10)
    # A replayed event would be older than "third", hence the earliest eligible one: the third
    # wait would have taken "first" or "second" instead.
    assert done.data["got"] == ["first", "second", "third"]


async def test_earliest_by_effective_date_not_publish_order(store: str) -> None:
    now = datetime.now(UTC)
    async with open_host(store, wait_def("earliest")) as host:
        await host.publish_event("ev", "k", "later", effective_date=now - timedelta(minutes=1))
        await host.publish_event("ev", "k", "earlier", effective_date=now - timedelta(minutes=5))
        wid = await host.start_workflow("earliest", 1, {"got": []})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.data["got"] == ["earlier"]


async def test_loop_around_wait_for_does_not_reconsume(store: str) -> None:
    """Unlike the ancestors: one event, a loop of two waits — the second wait keeps waiting."""
    async with open_host(store, wait_def("noreplay", loops=2)) as host:
        wid = await host.start_workflow("noreplay", 1, {"got": []})
        await until_waiting(host, wid)
        await host.publish_event("ev", "k", 1)
        await eventually(lambda: _got_len(host, wid, 1))
        inst = await until_waiting(host, wid)
        assert inst.status is WorkflowStatus.RUNNABLE
        assert inst.data["got"] == [1]
        await host.publish_event("ev", "k", 2)
        done = await host.wait_for_workflow(wid, timeout=10)
    # A re-consumed 1 would be the earliest eligible event, taken before 2: [1, 1].
    assert done.data["got"] == [1, 2]


async def _got_len(host: WorkflowHost, wid: str, n: int) -> bool:
    return len((await host.get_workflow(wid)).data["got"]) >= n


async def test_event_goes_to_every_matching_waiting_subscription(store: str) -> None:
    async with open_host(store, wait_def("fanout")) as host:
        w1 = await host.start_workflow("fanout", 1, {"got": []})
        w2 = await host.start_workflow("fanout", 1, {"got": []})
        await until_waiting(host, w1)
        await until_waiting(host, w2)
        await host.publish_event("ev", "k", "both")
        i1 = await host.wait_for_workflow(w1, timeout=10)
        i2 = await host.wait_for_workflow(w2, timeout=10)
    assert i1.data["got"] == ["both"]
    assert i2.data["got"] == ["both"]


async def test_wait_without_effective_date_accepts_old_pending_events(store: str) -> None:
    old = datetime(2001, 1, 1, tzinfo=UTC)
    async with open_host(store, wait_def("old")) as host:
        await host.publish_event("ev", "k", "ancient", effective_date=old)
        wid = await host.start_workflow("old", 1, {"got": []})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.data["got"] == ["ancient"]


@pytest.mark.parametrize("form", ["datetime", "fn"])
async def test_wait_with_effective_date_ignores_earlier_events(store: str, form: str) -> None:
    """Only events whose time is at or after the effective date are accepted."""
    cutoff = datetime.now(UTC) - timedelta(hours=1)
    effective: Any = cutoff if form == "datetime" else (lambda data, ctx: cutoff)
    async with open_host(store, wait_def("eff", effective_date=effective)) as host:
        await host.publish_event("ev", "k", "too-old", effective_date=cutoff - timedelta(hours=1))
        wid = await host.start_workflow("eff", 1, {"got": []})
        await until_waiting(host, wid)
        await host.publish_event("ev", "k", "fresh")
        inst = await host.wait_for_workflow(wid, timeout=10)
    # Were "too-old" accepted, it would be the earliest eligible event, taken instead.
    assert inst.data["got"] == ["fresh"]


async def test_wait_for_cancel_condition_cancels_and_ignores_later_events(store: str) -> None:
    """§4/§6: wait_for(..., cancel_condition=fn(data)); a cancelled wait ignores later events."""
    log: list[str] = []

    async def stop_later(ctx: StepExecutionContext) -> None:
        # Cancel a wait that is already subscribed, not one that has yet to start.
        await until_a_sibling_waits(ctx)
        ctx.workflow.data["stop"] = True

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .parallel()
        .do(
            lambda b: (
                b.start_with(lambda ctx: None)
                .wait_for("cancel-ev", "k", cancel_condition=lambda data: data["stop"])
                .output("event", lambda step: step.event_data)
            )
        )
        .do(lambda b: b.start_with(stop_later))
        .join()
        .then(recorder(log, "after"))
        .build("wcancel", 1)
    )
    # Waits for the same event: it gets "late" only if the cancelled wait did not take it,
    # and once it has it, the host is done delivering "late".
    sentinel = (
        WorkflowBuilder(dict)
        .wait_for("cancel-ev", "k")
        .output("event", lambda step: step.event_data)
        .build("wcancel-sentinel", 1)
    )
    async with open_host(store, definition, sentinel) as host:
        wid = await host.start_workflow("wcancel", 1, {"stop": False, "event": None})
        inst = await host.wait_for_workflow(wid, timeout=10)
        assert inst.status is WorkflowStatus.COMPLETE
        assert PointerStatus.CANCELLED in {p.status for p in inst.execution_pointers}
        await host.publish_event("cancel-ev", "k", "late")
        other = await host.start_workflow("wcancel-sentinel", 1, {"event": None})
        assert (await host.wait_for_workflow(other, timeout=10)).data["event"] == "late"
        after = await host.get_workflow(wid)
    assert after.data["event"] is None
    assert after.status is WorkflowStatus.COMPLETE
    assert log == ["after"]


@pytest.mark.parametrize("proceed", [False, True])
async def test_cancel_condition_verb_with_proceed(store: str, proceed: bool) -> None:
    """cancel_condition(fn(data), proceed=...): step cancelled; proceed says if the flow goes on."""
    log: list[str] = []

    async def stop_later(ctx: StepExecutionContext) -> None:
        # Cancel a wait that is already subscribed, not one that has yet to start.
        await until_a_sibling_waits(ctx)
        ctx.workflow.data["stop"] = True

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .parallel()
        .do(
            lambda b: (
                b.start_with(lambda ctx: None)
                .wait_for("never-sent", "k")
                .cancel_condition(lambda data: data["stop"], proceed=proceed)
                .then(recorder(log, "after-wait"))
            )
        )
        .do(lambda b: b.start_with(stop_later))
        .join()
        .build(f"ccond-{proceed}", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow(f"ccond-{proceed}", 1, {"stop": False})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert PointerStatus.CANCELLED in {p.status for p in inst.execution_pointers}
    assert log == (["after-wait"] if proceed else [])


async def test_cancel_condition_true_before_the_step_skips_it(store: str) -> None:
    """Cancel conditions are evaluated before every step: a step already cancelled never runs."""
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: ctx.workflow.data.update(stop=True))
        .then(recorder(log, "cancelled-step"))
        .cancel_condition(lambda data: data["stop"])
        .build("ccond-before", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("ccond-before", 1, {"stop": False})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert log == []


# --------------------------------------------------------------------------- naive datetimes

# Naive datetimes are read as local time (as datetime.now() gives them) and work.


async def test_publish_event_with_a_naive_effective_date() -> None:
    async with open_host("memory://", wait_def("naive-pub")) as host:
        wid = await host.start_workflow("naive-pub", 1, {"got": []})
        await until_waiting(host, wid)
        try:
            await host.publish_event("ev", "k", "naive", effective_date=datetime.now())
        except WfeError:
            return  # a clear rejection is acceptable
        inst = await host.wait_for_workflow(wid, timeout=3)
    assert inst.data["got"] == ["naive"]


async def test_wait_for_with_a_naive_effective_date() -> None:
    cutoff = datetime.now() - timedelta(hours=1)
    async with open_host("memory://", wait_def("naive-wait", effective_date=cutoff)) as host:
        wid = await host.start_workflow("naive-wait", 1, {"got": []})
        await until_waiting(host, wid)
        await host.publish_event("ev", "k", "fresh")
        inst = await host.wait_for_workflow(wid, timeout=3)
    assert inst.data["got"] == ["fresh"]


class NaiveWaiter(StepBody):
    async def run(self, ctx: StepExecutionContext) -> ExecutionResult:
        if not ctx.pointer.event_published:
            return ExecutionResult.wait_for_event("naive-ev", "k", datetime.now())
        return ExecutionResult.next()


async def test_wait_for_event_result_with_a_naive_as_of() -> None:
    definition = WorkflowBuilder(dict).start_with(NaiveWaiter).build("naive-body", 1)
    async with open_host("memory://", definition) as host:
        wid = await host.start_workflow("naive-body", 1, {})
        await until_waiting(host, wid)
        await host.publish_event("naive-ev", "k", None)
        inst = await host.wait_for_workflow(wid, timeout=3)
    assert inst.status is WorkflowStatus.COMPLETE


class AnyTimeWaiter(StepBody):
    """wait_for_event without as_of, like a wait_for without effective_date."""

    got: list[Any] = []  # noqa: RUF012

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult:
        if not ctx.pointer.event_published:
            return ExecutionResult.wait_for_event("any-ev", "k1")
        AnyTimeWaiter.got.append(ctx.pointer.event_data)
        return ExecutionResult.next()


async def test_wait_for_event_result_without_as_of_accepts_pending_events() -> None:
    AnyTimeWaiter.got = []
    definition = WorkflowBuilder(dict).start_with(AnyTimeWaiter).build("body-wait-2", 1)
    async with open_host("memory://", definition) as host:
        await host.publish_event("any-ev", "k1", "pending")
        wid = await host.start_workflow("body-wait-2", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=5)
    assert AnyTimeWaiter.got == ["pending"]
    assert inst.status is WorkflowStatus.COMPLETE


async def test_wait_for_event_result_as_of_excludes_earlier_events() -> None:
    """A subscription's as_of must be at or before the event's time."""
    Waiter.got = []
    definition = WorkflowBuilder(dict).start_with(Waiter).build("body-wait-3", 1)
    async with open_host("memory://", definition) as host:
        await host.publish_event("body-ev", "k1", "before-as-of")
        wid = await host.start_workflow("body-wait-3", 1, {})
        await until_waiting(host, wid)
        assert Waiter.got == []
        await host.publish_event("body-ev", "k1", "after-as-of")
        await host.wait_for_workflow(wid, timeout=5)
    # Were "before-as-of" eligible, it would be the earliest one, delivered instead.
    assert Waiter.got == ["after-as-of"]
