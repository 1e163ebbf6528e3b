"""Micro-figures of the PostgreSQL store, on a fresh schema (dropped afterwards).

Prints ``metric value unit`` lines:

- ``pg_raw_3_statement_transaction_inline``: the floor to compare with: update, insert,
  update in one transaction on a raw connection, no codec, µs;
- ``pg_checkpoint_sequential``: one workflow's checkpoints one after another (one
  statement each, through the provider), µs per checkpoint;
- ``pg_checkpoint_grouped_50``: 50 workflows checkpointing concurrently, µs of wall time
  per checkpoint, and ``pg_checkpoints_per_statement_50``: how many shared a statement;
- ``pg_claim``: claim_workflow (fence + read, pipelined), µs;
- ``pg_deliver_event``: deliver_event (two pipelined round trips), µs;
- ``pg_lease_table_cycle`` / ``pg_lease_advisory_cycle``: acquire + release of a table
  lease through the provider, and of a session advisory lock on a raw connection
  (``pg_try_advisory_lock`` + ``pg_advisory_unlock``, inline), µs per cycle;
- ``pg_queue_cycle``: enqueue + dequeue + ack, µs per item;
- ``pg_notify_wakeup_p50``: from an enqueue in one pool to the wake-up of a dequeue
  waiting in another (its own LISTEN connection, polling set to a minute), ms.

Usage: python tools/bench/postgres_store.py [URL] [--n N]
(URL defaults to WFE_TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/test)
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg
import trio

from wfe.core import Event, EventSubscription, PointerStatus
from wfe.core.protocols import Checkpoint, EventDelivery, QueueKind
from wfe.core.testing import make_instance, make_pointer
from wfe.postgres import PostgresPersistenceProvider, PostgresQueueProvider


def emit(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.1f} {unit}", flush=True)


async def checkpoints(store: PostgresPersistenceProvider, n: int) -> None:
    instance = make_instance(pointers=1, data={"n": 0})
    await store.create_workflow(instance)
    await store.claim_workflow(instance.id, 1)
    start = time.perf_counter()
    for i in range(n):
        last = instance.execution_pointers[-1]
        last.status = PointerStatus.COMPLETE
        new = make_pointer(i + 1)
        instance.execution_pointers.append(new)
        instance.data = {"n": i}
        await store.persist_checkpoint(
            Checkpoint(instance=instance, pointers=[last, new], fencing_token=1)
        )
    emit("pg_checkpoint_sequential", (time.perf_counter() - start) / n * 1e6, "us")

    workflows = [make_instance(pointers=1, data={"n": 0}) for _ in range(50)]
    for w in workflows:
        await store.create_workflow(w)
    steps = max(1, n // 50)
    committer = store._committer
    before = (committer.batches, committer.checkpoints)

    async def run(w: object) -> None:
        assert hasattr(w, "execution_pointers")
        for i in range(steps):
            last = w.execution_pointers[-1]
            last.status = PointerStatus.COMPLETE
            new = make_pointer(i + 1)
            w.execution_pointers.append(new)
            await store.persist_checkpoint(
                Checkpoint(instance=w, pointers=[last, new], fencing_token=1)  # type: ignore[arg-type]
            )

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for w in workflows:
            nursery.start_soon(run, w)
    elapsed = time.perf_counter() - start
    emit("pg_checkpoint_grouped_50", elapsed / (50 * steps) * 1e6, "us")
    batches = committer.batches - before[0]
    emit("pg_checkpoints_per_statement_50", (committer.checkpoints - before[1]) / batches, "x")

    small = make_instance(pointers=3, data={"n": 0})
    await store.create_workflow(small)
    start = time.perf_counter()
    for token in range(1, 1 + n):
        await store.claim_workflow(small.id, token)
    emit("pg_claim", (time.perf_counter() - start) / n * 1e6, "us")


def raw_transaction(url: str, schema: str, n: int) -> None:
    """The floor: update + insert + update as one transaction on a raw connection,
    inline (no codec), in the same schema at the same moment."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{schema}".raw (id text PRIMARY KEY, v int)')
        conn.execute(f'INSERT INTO "{schema}".raw VALUES (%s, 0)', ("w",))
        start = time.perf_counter()
        for i in range(n):
            with conn.transaction():
                conn.execute(f'UPDATE "{schema}".raw SET v = %s WHERE id = %s', (i, "w"))
                conn.execute(f'INSERT INTO "{schema}".raw VALUES (%s, %s)', (f"p{i}", i))
                conn.execute(f'UPDATE "{schema}".raw SET v = %s WHERE id = %s', (i, "w"))
        emit("pg_raw_3_statement_transaction_inline", (time.perf_counter() - start) / n * 1e6, "us")


async def deliveries(store: PostgresPersistenceProvider, n: int) -> None:
    samples = []
    for _ in range(min(n, 300)):
        instance = make_instance(pointers=1)
        ptr = instance.execution_pointers[0]
        ptr.status = PointerStatus.WAITING_FOR_EVENT
        await store.create_workflow(instance)
        sub = EventSubscription(
            workflow_id=instance.id,
            step_id=ptr.step_id,
            pointer_id=ptr.id,
            event_name="go",
            event_key=instance.id,
            as_of=datetime(2020, 1, 1, tzinfo=UTC),
        )
        await store.persist_checkpoint(Checkpoint(instance=instance, opened_subscriptions=[sub]))
        event = Event(name="go", key=instance.id, data={"x": 1})
        await store.create_event(event)
        delivery = EventDelivery(
            event_id=event.id,
            subscription_id=sub.id,
            workflow_id=instance.id,
            pointer_id=ptr.id,
            time=datetime.now(UTC),
        )
        start = time.perf_counter()
        assert await store.deliver_event(delivery)
        samples.append(time.perf_counter() - start)
    emit("pg_deliver_event", statistics.median(samples) * 1e6, "us")


async def leases(store: PostgresPersistenceProvider, url: str, n: int) -> None:
    async with store.default_locks() as locks:
        start = time.perf_counter()
        for i in range(n):
            lease = await locks.acquire(f"r{i % 50}", timedelta(seconds=30))
            assert lease is not None
            await locks.release(lease)
        emit("pg_lease_table_cycle", (time.perf_counter() - start) / n * 1e6, "us")
    with psycopg.connect(url, autocommit=True) as conn:
        start = time.perf_counter()
        for i in range(n):
            assert conn.execute("SELECT pg_try_advisory_lock(%s)", (i % 50,)).fetchone() == (True,)
            conn.execute("SELECT pg_advisory_unlock(%s)", (i % 50,))
        emit("pg_lease_advisory_cycle", (time.perf_counter() - start) / n * 1e6, "us")


async def queue(store: PostgresPersistenceProvider, url: str, n: int) -> None:
    async with store.default_queues() as queues:
        start = time.perf_counter()
        for i in range(n):
            await queues.enqueue(QueueKind.WORKFLOW, f"w{i}")
            item = await queues.dequeue(QueueKind.WORKFLOW, 1.0)
            assert item is not None
            await queues.ack(item)
        emit("pg_queue_cycle", (time.perf_counter() - start) / n * 1e6, "us")
    async with (
        PostgresQueueProvider(url, poll_interval=60) as consumer,
        PostgresQueueProvider(url) as producer,
    ):
        await consumer._db.listener.wait_connected()
        samples = []
        sent: list[float] = []
        for i in range(50):

            async def consume() -> None:
                item = await consumer.dequeue(QueueKind.EVENT, 30.0)
                samples.append(time.perf_counter() - sent[-1])
                assert item is not None
                await consumer.ack(item)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(consume)
                await trio.sleep(0.02)
                sent.append(time.perf_counter())
                await producer.enqueue(QueueKind.EVENT, f"e{i}")
        emit("pg_notify_wakeup_p50", statistics.median(samples) * 1e3, "ms")


async def main(url: str, n: int) -> None:
    schema = f"bench_{secrets.token_hex(4)}"
    schema_url = f"{url}{'&' if '?' in url else '?'}schema={schema}"
    try:
        async with PostgresPersistenceProvider(schema_url) as store:
            raw_transaction(url, schema, n)
            await checkpoints(store, n)
            await deliveries(store, n)
            await leases(store, url, n)
            await queue(store, schema_url, n)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "url",
        nargs="?",
        default=os.environ.get(
            "WFE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    trio.run(main, args.url, args.n)
