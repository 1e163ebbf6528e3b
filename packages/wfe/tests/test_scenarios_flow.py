"""Ports of workflow-core's flow scenarios (Basic, DataIO, If, While, Foreach, ...)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import trio

from wfe.core import (
    ExecutionResult,
    PointerStatus,
    StepBody,
    StepExecutionContext,
    WorkflowBuilder,
    WorkflowStatus,
)

from .conftest import HostFactory


async def test_basic_two_steps_run_once(host_factory: HostFactory) -> None:
    """Basic: each of two steps runs exactly once and the workflow completes."""
    calls = {"hello": 0, "bye": 0}

    class Hello(StepBody):
        async def run(self, ctx: StepExecutionContext) -> ExecutionResult:
            calls["hello"] += 1
            return ExecutionResult.next()

    def bye(ctx: StepExecutionContext) -> None:
        calls["bye"] += 1

    definition = WorkflowBuilder(dict).start_with(Hello).then(bye).build("basic", 1)
    async with host_factory(definition) as host:
        wid = await host.start_workflow("basic", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert calls == {"hello": 1, "bye": 1}
    assert instance.complete_time is not None


@attrs.define
class Numbers:
    value1: int = 0
    value2: int = 0
    value3: int = 0
    money: Decimal = Decimal("0")


class AddNumbers(StepBody):
    input1: int = 0
    input2: int = 0
    output: int = 0

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult:
        self.output = self.input1 + self.input2
        return ExecutionResult.next()


async def test_data_io_inputs_and_outputs(host_factory: HostFactory) -> None:
    """DataIO: inputs map data into the step, outputs map results back; Decimal stays exact."""
    definition = (
        WorkflowBuilder(Numbers)
        .start_with(AddNumbers)
        .input("input1", lambda data: data.value1)
        .input("input2", lambda data: data.value2)
        .output("value3", lambda step: step.output)
        .then(lambda ctx: None)
        .output(lambda step, data: setattr(data, "money", data.money + Decimal("0.10")))
        .build("dataio", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("dataio", 1, Numbers(2, 3, 0, Decimal("1.20")))
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert isinstance(instance.data, Numbers)
    assert instance.data.value3 == 5
    assert instance.data.money == Decimal("1.30")
    assert isinstance(instance.data.money, Decimal)


async def test_data_io_with_dict_data(host_factory: HostFactory) -> None:
    """Outputs by name set keys when the data is a dict."""
    definition = (
        WorkflowBuilder(dict)
        .start_with(AddNumbers)
        .input("input1", lambda data: data["a"])
        .input("input2", lambda data, ctx: data["b"])
        .output("sum", lambda step: step.output)
        .build("dataio-dict", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("dataio-dict", None, {"a": 4, "b": 5})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.data == {"a": 4, "b": 5, "sum": 9}


async def test_if_runs_only_matching_blocks_in_order(host_factory: HostFactory) -> None:
    """If: of three chained ifs only the matching blocks run, in order."""
    order: list[str] = []
    definition = (
        WorkflowBuilder(Numbers)
        .start_with(lambda ctx: None)
        .if_do(
            lambda d: d.value1 > 2,
            lambda b: b.start_with(lambda ctx: order.append("a")),
        )
        .if_do(
            lambda d: d.value1 > 10,
            lambda b: b.start_with(lambda ctx: order.append("b")),
        )
        .if_do(
            lambda d: d.value1 == 5,
            lambda b: b.start_with(lambda ctx: order.append("c1")).then(
                lambda ctx: order.append("c2")
            ),
        )
        .then(lambda ctx: order.append("end"))
        .build("if", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("if", 1, Numbers(value1=5))
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert order == ["a", "c1", "c2", "end"]


async def test_while_runs_body_until_condition_false(host_factory: HostFactory) -> None:
    """While: the body runs until the condition is false, then the flow continues."""
    seen: list[int] = []

    def body(ctx: StepExecutionContext) -> None:
        ctx.workflow.data.value1 += 1
        seen.append(ctx.workflow.data.value1)

    definition = (
        WorkflowBuilder(Numbers)
        .start_with(lambda ctx: None)
        .while_do(lambda d: d.value1 < 3, lambda b: b.start_with(body))
        .then(lambda ctx: seen.append(-1))
        .build("while", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("while", 1, Numbers())
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert seen == [1, 2, 3, -1]
    assert instance.data.value1 == 3


async def test_foreach_parallel_checksum(host_factory: HostFactory) -> None:
    """Foreach: [2, 2, 3] in parallel sums to 7."""
    total = {"sum": 0}

    def add(ctx: StepExecutionContext) -> None:
        total["sum"] += ctx.item

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .for_each(lambda d: [2, 2, 3], lambda b: b.start_with(add))
        .build("foreach", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("foreach", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert total["sum"] == 7


async def test_foreach_empty_sequential_skips_body(host_factory: HostFactory) -> None:
    """An empty sequential for-each skips its body and continues."""
    ran: list[Any] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .for_each(lambda d: [], lambda b: b.start_with(lambda ctx: ran.append(1)), parallel=False)
        .then(lambda ctx: ran.append("after"))
        .build("foreach-empty", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("foreach-empty", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert ran == ["after"]


async def test_foreach_sync_keeps_order_through_delays(host_factory: HostFactory) -> None:
    """ForeachSync: sequential items run in order, even when each body sleeps."""
    from datetime import timedelta

    order: list[int] = []
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .for_each(
            lambda d: [1, 2, 3, 4],
            lambda b: (
                b.start_with(lambda ctx: order.append(ctx.item))
                .delay(lambda d, ctx: timedelta(milliseconds=50 * (5 - ctx.item)))
                .then(lambda ctx: order.append(-ctx.item))
            ),
            parallel=False,
        )
        .build("foreach-sync", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("foreach-sync", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    assert instance.status is WorkflowStatus.COMPLETE
    assert order == [1, -1, 2, -2, 3, -3, 4, -4]


async def test_parallel_branches_run_concurrently(host_factory: HostFactory) -> None:
    """Three branches are in their steps at the same time: each waits until all three
    have started, which one after another would never happen (no timing assumed)."""
    started: list[int] = []
    all_in = trio.Event()

    async def nap(ctx: StepExecutionContext) -> None:
        started.append(1)
        if len(started) == 3:
            all_in.set()
        with trio.fail_after(10):
            await all_in.wait()

    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .parallel()
        .do(lambda b: b.start_with(nap))
        .do(lambda b: b.start_with(nap))
        .do(lambda b: b.start_with(nap))
        .join()
        .build("parallel-naps", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("parallel-naps", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=30)
    assert instance.status is WorkflowStatus.COMPLETE, instance
    assert len(started) == 3


async def test_pointers_record_history(host_factory: HostFactory) -> None:
    """Every step visit leaves a completed pointer with start and end times."""
    definition = (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .name("one")
        .then(lambda ctx: None)
        .name("two")
        .build("history", 1)
    )
    async with host_factory(definition) as host:
        wid = await host.start_workflow("history", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=10)
    names = [p.step_name for p in instance.execution_pointers]
    assert names == ["one", "two"]
    for p in instance.execution_pointers:
        assert p.status is PointerStatus.COMPLETE
        assert p.start_time is not None
        assert p.end_time is not None
