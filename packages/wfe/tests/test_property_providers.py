"""Every persistence provider agrees with the memory provider on random operation
sequences (hypothesis state machine; see ``persistence_machine.py``).

Each example gets fresh stores: a memory provider (the model), a SQLite file of its own
and, when the server answers, a PostgreSQL schema of its own (dropped afterwards).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import trio
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from wfe.core.memory import MemoryPersistenceProvider

from . import pg_support
from .persistence_machine_extras import FullPersistenceMachine
from .property_support import PROFILE, call, new_schema, postgres_available


class _Stores:
    """Opens and closes one example's stores from the machine's thread."""

    def __init__(self, tmp: Path, postgres: bool) -> None:
        self.tmp = tmp
        self.postgres = postgres
        self.count = 0
        self.stack: contextlib.AsyncExitStack | None = None
        self.schema: str | None = None

    async def open(self) -> tuple[dict[str, Any], dict[str, Any]]:
        from wfe.sqlite import SqlitePersistenceProvider

        self.count += 1
        stack = contextlib.AsyncExitStack()
        self.stack = stack
        memory = await stack.enter_async_context(MemoryPersistenceProvider())
        stores: dict[str, Any] = {"memory": memory}
        path = self.tmp / f"example-{self.count}.db"
        stores["sqlite"] = await stack.enter_async_context(
            SqlitePersistenceProvider(f"sqlite:///{path}")
        )
        if self.postgres:
            from wfe.postgres import PostgresPersistenceProvider

            self.schema = new_schema()
            url = pg_support.with_schema(pg_support.URL, self.schema)
            stores["postgres"] = await stack.enter_async_context(
                PostgresPersistenceProvider(url, pool_size=2)
            )
        indexes = {
            name: await stack.enter_async_context(store.default_search())
            for name, store in stores.items()
        }
        return stores, indexes

    async def close(self) -> None:
        if self.stack is not None:
            await self.stack.aclose()
            self.stack = None
        if self.schema is not None:
            schema, self.schema = self.schema, None
            await trio.to_thread.run_sync(pg_support.drop_schema, schema)


class _Machine(FullPersistenceMachine):
    opener: _Stores

    def __init__(self) -> None:
        super().__init__(*call(self.opener.open))

    def teardown(self) -> None:
        try:
            self.compare_everything()
        finally:
            call(self.opener.close)


async def test_every_store_agrees_with_memory(tmp_path: Path) -> None:
    """Random sequences of every persistence operation (checkpoints, claims, deliveries,
    queries, purges, step logs, search) give the same results on SQLite and PostgreSQL as
    on the memory provider."""
    opener = _Stores(tmp_path, postgres_available())
    machine = type("Machine", (_Machine,), {"opener": opener})
    chosen = settings(PROFILE, max_examples=30, stateful_step_count=30)
    await trio.to_thread.run_sync(lambda: run_state_machine_as_test(machine, settings=chosen))
