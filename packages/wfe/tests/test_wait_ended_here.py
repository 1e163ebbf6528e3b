"""``wait_for_workflow`` on a workflow this host runs to its end returns the end as its
final checkpoint stored it, without reading it back: the same instance a read gives
(typed data, every pointer, times), a copy of its own for each caller, and nothing kept
once the callers have it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import trio
import trio.testing

from wfe.core import StepExecutionContext, WorkflowBuilder, WorkflowStatus
from wfe.host import WorkflowHost, WorkflowHostBuilder


@attrs.define
class Order:
    items: list[str] = attrs.field(factory=list)
    totals: dict[str, float] = attrs.field(factory=dict)
    placed: datetime | None = None


def _add(item: str) -> Any:
    def step(ctx: StepExecutionContext) -> None:
        order: Order = ctx.workflow.data
        order.items.append(item)
        order.totals[item] = len(order.items) * 1.5
        order.placed = datetime(2026, 12, 2, 10, 30, 15, 123456, tzinfo=UTC)

    return step


_DEFINITION = (
    WorkflowBuilder(Order)
    .start_with(_add("a"))
    .then(_add("b"))
    .wait_for("go", lambda data, ctx: "k")
    .then(_add("c"))
    .build("ended-here", 1)
)


def _count_reads(host: WorkflowHost) -> list[str]:
    """The ids the store is asked to read, from now on."""
    reads: list[str] = []
    read = host.persistence.get_workflow

    async def counted(workflow_id: str, **kwargs: Any) -> Any:
        reads.append(workflow_id)
        return await read(workflow_id, **kwargs)

    host.persistence.get_workflow = counted  # type: ignore[method-assign]
    return reads


async def _parked(host: WorkflowHost) -> str:
    """A started workflow, once it waits for its event."""
    wid = await host.start_workflow("ended-here", 1, Order())
    with trio.fail_after(30):
        while not any(
            p.event_name == "go" and p.end_time is None
            for p in (await host.get_workflow(wid)).execution_pointers
        ):
            await trio.sleep(0.01)
    return wid


async def test_callers_waiting_get_the_stored_end_without_a_read(host_factory: Any) -> None:
    async with host_factory(_DEFINITION) as host:
        wid = await _parked(host)
        got: list[Any] = []

        async def waiter() -> None:
            got.append(await host.wait_for_workflow(wid, 30))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            reads = _count_reads(host)
            await host.publish_event("go", "k", None)
        assert reads == [], "the end was read back from the store"
        first, second = got
        assert first.status is WorkflowStatus.COMPLETE
        assert isinstance(first.data, Order)
        assert first.data.items == ["a", "b", "c"]
        # What a read of the store gives, field for field.
        stored = await host.get_workflow(wid)
        assert first == stored
        assert second == stored
        # Each caller has its own copy.
        assert first is not second
        assert first.data is not second.data
        first.data.items.append("mine")
        first.execution_pointers[0].outcome = "mine"
        assert second == stored
        # Nothing is kept once the callers have their copies.
        assert not host._ended
        assert not host._waiting


async def test_a_caller_waiting_after_the_end_reads_the_store(host_factory: Any) -> None:
    async with host_factory(_DEFINITION) as host:
        wid = await _parked(host)
        await host.publish_event("go", "k", None)
        with trio.fail_after(30):
            while (await host.get_workflow(wid)).status is not WorkflowStatus.COMPLETE:
                await trio.sleep(0.01)
        reads = _count_reads(host)
        done = await host.wait_for_workflow(wid, 30)
        assert reads, "nothing was kept for a caller who was not waiting"
        assert done == await host.get_workflow(wid)
        assert not host._ended


async def test_a_caller_arriving_while_the_ended_run_is_still_here_reads_the_store(
    mock_clock: trio.testing.MockClock,
) -> None:
    """The run stays registered after its final checkpoint while ``post`` middleware
    runs, and publishes nothing more: a caller arriving then reads the store at once
    rather than waiting for a poll (time stands still here, so a poll never comes)."""
    in_post = trio.Event()
    leave_post = trio.Event()

    async def post(instance: Any) -> None:
        in_post.set()
        await leave_post.wait()

    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("post-held", 1)
    got: list[Any] = []
    async with (
        WorkflowHostBuilder()
        .persistence("memory://")
        .register(definition)
        .use_workflow_middleware("post", post)
        .build() as host
    ):
        wid = await host.start_workflow("post-held", 1, {})
        await in_post.wait()

        async def waiter() -> None:
            got.append(await host.wait_for_workflow(wid, 30))

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(waiter)
                await trio.testing.wait_all_tasks_blocked()
                nursery.cancel_scope.cancel()
        finally:
            leave_post.set()
    assert [i.status for i in got] == [WorkflowStatus.COMPLETE], "the caller waited for a poll"
