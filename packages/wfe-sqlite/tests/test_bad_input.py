"""Bad URLs, options and files give a clear error naming the path, and lose nothing."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from wfe.core import ConfigurationError, WorkflowInstance
from wfe.sqlite import SCHEMA_VERSION, SqlitePersistenceProvider, SqliteQueueProvider


async def _store_one(path: Path) -> WorkflowInstance:
    inst = WorkflowInstance(definition_id="keep", version=1, data={"n": 1})
    async with SqlitePersistenceProvider(f"sqlite:///{path}") as store:
        await store.create_workflow(inst)
    return inst


async def _assert_intact(path: Path, inst: WorkflowInstance) -> None:
    async with SqlitePersistenceProvider(f"sqlite:///{path}") as store:
        assert await store.get_workflow(inst.id) == inst


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://localhost/db",
        "sqlite:///",
        "sqlite://host/file.db",
        "sqlite:///wfe.db?mode=ro",
        "memory://",
    ],
)
def test_malformed_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="sqlite"):
        SqlitePersistenceProvider(url)


@pytest.mark.parametrize(
    "options",
    [{"synchronous": "sometimes"}, {"busy_timeout": 0}, {"visibility_timeout": -1}],
)
def test_bad_option_is_refused(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        SqliteQueueProvider("sqlite://:memory:", **options)  # type: ignore[arg-type]


async def test_missing_directory_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "wfe.db"
    with pytest.raises(ConfigurationError, match="does not exist") as info:
        async with SqlitePersistenceProvider(f"sqlite:///{path}"):
            pass
    assert str(path) in str(info.value)
    assert not path.parent.exists()


async def test_create_parents_makes_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "wfe.db"
    async with SqlitePersistenceProvider(f"sqlite:///{path}", create_parents=True) as store:
        await store.ensure_store_exists()
    assert path.is_file()


async def test_file_that_is_not_a_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    garbage = bytes(range(256)) * 64
    path.write_bytes(garbage)
    with pytest.raises(ConfigurationError, match="not a database") as info:
        async with SqlitePersistenceProvider(f"sqlite:///{path}"):
            pass
    assert str(path) in str(info.value)
    assert path.read_bytes() == garbage


async def test_directory_instead_of_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is a directory"):
        async with SqlitePersistenceProvider(f"sqlite:///{tmp_path}"):
            pass


async def test_newer_schema_version_is_refused_and_data_kept(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    inst = await _store_one(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(ConfigurationError, match="newer release") as info:
        async with SqlitePersistenceProvider(f"sqlite:///{path}"):
            pass
    assert str(path) in str(info.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in str(info.value)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
    conn.close()
    await _assert_intact(path, inst)


async def test_read_only_file_is_refused_and_data_kept(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    inst = await _store_one(path)
    os.chmod(path, 0o444)
    try:
        with pytest.raises(ConfigurationError, match="read-only") as info:
            async with SqlitePersistenceProvider(f"sqlite:///{path}"):
                pass
        assert str(path) in str(info.value)
    finally:
        os.chmod(path, 0o644)
    await _assert_intact(path, inst)


async def test_an_older_file_without_wfe_tables_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE app_settings (k TEXT PRIMARY KEY, v TEXT)")
        conn.execute("INSERT INTO app_settings VALUES ('theme', 'dark')")
    conn.close()
    inst = await _store_one(path)
    await _assert_intact(path, inst)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT v FROM app_settings").fetchone() == ("dark",)
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()
