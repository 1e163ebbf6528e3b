"""The index consumer for search indexes that take documents in bulk."""

from __future__ import annotations

import contextlib
import logging

import trio

from wfe.core import StoreLostError, WorkflowInstance, WorkflowNotFoundError
from wfe.core.protocols import (
    BatchPersistence,
    BatchQueue,
    BulkSearchIndex,
    QueueItem,
    QueueKind,
    QueueProvider,
)

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
    queues = host.queues
    batched = queues if isinstance(queues, BatchQueue) else None
    loop = "dequeuing index items"
    while True:
        try:
            if batched is not None:
                # The whole batch in one round trip (and one write, on SQLite).
                items = await batched.dequeue_many(QueueKind.INDEX, BATCH, _WAIT)
            else:
                items = await _dequeue_batch(queues)
        except Exception as exc:
            # The store failing for a while must not end the host; a lost one does.
            await trio.sleep(health.failed(loop, exc))
            continue
        health.succeeded(loop)
        if not items:
            continue
        try:
            await _index(host, index, items)
        except Exception as exc:
            # Refused for good (the index retries outages itself): the store still
            # holds every instance, and its next change indexes it again.
            health.work_failed("indexing workflows", exc, f"indexing {len(items)} workflow(s)")
        # Cancelled (the host is stopping): not acknowledged, so delivered again.
        with trio.CancelScope(shield=True):
            for batch in [items] if batched is not None else [[item] for item in items]:
                try:
                    if batched is not None:
                        await batched.ack_many(batch)
                    else:
                        await queues.ack(batch[0])
                    health.succeeded("acknowledging queue items")
                except StoreLostError:
                    break  # reported by whichever loop meets it next
                except Exception as exc:
                    health.failed("acknowledging queue items", exc)  # redelivered


async def _dequeue_batch(queues: QueueProvider) -> list[QueueItem]:
    """A queue without :class:`BatchQueue`: wait for one item, then take every other
    pending one (up to a batch), one call each."""
    first = await queues.dequeue(QueueKind.INDEX, _WAIT)
    if first is None:
        return []
    items = [first]
    while len(items) < BATCH:
        more = await queues.dequeue(QueueKind.INDEX, 0)
        if more is None:
            break
        items.append(more)
    return items


async def _index(host: HostServices, index: BulkSearchIndex, items: list[QueueItem]) -> None:
    ids = list(dict.fromkeys(i.item_id for i in items))
    persistence = host.persistence
    instances: list[WorkflowInstance] = []
    if isinstance(persistence, BatchPersistence):
        # The whole batch in one read (one round trip).
        instances = await persistence.get_workflows(ids, with_pointers=False)
    else:
        for workflow_id in ids:
            with contextlib.suppress(WorkflowNotFoundError):
                instances.append(await persistence.get_workflow(workflow_id, with_pointers=False))
    if instances:
        await index.index_many(instances)
