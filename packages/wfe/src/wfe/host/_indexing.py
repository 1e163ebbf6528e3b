"""The index consumer for search indexes that take documents in bulk."""

from __future__ import annotations

import contextlib
import logging

import trio

from wfe.core import StoreLostError, WorkflowInstance, WorkflowNotFoundError
from wfe.core.protocols import BatchPersistence, BatchQueue, BulkSearchIndex, QueueItem, QueueKind

from ._health import Health
from ._services import HostServices

log = logging.getLogger("wfe.host")

BATCH = 200  # index items taken together at most
_WAIT = 30.0  # providers wake on enqueue or poll inside; long waits are cheap


async def consume_in_batches(host: HostServices, index: BulkSearchIndex, health: Health) -> None:
    """Index changed instances, every pending one at once, until cancelled.

    One consumer per host, so the batches of a host are indexed in the order their
    instances were read: a later batch never overwrites a document with an older
    read. Items are acknowledged after the batch is stored (or found unstorable);
    an item taken by a host that dies first is delivered again.
    """
    batches = _Batches(host)
    loop = "dequeuing index items"
    while True:
        try:
            items = await batches.take()
        except Exception as exc:
            # The store failing for a while must not end the host; a lost one does.
            await trio.sleep(health.failed(loop, exc))
            continue
        health.succeeded(loop)
        if not items:
            continue
        try:
            instances = await batches.read(items)
            if instances:
                await index.index_many(instances)
        except Exception as exc:
            # Refused for good (the index retries outages itself): the store still
            # holds every instance, and its next change indexes it again.
            health.work_failed("indexing workflows", exc, f"indexing {len(items)} workflow(s)")
        # Cancelled (the host is stopping): not acknowledged, so delivered again.
        with trio.CancelScope(shield=True):
            try:
                await batches.ack(items)
                health.succeeded("acknowledging queue items")
            except StoreLostError:
                pass  # reported by whichever loop meets it next
            except Exception as exc:
                health.failed("acknowledging queue items", exc)  # redelivered


class _Batches:
    """The consumer's queue and store calls: one per batch when the providers take
    batches (:class:`BatchQueue`, :class:`BatchPersistence`), else one per item."""

    def __init__(self, host: HostServices) -> None:
        queues, persistence = host.queues, host.persistence
        self._queues = queues
        self._batch_queue = queues if isinstance(queues, BatchQueue) else None
        self._persistence = persistence
        self._batch_reads = persistence if isinstance(persistence, BatchPersistence) else None

    async def take(self) -> list[QueueItem]:
        """Wait for an index item; return it with every other pending one (a batch)."""
        if self._batch_queue is not None:
            return await self._batch_queue.dequeue_many(QueueKind.INDEX, BATCH, _WAIT)
        first = await self._queues.dequeue(QueueKind.INDEX, _WAIT)
        items = [] if first is None else [first]
        while items and len(items) < BATCH:
            more = await self._queues.dequeue(QueueKind.INDEX, 0)
            if more is None:
                break
            items.append(more)
        return items

    async def read(self, items: list[QueueItem]) -> list[WorkflowInstance]:
        """The instances the items name that still exist (rows only)."""
        ids = list(dict.fromkeys(i.item_id for i in items))
        if self._batch_reads is not None:
            return await self._batch_reads.get_workflows(ids, with_pointers=False)
        instances: list[WorkflowInstance] = []
        for workflow_id in ids:
            with contextlib.suppress(WorkflowNotFoundError):
                instances.append(
                    await self._persistence.get_workflow(workflow_id, with_pointers=False)
                )
        return instances

    async def ack(self, items: list[QueueItem]) -> None:
        """Acknowledge ``items``; on a failure the rest are delivered again."""
        if self._batch_queue is not None:
            await self._batch_queue.ack_many(items)
            return
        for item in items:
            await self._queues.ack(item)
