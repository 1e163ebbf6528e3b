"""Host behaviour a first day meets: idempotent starts by id, the last error named by a
timed-out wait, step errors logged, and every attempt of a retried step announced."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from wfe.core import (
    ErrorBehavior,
    StepStarted,
    WorkflowBuilder,
    WorkflowCompleted,
    WorkflowStatus,
    WorkflowTimeoutError,
)

from .conftest import HostFactory


def _noop() -> WorkflowBuilder[dict[str, object]]:
    return WorkflowBuilder(dict)


async def test_starting_an_existing_workflow_id_returns_it(host_factory: HostFactory) -> None:
    """A second start with the same ``workflow_id`` creates nothing and returns the id."""
    definition = _noop().start_with(lambda ctx: None).name("a").build("idem", 1)
    async with host_factory(definition) as host:
        first = await host.start_workflow("idem", 1, {"n": 1}, workflow_id="order-42")
        await host.wait_for_workflow(first, timeout=10)
        again = await host.start_workflow("idem", 1, {"n": 2}, workflow_id="order-42")
        assert first == again == "order-42"
        instance = await host.get_workflow("order-42")
        assert instance.data == {"n": 1}
        assert instance.status is WorkflowStatus.COMPLETE
        listed = await host.list_workflows(definition_id="idem")
        assert [i.id for i in listed] == ["order-42"]


async def test_wait_timeout_names_the_last_error(
    host_factory: HostFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A step failing under retries: the timeout says why, and each error is logged
    with the step's name."""

    def charge(ctx: object) -> None:
        raise RuntimeError("card declined")

    definition = (
        _noop()
        .start_with(charge)
        .name("Charge")
        .on_error(ErrorBehavior.retry(timedelta(milliseconds=20), max_retries=None))
        .build("charging", 1)
    )
    caplog.set_level(logging.WARNING, logger="wfe.host.steps")
    async with host_factory(definition) as host:
        wid = await host.start_workflow("charging", 1, {})
        with pytest.raises(WorkflowTimeoutError) as raised:
            await host.wait_for_workflow(wid, timeout=0.5)
        await host.terminate_workflow(wid)
    assert "card declined" in str(raised.value)
    assert "'Charge'" in str(raised.value)
    logged = [r.getMessage() for r in caplog.records if r.name == "wfe.host.steps"]
    assert logged, "no step error was logged"
    assert all(wid in m and "'Charge'" in m and "card declined" in m for m in logged)


async def test_every_attempt_is_announced_with_its_number(host_factory: HostFactory) -> None:
    """StepStarted comes for each attempt (1, 2, 3), before that attempt's completion."""
    tries = {"n": 0}

    def flaky(ctx: object) -> None:
        tries["n"] += 1
        if tries["n"] < 3:
            raise RuntimeError(f"attempt {tries['n']} failed")

    definition = (
        _noop()
        .start_with(flaky)
        .name("flaky")
        .on_error(ErrorBehavior.retry(timedelta(milliseconds=10), max_retries=5))
        .then(lambda ctx: None)
        .name("after")
        .build("retried", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("retried", 1, {})
        await host.wait_for_workflow(wid, timeout=10)
        names: list[tuple[str, object, int]] = []
        async for ev in host.lifecycle_events():
            if ev.workflow_instance_id != wid:
                continue
            if isinstance(ev, StepStarted):
                names.append(("started", ev.step_name, ev.attempt))
            elif isinstance(ev, WorkflowCompleted):
                break
    assert names == [
        ("started", "flaky", 1),
        ("started", "flaky", 2),
        ("started", "flaky", 3),
        ("started", "after", 1),
    ]


async def test_a_waiting_step_is_announced_once(host_factory: HostFactory) -> None:
    """A delay and a wait_for continue their run when woken: one StepStarted each."""
    definition = (
        _noop()
        .start_with(lambda ctx: None)
        .name("begin")
        .delay(timedelta(milliseconds=20))
        .name("nap")
        .wait_for("go", "k")
        .name("wait")
        .build("waiting", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("waiting", 1, {})
        started: list[object] = []
        async for ev in host.lifecycle_events():
            if ev.workflow_instance_id != wid:
                continue
            if isinstance(ev, StepStarted):
                started.append(ev.step_name)
                if ev.step_name == "wait":
                    await host.publish_event("go", "k", 1)
            elif isinstance(ev, WorkflowCompleted):
                break
    assert started == ["begin", "nap", "wait"]
