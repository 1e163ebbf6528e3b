"""Schema versioning: a later release's migration steps upgrade an existing file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Connection

from wfe.core import WorkflowInstance
from wfe.core.protocols import DataFilter, SearchFilters
from wfe.core.testing import make_instance
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


async def test_version_3_gives_documents_indexed_before_it_their_data_fields(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'wfe.db'}"
    old = make_instance(data={"customer": {"name": "Ann"}})
    async with SqlitePersistenceProvider(url) as store, store.default_search() as index:
        await index.index(old)
    # Back to how version 2 left it: no tokens table.
    conn = sqlite3.connect(tmp_path / "wfe.db")
    with conn:
        conn.execute("DROP TABLE search_fields")
        conn.execute("UPDATE schema_version SET version = 2")
    conn.close()
    async with SqlitePersistenceProvider(url) as store, store.default_search() as index:
        page = await index.search("", SearchFilters(data=[DataFilter("customer.name", "Ann")]))
        assert [r.id for r in page.items] == [old.id]
