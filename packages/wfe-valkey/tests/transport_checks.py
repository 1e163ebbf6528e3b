"""Checks the TLS and cluster tests run over their own servers (imported by path): the
change feed between two providers, and two hosts running workflows with Valkey locks,
queues and a lifecycle publisher while a plain subscriber reads the lifecycle channel."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import trio

from wfe.core import WorkflowBuilder, WorkflowCompleted, WorkflowStatus
from wfe.host import WorkflowHostBuilder
from wfe.valkey import ValkeyLifecyclePublisher, ValkeyLockProvider, ValkeyQueueProvider


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


async def check_change_feed(url: str, prefix: str) -> None:
    """A status change published by one provider reaches another's feed."""
    seen = Seen()
    async with (
        ValkeyLockProvider(url, prefix=prefix) as watcher,
        ValkeyQueueProvider(url, prefix=prefix) as publisher,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(watcher.watch_workflows, seen)
        # Subscribing happens in the feed's thread: publish until one arrives.
        with trio.fail_after(20):
            while "w-feed" not in seen.ids:
                await publisher.publish(
                    WorkflowCompleted(workflow_instance_id="w-feed", definition_id="d", version=1)
                )
                with trio.move_on_after(0.05):
                    await seen.wait_for("w-feed")
        nursery.cancel_scope.cancel()


def _three_steps() -> Any:
    def mark(n: int) -> Callable[[Any], None]:
        def body(ctx: Any) -> None:
            ctx.workflow.data[f"s{n}"] = True

        return body

    return WorkflowBuilder(dict).start_with(mark(1)).then(mark(2)).then(mark(3)).build("tx", 1)


async def check_hosts_run_workflows(
    url: str, prefix: str, tmp_path: Path, subscriber: Callable[[], Any], count: int = 5
) -> None:
    """Two hosts (one runs workflows, one only starts and waits) on a SQLite store with
    Valkey locks, queues and lifecycle publisher at ``url``: every workflow completes,
    and a plain subscriber (``subscriber()`` returns a driver client) on the lifecycle
    channel hears each completion as JSON."""
    store = f"sqlite:///{tmp_path / 'wfe.db'}"
    definition = _three_steps()

    def builder() -> WorkflowHostBuilder:
        return (
            WorkflowHostBuilder()
            .persistence(store)
            .locks(ValkeyLockProvider(url, prefix=prefix))
            .queues(ValkeyQueueProvider(url, prefix=prefix))
            .lifecycle_publisher(ValkeyLifecyclePublisher(url, prefix=prefix))
            .lease_ttl(timedelta(seconds=5))
            .register(definition)
        )

    client = subscriber()
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(prefix + "lifecycle")
    heard: set[str] = set()
    try:
        async with builder().build(), builder().run_workflows(False).build() as waiter:
            ids = [await waiter.start_workflow("tx", 1, {}) for _ in range(count)]
            for wid in ids:
                instance = await waiter.wait_for_workflow(wid, timeout=60)
                assert instance.status is WorkflowStatus.COMPLETE, (wid, instance.status)
                assert instance.data == {"s1": True, "s2": True, "s3": True}
            with trio.fail_after(20):
                while not set(ids) <= heard:
                    message = await trio.to_thread.run_sync(lambda: pubsub.get_message(timeout=0.2))
                    if message and message.get("type") == "message":
                        body = json.loads(message["data"])
                        if body["type"] == "WorkflowCompleted":
                            heard.add(body["workflow_instance_id"])
    finally:
        pubsub.close()
        client.close()
