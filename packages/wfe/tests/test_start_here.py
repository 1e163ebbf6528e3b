"""A workflow started on a host with a free workflow slot runs there at once, under a
lease taken before it is created (no queue item, dequeue or claim); with every slot
taken it is queued as before. Either way it behaves the same to its caller."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from wfe.core import StepExecutionContext, WorkflowBuilder, WorkflowStatus
from wfe.host import WorkflowHostBuilder


async def test_the_callers_data_object_is_not_the_running_workflows(host_factory: Any) -> None:
    def grow(ctx: StepExecutionContext) -> None:
        ctx.workflow.data["items"].append("from the step")

    definition = WorkflowBuilder(dict).start_with(grow).then(grow).build("own-data", 1)
    async with host_factory(definition) as host:
        given: dict[str, Any] = {"items": ["given"]}
        wid = await host.start_workflow("own-data", 1, given)
        done = await host.wait_for_workflow(wid, 30)
        assert done.status is WorkflowStatus.COMPLETE
        assert done.data == {"items": ["given", "from the step", "from the step"]}
        assert given == {"items": ["given"]}


async def test_with_every_slot_taken_a_start_is_queued_and_runs_later(host_factory: Any) -> None:
    release = trio.Event()
    entered = trio.Event()

    async def block(ctx: StepExecutionContext) -> None:
        entered.set()
        await release.wait()

    blocker = WorkflowBuilder(dict).start_with(block).build("blocker", 1)
    quick = WorkflowBuilder(dict).start_with(lambda ctx: None).build("quick", 1)

    def one_slot(builder: WorkflowHostBuilder) -> None:
        builder.max_concurrent_workflows(1)

    async with host_factory(blocker, quick, configure=one_slot) as host:
        first = await host.start_workflow("blocker", 1, {})
        await entered.wait()
        second = await host.start_workflow("quick", 1, {})
        # The only slot is busy: the second waits in the queue, still RUNNABLE.
        assert (await host.get_workflow(second)).status is WorkflowStatus.RUNNABLE
        release.set()
        assert (await host.wait_for_workflow(first, 30)).status is WorkflowStatus.COMPLETE
        assert (await host.wait_for_workflow(second, 30)).status is WorkflowStatus.COMPLETE


async def test_an_idempotent_start_of_a_running_workflow_starts_nothing(
    host_factory: Any,
) -> None:
    release = trio.Event()
    runs: list[str] = []

    async def block(ctx: StepExecutionContext) -> None:
        runs.append(ctx.workflow.id)
        await release.wait()

    definition = WorkflowBuilder(dict).start_with(block).build("named", 1)
    async with host_factory(definition) as host:
        assert await host.start_workflow("named", 1, {}, workflow_id="job-1") == "job-1"
        assert await host.start_workflow("named", 1, {}, workflow_id="job-1") == "job-1"
        release.set()
        done = await host.wait_for_workflow("job-1", 30)
        assert done.status is WorkflowStatus.COMPLETE
        assert runs == ["job-1"]
        assert [w.id for w in await host.list_workflows()] == ["job-1"]


async def test_without_eager_start_a_start_goes_through_the_queue(store_url: str) -> None:
    ran: list[str] = []

    def note(ctx: StepExecutionContext) -> None:
        ran.append(ctx.workflow.id)

    definition = WorkflowBuilder(dict).start_with(note).build("queued", 1)
    builder = WorkflowHostBuilder().persistence(store_url).register(definition).eager_start(False)
    async with builder.build() as host:
        started = [await host.start_workflow("queued", 1, {}) for _ in range(5)]
        for wid in started:
            assert (await host.wait_for_workflow(wid, 30)).status is WorkflowStatus.COMPLETE
        assert sorted(ran) == sorted(started)


async def test_a_workflow_still_in_its_first_pass_is_found_by_search(host_factory: Any) -> None:
    """Started here, it is indexed when its pass ends, or while the pass still runs."""
    release = trio.Event()

    async def block(ctx: StepExecutionContext) -> None:
        await release.wait()

    definition = WorkflowBuilder(dict).start_with(block).build("slow-first", 1)
    async with host_factory(definition) as host:
        wid = await host.start_workflow("slow-first", 1, {}, reference="still-running")
        with trio.fail_after(30):  # a hang guard; found within ~0.2 s
            while not [r.id for r in (await host.search("still-running")).items]:
                await trio.sleep(0.01)
        assert [r.id for r in (await host.search("still-running")).items] == [wid]
        release.set()
        assert (await host.wait_for_workflow(wid, 30)).status is WorkflowStatus.COMPLETE
        with trio.fail_after(30):
            while [r.status for r in (await host.search("still-running")).items] != [
                WorkflowStatus.COMPLETE
            ]:
                await trio.sleep(0.01)


class _Held:
    """A host with two workflow slots (the workflow-queue consumer keeps one while it
    waits for an item) and two definitions: ``quick`` (one empty step) and ``held``
    (a step that waits for :attr:`release`, setting :attr:`entered` first)."""

    def __init__(self) -> None:
        self.release = trio.Event()
        self.entered = trio.Event()

        async def hold(ctx: StepExecutionContext) -> None:
            self.entered.set()
            await self.release.wait()

        self.host = (
            WorkflowHostBuilder()
            .persistence("memory://")
            .max_concurrent_workflows(2)
            .register(WorkflowBuilder(dict).start_with(lambda ctx: None).build("quick", 1))
            .register(WorkflowBuilder(dict).start_with(hold).build("held", 1))
            .build()
        )

    @staticmethod
    async def settled() -> None:
        """Wait until every task of the host is parked: after start-up, the
        workflow-queue consumer holding its slot; after a run, its slot given back
        (trio schedules ready tasks in a random order, so neither need have happened
        when the test's own task goes on)."""
        await trio.testing.wait_all_tasks_blocked()


async def test_a_start_waits_briefly_for_a_slot_while_slots_are_being_given_back(
    mock_clock: trio.testing.MockClock,
) -> None:
    """Virtual time stands still here, so the wait cannot run out by itself: the third
    start can only return once the held slot is given back."""
    held = _Held()
    async with held.host as host:
        await held.settled()
        first = await host.start_workflow("quick", 1, {})
        assert (await host.wait_for_workflow(first, 30)).status is WorkflowStatus.COMPLETE
        # Its end is handed to the waiter with its final checkpoint, before the run
        # gives its slot back: let it.
        await held.settled()
        blocker = await host.start_workflow("held", 1, {})  # the free slot, just given back
        await held.entered.wait()
        third: list[str] = []

        async def start_third() -> None:
            third.append(await host.start_workflow("quick", 1, {}))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(start_third)
            await trio.testing.wait_all_tasks_blocked()
            assert third == []  # waiting for a slot, not queued
            held.release.set()
        assert (await host.wait_for_workflow(blocker, 30)).status is WorkflowStatus.COMPLETE
        assert (await host.wait_for_workflow(third[0], 30)).status is WorkflowStatus.COMPLETE


async def test_with_every_slot_held_by_long_runs_a_start_is_queued_at_once(
    mock_clock: trio.testing.MockClock,
) -> None:
    held = _Held()
    async with held.host as host:
        await held.settled()
        blocker = await host.start_workflow("held", 1, {})
        await held.entered.wait()
        # No slot was given back yet: the start returns without waiting (time stands
        # still, so a wait would never end), queued for later.
        queued = await host.start_workflow("quick", 1, {})
        assert (await host.get_workflow(queued)).status is WorkflowStatus.RUNNABLE
        held.release.set()
        assert (await host.wait_for_workflow(blocker, 30)).status is WorkflowStatus.COMPLETE
        assert (await host.wait_for_workflow(queued, 30)).status is WorkflowStatus.COMPLETE
