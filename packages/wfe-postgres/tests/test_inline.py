"""Statements run on the trio thread (no thread hop): while one waits for the server the
other tasks go on, a cancelled statement still finishes whole, and writes larger than
the socket's buffers get through."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import trio

from wfe.postgres import PostgresPersistenceProvider

from .conftest import URL

_KEY = 4_242_001  # an advisory lock the test holds to keep a statement waiting
_WAITERS = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = %s"
)


@contextmanager
def _lock_held() -> Iterator[psycopg.Connection[Any]]:
    """A raw connection holding the advisory lock (released when it closes)."""
    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_KEY,))
        yield conn


async def _until_waiting(conn: psycopg.Connection[Any]) -> None:
    """Until a statement of the store waits for the advisory lock (seen by ``conn``)."""
    while await trio.to_thread.run_sync(lambda: conn.execute(_WAITERS, (_KEY,)).fetchone()) != (1,):
        await trio.sleep(0.01)


def _take_lock(conn: psycopg.Connection[Any]) -> str:
    # Bounded: were the event loop blocked by this wait, the test would fail, not hang.
    conn.execute("SET lock_timeout = '30s'")
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (_KEY,))
        conn.execute("SELECT pg_advisory_unlock(%s)", (_KEY,))
    finally:
        conn.execute("RESET lock_timeout")
    return "through"


async def test_other_tasks_use_the_store_while_a_statement_waits(store_url: str) -> None:
    with _lock_held() as holder:
        async with PostgresPersistenceProvider(store_url) as store:
            got: list[str] = []

            async def blocked() -> None:
                got.append(await store._db.run(_take_lock))

            with trio.fail_after(60):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(blocked)
                    await _until_waiting(holder)
                    # That statement is in flight; this task runs, and so do its own
                    # statements on the store's other connections.
                    row = await store._db.run(lambda conn: conn.execute("SELECT 7").fetchone())
                    assert row == (7,)
                    assert got == []
                    holder.execute("SELECT pg_advisory_unlock_all()")
            assert got == ["through"]


async def test_a_cancelled_statement_finishes_and_its_connection_is_reused(
    store_url: str,
) -> None:
    async with PostgresPersistenceProvider(store_url, pool_size=1) as store:
        db = store._db
        await db.run(lambda conn: conn.execute(db.q("CREATE TABLE {s}.probe (v int)")))
        insert = db.q(
            "WITH l AS MATERIALIZED (SELECT pg_advisory_lock(%s)) "
            "INSERT INTO {s}.probe SELECT 1 FROM l"
        )
        stored: list[bool] = []

        async def write() -> None:
            await db.run(lambda conn: conn.execute(insert, (_KEY,)))
            # Its result comes back (the caller sees the cancellation at its next
            # checkpoint), so a group commit can tell every batch member the truth.
            stored.append(True)

        with _lock_held() as holder, trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(write)
                await _until_waiting(holder)
                nursery.cancel_scope.cancel()
                # The writer's statement still waits; release the lock without an
                # await (this task is cancelled too): the statement completes.
                holder.execute("SELECT pg_advisory_unlock_all()")
        assert stored == [True]
        # Not abandoned: the statement ran to its end, and the only pooled connection
        # is usable again (not left mid-protocol).
        count = db.q("SELECT count(*) FROM {s}.probe")
        assert await db.run(lambda conn: conn.execute(count).fetchone()) == (1,)


async def test_a_write_larger_than_the_socket_buffers(store_url: str) -> None:
    # Megabytes in one pipeline: psycopg's send waits for the socket to become writable.
    big = "x" * (8 * 1024 * 1024)

    def run(conn: psycopg.Connection[Any]) -> tuple[Any, Any]:
        with conn.pipeline():
            first = conn.execute("SELECT length(%s::text)", (big,))
            second = conn.execute("SELECT length(%s::text)", (big + "y",))
        return first.fetchone(), second.fetchone()

    async with PostgresPersistenceProvider(store_url) as store:
        assert await store._db.run(run) == ((len(big),), (len(big) + 1,))
