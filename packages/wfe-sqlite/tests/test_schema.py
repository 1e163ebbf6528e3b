"""Schema versioning: a later release's migration steps upgrade an existing file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Connection

from wfe.core import WorkflowInstance
from wfe.sqlite import SCHEMA_VERSION, SqlitePersistenceProvider, _schema


async def test_new_file_is_at_the_current_version(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    async with SqlitePersistenceProvider(f"sqlite:///{path}"):
        pass
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        mode = conn.execute("PRAGMA journal_mode").fetchone()
    conn.close()
    assert mode == ("wal",)


async def test_a_later_step_upgrades_an_existing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "w.db"
    inst = WorkflowInstance(definition_id="d", version=1, data={"kept": True})
    async with SqlitePersistenceProvider(f"sqlite:///{path}") as store:
        await store.create_workflow(inst)

    def add_column(conn: Connection) -> None:
        conn.exec_driver_sql("ALTER TABLE workflows ADD COLUMN priority INTEGER DEFAULT 0")

    monkeypatch.setattr(_schema, "MIGRATIONS", [*_schema.MIGRATIONS, add_column])
    monkeypatch.setattr(_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    async with SqlitePersistenceProvider(f"sqlite:///{path}") as store:
        assert await store.get_workflow(inst.id) == inst
        await store.ensure_store_exists()  # already current: runs no step twice
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (
            SCHEMA_VERSION + 1,
        )
        assert conn.execute("SELECT priority FROM workflows").fetchone() == (0,)
    conn.close()
