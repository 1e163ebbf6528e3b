"""Black-box acceptance tests of DESIGN.md, written from the design text alone.

§4: the control-flow verbs (attach, if/while/for-each, parallel, decide, delay,
recur, schedule, sub-workflows, end).
Stores: the in-memory store and ``sqlite:///<tmp>``.
"""

from __future__ import annotations

import itertools
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from wfe.core import (
    ExecutionPointer,
    StepExecutionContext,
    WorkflowBuilder,
    WorkflowCompleted,
    WorkflowDefinition,
    WorkflowStatus,
)

# The helpers and data classes live in sibling modules so that they are importable by name
# (pytest's importlib mode does not put tests/ on sys.path).
sys.path.insert(0, str(Path(__file__).parent))
from acceptance_models import Counter
from acceptance_support import (
    _true,
    collecting,
    eventually,
    open_host,
    recorder,
    store_fixture,  # noqa: F401  (the ``store`` fixture)
    types_for,
    until_waiting,
    virtual_host,
)

# --------------------------------------------------------------------------- §4 control flow


async def test_attach_goes_to_the_step_with_that_external_id(store: str) -> None:
    """attach(external_id): after "c" the flow also goes to step "e"."""
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(recorder(log, "a"))
        .then(recorder(log, "c"))
        .attach("e")
        .then(recorder(log, "d"))
        .then(recorder(log, "e"))
        .id("e")
        .build("attach", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("attach", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert log[:2] == ["a", "c"]
    assert log.count("e") == 2
    assert log.count("d") == 1


@pytest.mark.parametrize("flag", [True, False])
async def test_if_do(store: str, flag: bool) -> None:
    log: list[str] = []
    definition = (
        WorkflowBuilder(Counter)
        .start_with(recorder(log, "start"))
        .if_do(lambda data, *_: data.flag, lambda b: b.start_with(recorder(log, "inside")))
        .then(recorder(log, "after"))
        .build("if", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("if", 1, Counter(flag=flag))
        await host.wait_for_workflow(wid, timeout=10)
    assert log == (["start", "inside", "after"] if flag else ["start", "after"])


async def test_while_do_loops_until_false(store: str) -> None:
    def inc(ctx: StepExecutionContext) -> None:
        ctx.workflow.data.n += 1

    definition = (
        WorkflowBuilder(Counter)
        .start_with(lambda ctx: None)
        .while_do(lambda data, *_: data.n < 3, lambda b: b.start_with(inc))
        .build("while", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("while", 1, Counter())
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert inst.data.n == 3


@pytest.mark.parametrize("parallel", [True, False])
async def test_for_each_exposes_ctx_item(store: str, parallel: bool) -> None:
    seen: list[Any] = []
    definition = (
        WorkflowBuilder(Counter)
        .start_with(lambda ctx: None)
        .for_each(
            lambda data, *_: data.items,
            lambda b: b.start_with(lambda ctx: seen.append(ctx.item)),
            parallel=parallel,
        )
        .then(lambda ctx: seen.append("after"))
        .build("foreach", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("foreach", 1, Counter(items=[3, 1, 2]))
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    if parallel:
        assert sorted(seen[:3]) == [1, 2, 3]
    else:
        assert seen[:3] == [3, 1, 2]
    assert seen[3:] == ["after"]


async def test_parallel_for_each_items_run_concurrently(store: str) -> None:
    """§6 Parallel is parallel: for-each items meet at a rendezvous only concurrency can reach."""
    arrived = 0
    all_here = trio.Event()

    async def meet(ctx: StepExecutionContext) -> None:
        nonlocal arrived
        arrived += 1
        if arrived == 3:
            all_here.set()
        with trio.fail_after(5):
            await all_here.wait()

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .for_each(lambda data, *_: data["items"], lambda b: b.start_with(meet), parallel=True)
        .build("pfe", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("pfe", 1, {"items": [1, 2, 3]})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE


async def test_parallel_branches_run_concurrently(store: str) -> None:
    """parallel().do(...).do(...).join(): branches rendezvous; the join waits for both."""
    log: list[str] = []
    a_ready, b_ready = trio.Event(), trio.Event()

    async def branch_a(ctx: StepExecutionContext) -> None:
        a_ready.set()
        with trio.fail_after(5):
            await b_ready.wait()
        log.append("a")

    async def branch_b(ctx: StepExecutionContext) -> None:
        b_ready.set()
        with trio.fail_after(5):
            await a_ready.wait()
        log.append("b")

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .parallel()
        .do(lambda b: b.start_with(branch_a))
        .do(lambda b: b.then(branch_b))
        .join()
        .then(recorder(log, "joined"))
        .build("par", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("par", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert sorted(log[:2]) == ["a", "b"]
    assert log[2:] == ["joined"]


@pytest.mark.parametrize(("choice", "expected"), [("x", ["X"]), ("y", ["Y", "Y2"])])
async def test_decide_branches(store: str, choice: str, expected: list[str]) -> None:
    """decide(fn(data, ctx)).branch(value, branch), branches from builder.create_branch()."""
    log: list[str] = []
    builder = WorkflowBuilder(dict)
    branch_x = builder.create_branch()
    branch_x.start_with(recorder(log, "X"))
    branch_y = builder.create_branch()
    branch_y.start_with(recorder(log, "Y")).then(recorder(log, "Y2"))
    definition = (
        builder.start_with(lambda ctx: None)
        .decide(lambda data, ctx: data["choice"])
        .branch("x", branch_x)
        .branch("y", branch_y)
        .build("decide", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("decide", 1, {"choice": choice})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert log == expected


def test_decide_branch_accepts_a_chained_create_branch() -> None:
    """The workflow-core idiom: branch = builder.create_branch().start_with(...).then(...)."""
    builder = WorkflowBuilder(dict)
    branch = builder.create_branch().start_with(lambda ctx: None).then(lambda ctx: None)
    definition = (
        builder.start_with(lambda ctx: None)
        .decide(lambda data, ctx: 1)
        .branch(1, branch)
        .build("decide-chained", 1)
    )
    assert isinstance(definition, WorkflowDefinition)


@pytest.mark.parametrize("as_fn", [False, True], ids=["duration", "fn"])
async def test_delay(store: str, as_fn: bool) -> None:
    stamps: list[float] = []
    duration = timedelta(milliseconds=300)
    delay_arg: Any = (lambda data, ctx: duration) if as_fn else duration
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: stamps.append(time.monotonic()))
        .delay(delay_arg)
        .then(lambda ctx: stamps.append(time.monotonic()))
        .build("delay", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("delay", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert stamps[1] - stamps[0] >= 0.29


async def test_recur_until(autojump_clock: trio.testing.MockClock) -> None:
    """recur(interval, until).do(...) repeats the block every interval until `until` holds."""
    runs: list[float] = []

    def tick(ctx: StepExecutionContext) -> None:
        runs.append(trio.current_time())
        ctx.workflow.data["n"] += 1

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .recur(timedelta(hours=1), lambda data, *_: data["n"] >= 3)
        .do(lambda b: b.start_with(tick))
        .build("recur", 1)
    )
    async with virtual_host(definition) as host:
        wid = await host.start_workflow("recur", 1, {"n": 0})
        inst = await host.wait_for_workflow(wid, timeout=timedelta(days=1))
    assert inst.status is WorkflowStatus.COMPLETE
    assert len(runs) == 3
    assert all(b - a >= 3600 for a, b in itertools.pairwise(runs))


async def test_schedule_runs_block_after_interval(autojump_clock: trio.testing.MockClock) -> None:
    ran: list[float] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .schedule(timedelta(hours=2))
        .do(lambda b: b.start_with(lambda ctx: ran.append(trio.current_time())))
        .build("schedule", 1)
    )
    async with virtual_host(definition) as host:
        wid = await host.start_workflow("schedule", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=timedelta(days=1))
    assert inst.status is WorkflowStatus.COMPLETE
    assert len(ran) == 1
    assert ran[0] >= 7200


async def test_sub_workflow_exposes_child_id_status_data(store: str) -> None:
    def child_step(ctx: StepExecutionContext) -> None:
        ctx.workflow.data["doubled"] = ctx.workflow.data["n"] * 2

    child = WorkflowBuilder(dict).start_with(child_step).build("child", 1)
    other = WorkflowBuilder(dict).start_with(child_step).build("child", 2)

    def record(step: Any, data: Any) -> None:
        data["child_id"] = step.child_id
        data["child_status"] = step.child_status
        data["child_data"] = step.child_data

    parent = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .sub_workflow("child", version=1, data=lambda data, ctx: {"n": data["n"]})
        .output(record)
        .then(lambda ctx: None)
        .build("parent", 1)
    )
    async with open_host(store, child, other, parent) as host:
        wid = await host.start_workflow("parent", 1, {"n": 21})
        inst = await host.wait_for_workflow(wid, timeout=10)
        assert inst.status is WorkflowStatus.COMPLETE
        child_inst = await host.get_workflow(inst.data["child_id"])
    assert child_inst.definition_id == "child"
    assert child_inst.version == 1
    assert child_inst.status is WorkflowStatus.COMPLETE
    assert inst.data["child_status"] == WorkflowStatus.COMPLETE
    assert inst.data["child_data"]["doubled"] == 42


async def test_sub_workflow_without_version_uses_latest(store: str) -> None:
    v1 = WorkflowBuilder(dict).start_with(lambda ctx: None).build("kid", 1)
    v2 = WorkflowBuilder(dict).start_with(lambda ctx: None).build("kid", 2)
    parent = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .sub_workflow("kid", data=lambda data, ctx: {})
        .output("child_id", lambda step: step.child_id)
        .build("parent-latest", 1)
    )
    async with open_host(store, v1, v2, parent) as host:
        wid = await host.start_workflow("parent-latest", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
        kid = await host.get_workflow(inst.data["child_id"])
    assert kid.version == 2


async def test_sub_workflow_finishes_on_terminated_child(store: str) -> None:
    """§6: a sub-workflow step finishes on any terminal status of the child, with its data."""
    child_ids: list[str] = []

    def note(ctx: StepExecutionContext) -> None:
        child_ids.append(ctx.workflow.id)
        ctx.workflow.data["noted"] = True

    child = WorkflowBuilder(dict).start_with(note).wait_for("never", "k").build("tchild", 1)
    parent = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .sub_workflow("tchild", data=lambda data, ctx: {})
        .output("child_status", lambda step: step.child_status)
        .output("child_data", lambda step: step.child_data)
        .then(lambda ctx: None)
        .build("tparent", 1)
    )
    async with open_host(store, child, parent) as host:
        wid = await host.start_workflow("tparent", 1, {})
        await eventually(lambda: _true(bool(child_ids)))
        await until_waiting(host, child_ids[0])
        assert await host.terminate_workflow(child_ids[0]) is True
        inst = await host.wait_for_workflow(wid, timeout=10)
    assert inst.status is WorkflowStatus.COMPLETE
    assert inst.data["child_status"] == WorkflowStatus.TERMINATED
    assert inst.data["child_data"] == {"noted": True}


async def test_end_workflow_completes_and_publishes_workflow_completed(store: str) -> None:
    """§6: end_workflow() completes the workflow (nothing later runs) + WorkflowCompleted."""
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(recorder(log, "a"))
        .if_do(lambda data, *_: True, lambda b: b.start_with(recorder(log, "b")).end_workflow())
        .then(recorder(log, "never"))
        .build("end", 1)
    )
    async with open_host(store, definition) as host, collecting(host) as seen:
        wid = await host.start_workflow("end", 1, {})
        inst = await host.wait_for_workflow(wid, timeout=10)
        await eventually(lambda: _true(WorkflowCompleted in types_for(seen, wid)))
    assert inst.status is WorkflowStatus.COMPLETE
    assert log == ["a", "b"]
    assert types_for(seen, wid).count(WorkflowCompleted) == 1


async def test_inside_do_the_first_verb_may_be_then(store: str) -> None:
    log: list[str] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .if_do(lambda data, *_: True, lambda b: b.then(recorder(log, "x")).then(recorder(log, "y")))
        .build("first-then", 1)
    )
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("first-then", 1, {})
        await host.wait_for_workflow(wid, timeout=10)
    assert log == ["x", "y"]


async def test_ctx_exposes_workflow_pointer_item(store: str) -> None:
    seen: dict[str, Any] = {}

    def look(ctx: StepExecutionContext) -> None:
        seen["workflow_id"] = ctx.workflow.id
        seen["data"] = ctx.workflow.data
        seen["pointer"] = ctx.pointer
        seen["item"] = ctx.item
        seen["persistence_data"] = ctx.persistence_data

    definition = WorkflowBuilder(dict).start_with(look).build("ctx", 1)
    async with open_host(store, definition) as host:
        wid = await host.start_workflow("ctx", 1, {"a": 1})
        await host.wait_for_workflow(wid, timeout=10)
    assert seen["workflow_id"] == wid
    assert seen["data"] == {"a": 1}
    assert isinstance(seen["pointer"], ExecutionPointer)
    assert seen["item"] is None
    assert seen["persistence_data"] is None
