"""Sequences, data in and out, and control flow, run through the engine on virtual time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import attrs
import trio
from core_engine import Engine
from core_models import Counter, Invoice
from trio.testing import MockClock

from wfe.core import (
    ExecutionResult,
    PointerStatus,
    StepBody,
    StepExecutionContext,
    WorkflowBuilder,
    WorkflowCompleted,
    WorkflowStatus,
)
from wfe.core.executor import StepMiddleware


def note(name: str) -> Any:
    """A step function that appends ``name`` to ``data.log`` (attrs) or ``data["log"]``."""

    def step(ctx: StepExecutionContext) -> None:
        data = ctx.workflow.data
        (data["log"] if isinstance(data, dict) else data.log).append(name)

    step.__name__ = name
    return step


async def test_sequence_runs_each_step_once_in_order(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(Counter)
        .start_with(note("a"))
        .then(note("b"))
        .then(note("c"))
        .build("seq", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.log == ["a", "b", "c"]
    assert [p.status for p in instance.execution_pointers] == [PointerStatus.COMPLETE] * 3
    assert instance.complete_time is not None


async def test_completion_publishes_workflow_completed_once(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = WorkflowBuilder(dict).start_with(note("a")).then(note("b")).build("done", 1)
    wid = await engine.start(definition, {"log": []})
    await engine.run(wid)
    completed = [e for e in engine.lifecycle if isinstance(e, WorkflowCompleted)]
    assert [e.workflow_id for e in completed] == [wid]


class Add(StepBody):
    """Adds ``a`` and ``b`` into ``result``."""

    a: int = 0
    b: int = 0
    result: int = 0

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult:
        self.result = self.a + self.b
        return ExecutionResult.next()


async def test_inputs_and_outputs_map_attrs_data(engine: Engine, autojump_clock: MockClock) -> None:
    definition = (
        WorkflowBuilder(Counter)
        .start_with(Add)
        .input("a", lambda data, ctx: data.n)
        .input("b", lambda data: data.limit)
        .output("n", lambda step: step.result)
        .then(Add)
        .input("a", lambda data: data.n)
        .input("b", 100)
        .output(lambda step, data: setattr(data, "text", f"sum={step.result}"))
        .build("attrs-io", 1)
    )
    wid = await engine.start(definition, Counter(n=2, limit=3))
    instance = await engine.run(wid)
    assert isinstance(instance.data, Counter)
    assert instance.data.n == 5
    assert instance.data.text == "sum=105"


async def test_inputs_and_outputs_map_dict_data(engine: Engine, autojump_clock: MockClock) -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(Add)
        .input("a", lambda data: data["x"])
        .input("b", lambda data: data["y"])
        .output("sum", lambda step: step.result)
        .build("dict-io", 1)
    )
    wid = await engine.start(definition, {"x": 20, "y": 22})
    instance = await engine.run(wid)
    assert instance.data == {"x": 20, "y": 22, "sum": 42}


class AddMoney(StepBody):
    """Adds Decimals."""

    amount: Decimal = Decimal("0")
    total: Decimal = Decimal("0")

    async def run(self, ctx: StepExecutionContext) -> None:
        self.total = self.total + self.amount


async def test_decimal_data_stays_exact_across_checkpoints(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(Invoice)
        .start_with(AddMoney)
        .input("amount", lambda data: data.amount)
        .input("total", lambda data: data.total)
        .output("total", lambda step: step.total)
        .then(AddMoney)
        .input("amount", Decimal("0.20"))
        .input("total", lambda data: data.total)
        .output("total", lambda step: step.total)
        .build("money", 1)
    )
    wid = await engine.start(definition, Invoice(amount=Decimal("0.10")))
    instance = await engine.run(wid)
    assert instance.data.total == Decimal("0.30")
    assert isinstance(instance.data.total, Decimal)
    assert str(instance.data.total) == "0.30"


async def test_step_mutating_workflow_data_is_saved_with_its_checkpoint(
    engine: Engine, autojump_clock: MockClock
) -> None:
    def grow(ctx: StepExecutionContext) -> None:
        ctx.workflow.data.items.append(len(ctx.workflow.data.items))

    definition = WorkflowBuilder(Counter).start_with(grow).then(grow).build("mutate", 1)
    wid = await engine.start(definition, Counter())
    await engine.run(wid)
    stored = await engine.persistence.get_workflow(wid)
    assert stored.data.items == [0, 1]


async def test_async_function_step_runs(engine: Engine, autojump_clock: MockClock) -> None:
    async def step(ctx: StepExecutionContext) -> ExecutionResult:
        ctx.workflow.data["ran"] = True
        return ExecutionResult.next()

    definition = WorkflowBuilder(dict).start_with(step).build("async-fn", 1)
    wid = await engine.start(definition, {})
    assert (await engine.run(wid)).data == {"ran": True}


async def test_if_runs_its_branch_only_when_the_condition_holds(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(Counter)
        .start_with(note("start"))
        .if_do(lambda data: data.flag, lambda b: b.start_with(note("inside")))
        .then(note("after"))
        .build("if", 1)
    )
    yes = await engine.start(definition, Counter(flag=True))
    no = await engine.start(definition, Counter(flag=False))
    assert (await engine.run(yes)).data.log == ["start", "inside", "after"]
    assert (await engine.run(no)).data.log == ["start", "after"]


async def test_while_repeats_its_body_until_the_condition_fails(
    engine: Engine, autojump_clock: MockClock
) -> None:
    def bump(ctx: StepExecutionContext) -> None:
        ctx.workflow.data.n += 1

    definition = (
        WorkflowBuilder(Counter)
        .start_with(note("start"))
        .while_do(lambda data: data.n < 4, lambda b: b.start_with(bump).then(note("loop")))
        .then(note("end"))
        .build("while", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.n == 4
    assert instance.data.log == ["start", "loop", "loop", "loop", "loop", "end"]


async def test_for_each_sequential_visits_items_in_order(
    engine: Engine, autojump_clock: MockClock
) -> None:
    def visit(ctx: StepExecutionContext) -> None:
        ctx.workflow.data.items.append(ctx.item)

    definition = (
        WorkflowBuilder(Counter)
        .start_with(note("start"))
        .for_each(lambda data: [3, 1, 2], lambda b: b.start_with(visit), parallel=False)
        .then(note("end"))
        .build("each-seq", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.data.items == [3, 1, 2]
    assert instance.data.log == ["start", "end"]


async def test_for_each_parallel_runs_items_concurrently(
    engine: Engine, autojump_clock: MockClock
) -> None:
    """Every item's step is running before any finishes: the items run at the same time."""
    started: list[int] = []
    all_started = trio.Event()

    async def visit(ctx: StepExecutionContext) -> None:
        started.append(ctx.item)
        if len(started) == 3:
            all_started.set()
        await all_started.wait()
        ctx.workflow.data.items.append(ctx.item)

    definition = (
        WorkflowBuilder(Counter)
        .start_with(note("start"))
        .for_each(lambda data: [1, 2, 3], lambda b: b.start_with(visit))
        .then(note("end"))
        .build("each-par", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert sorted(started) == [1, 2, 3]
    assert sorted(instance.data.items) == [1, 2, 3]
    assert instance.data.log == ["start", "end"]


async def test_for_each_over_no_items_continues(engine: Engine, autojump_clock: MockClock) -> None:
    definition = (
        WorkflowBuilder(Counter)
        .start_with(note("start"))
        .for_each(lambda data: [], lambda b: b.start_with(note("never")))
        .then(note("end"))
        .build("each-empty", 1)
    )
    wid = await engine.start(definition, Counter())
    assert (await engine.run(wid)).data.log == ["start", "end"]


async def test_parallel_runs_every_branch_and_joins_before_continuing(
    engine: Engine, autojump_clock: MockClock
) -> None:
    both = trio.Event()
    arrived: list[str] = []

    def branch(name: str) -> Any:
        async def step(ctx: StepExecutionContext) -> None:
            arrived.append(name)
            if len(arrived) == 2:
                both.set()
            await both.wait()
            ctx.workflow.data.log.append(name)

        return step

    definition = (
        WorkflowBuilder(Counter)
        .start_with(note("start"))
        .parallel()
        .do(lambda b: b.start_with(branch("left")).then(note("left-2")))
        .do(lambda b: b.then(branch("right")))
        .join()
        .then(note("joined"))
        .build("parallel", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    log = instance.data.log
    assert log[0] == "start"
    assert log[-1] == "joined"
    assert sorted(log[1:-1]) == ["left", "left-2", "right"]
    assert log.index("left") < log.index("left-2")


async def test_decide_continues_only_into_the_matching_branch(
    engine: Engine, autojump_clock: MockClock
) -> None:
    builder = WorkflowBuilder(Counter)
    small = builder.create_branch()
    small.start_with(note("small"))
    big = builder.create_branch()
    big.start_with(note("big")).then(note("big-2"))
    definition = (
        builder.start_with(note("start"))
        .decide(lambda data: "big" if data.n > 10 else "small")
        .branch("small", small)
        .branch("big", big)
        .build("decide", 1)
    )
    big_id = await engine.start(definition, Counter(n=50))
    small_id = await engine.start(definition, Counter(n=1))
    assert (await engine.run(big_id)).data.log == ["start", "big", "big-2"]
    assert (await engine.run(small_id)).data.log == ["start", "small"]


async def test_every_matching_when_runs(engine: Engine, autojump_clock: MockClock) -> None:
    def outcome(ctx: StepExecutionContext) -> ExecutionResult:
        return ExecutionResult.outcome(ctx.workflow.data.n)

    definition = (
        WorkflowBuilder(Counter)
        .start_with(outcome)
        .when(1)
        .do(lambda b: b.start_with(note("one")))
        .when(2)
        .do(lambda b: b.start_with(note("two")))
        .when(lambda data: data.limit)
        .do(lambda b: b.start_with(note("limit")))
        .then(note("after"))
        .build("when", 1)
    )
    wid = await engine.start(definition, Counter(n=2, limit=2))
    log = (await engine.run(wid)).data.log
    assert sorted(log[:-1]) == ["limit", "two"]
    assert log[-1] == "after"


async def test_end_workflow_completes_and_skips_the_rest(
    engine: Engine, autojump_clock: MockClock
) -> None:
    definition = (
        WorkflowBuilder(Counter)
        .start_with(note("a"))
        .end_workflow()
        .then(note("never"))
        .build("end", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.log == ["a"]
    assert any(isinstance(e, WorkflowCompleted) for e in engine.lifecycle)


async def test_end_workflow_inside_a_parallel_branch_cancels_the_other(
    engine: Engine, autojump_clock: MockClock
) -> None:
    async def forever(ctx: StepExecutionContext) -> None:
        await trio.sleep_forever()

    definition = (
        WorkflowBuilder(Counter)
        .start_with(note("start"))
        .parallel()
        .do(lambda b: b.start_with(forever).name("forever"))
        .do(lambda b: b.start_with(note("quick")).end_workflow())
        .join()
        .then(note("never"))
        .build("end-par", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.log == ["start", "quick"]
    statuses = {p.step_name: p.status for p in instance.execution_pointers if p.step_name}
    assert statuses["forever"] is PointerStatus.CANCELLED


async def test_attach_jumps_back_to_the_named_step(
    engine: Engine, autojump_clock: MockClock
) -> None:
    def bump(ctx: StepExecutionContext) -> None:
        ctx.workflow.data.n += 1

    builder = WorkflowBuilder(Counter)
    again = builder.create_branch()
    again.start_with(note("again")).attach("top")
    definition = (
        builder.start_with(bump)
        .id("top")
        .decide(lambda data: "loop" if data.n < 3 else "done")
        .branch("loop", again)
        .build("goto", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.n == 3
    assert instance.data.log == ["again", "again"]


async def test_step_body_sees_its_pointer_and_workflow(
    engine: Engine, autojump_clock: MockClock
) -> None:
    seen: list[tuple[str, str]] = []

    def look(ctx: StepExecutionContext) -> None:
        seen.append((ctx.workflow.id, ctx.pointer.step_name or ""))

    definition = WorkflowBuilder(dict).start_with(look).name("Look").build("ctx", 1)
    wid = await engine.start(definition, {})
    await engine.run(wid)
    assert seen == [(wid, "Look")]


async def test_persist_result_runs_the_step_again_with_its_data(
    engine: Engine, autojump_clock: MockClock
) -> None:
    runs: list[Any] = []

    def counting(ctx: StepExecutionContext) -> ExecutionResult:
        runs.append(ctx.persistence_data)
        count = (ctx.persistence_data or 0) + 1
        return ExecutionResult.next() if count == 3 else ExecutionResult.persist(count)

    definition = WorkflowBuilder(dict).start_with(counting).build("persist", 1)
    wid = await engine.start(definition, {})
    assert (await engine.run(wid)).status is WorkflowStatus.COMPLETE
    assert runs == [None, 1, 2]


async def test_step_middleware_wraps_every_step_body_in_order(
    engine: Engine, autojump_clock: MockClock
) -> None:
    calls: list[str] = []

    def middleware(tag: str) -> StepMiddleware:
        async def mw(
            ctx: StepExecutionContext,
            body: StepBody,
            call_next: Callable[[], Awaitable[ExecutionResult | None]],
        ) -> ExecutionResult | None:
            calls.append(f"{tag}>{ctx.step.display_name}")
            result = await call_next()
            calls.append(f"{tag}<{ctx.step.display_name}")
            return result

        return mw

    engine.env = attrs.evolve(engine.env, step_middleware=[middleware("outer"), middleware("in")])
    definition = (
        WorkflowBuilder(Counter).start_with(note("a")).name("A").then(note("b")).name("B")
    ).build("mw", 1)
    wid = await engine.start(definition, Counter())
    assert (await engine.run(wid)).data.log == ["a", "b"]
    assert calls == ["outer>A", "in>A", "in<A", "outer<A", "outer>B", "in>B", "in<B", "outer<B"]


async def test_parallel_steps_of_one_instance_are_bounded_by_max_parallel_steps(
    engine: Engine, autojump_clock: MockClock
) -> None:
    running = 0
    peak = 0

    async def busy(ctx: StepExecutionContext) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(1)  # virtual time: lets the other items start if they may
        running -= 1

    engine.env = attrs.evolve(engine.env, max_parallel_steps=2)
    definition = (
        WorkflowBuilder(Counter)
        .start_with(note("start"))
        .for_each(lambda data: list(range(6)), lambda b: b.start_with(busy))
        .build("bounded", 1)
    )
    wid = await engine.start(definition, Counter())
    assert (await engine.run(wid)).status is WorkflowStatus.COMPLETE
    assert peak == 2


async def test_nested_for_each_sees_the_inner_item(
    engine: Engine, autojump_clock: MockClock
) -> None:
    seen: list[int] = []
    definition = (
        WorkflowBuilder(Counter)
        .start_with(lambda ctx: None)
        .for_each(
            lambda data: [1, 2],
            lambda outer: outer.start_with(lambda ctx: None).for_each(
                lambda data, ctx: [ctx.item * 10, ctx.item * 10 + 1],
                lambda inner: inner.start_with(lambda ctx: seen.append(ctx.item)),
                parallel=False,
            ),
        )
        .build("nested", 1)
    )
    wid = await engine.start(definition, Counter())
    assert (await engine.run(wid)).status is WorkflowStatus.COMPLETE
    assert sorted(seen) == [10, 11, 20, 21]
    assert seen.index(10) < seen.index(11)
    assert seen.index(20) < seen.index(21)


async def test_end_workflow_deep_inside_a_loop_closes_every_pointer(
    engine: Engine, autojump_clock: MockClock
) -> None:
    def bump(ctx: StepExecutionContext) -> None:
        ctx.workflow.data.n += 1

    definition = (
        WorkflowBuilder(Counter)
        .start_with(lambda ctx: None)
        .while_do(
            lambda data: True,
            lambda b: b.start_with(bump).if_do(
                lambda data: data.n == 5, lambda i: i.start_with(lambda ctx: None).end_workflow()
            ),
        )
        .then(note("never"))
        .build("end-deep", 1)
    )
    wid = await engine.start(definition, Counter())
    instance = await engine.run(wid)
    assert instance.status is WorkflowStatus.COMPLETE
    assert instance.data.n == 5
    assert instance.data.log == []
    assert all(p.end_time is not None for p in instance.execution_pointers)
