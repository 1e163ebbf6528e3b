"""The public surface of wfe.sqlite and its entry points are pinned."""

from __future__ import annotations

from pathlib import Path

import wfe
import wfe.sqlite
from wfe.core.discovery import load_provider
from wfe.core.protocols import (
    DistributedLockProvider,
    PersistenceProvider,
    ProvidesCompanions,
    QueueProvider,
    SearchIndex,
)
from wfe.sqlite import SqlitePersistenceProvider


def test_public_names() -> None:
    assert sorted(wfe.sqlite.__all__) == [
        "SCHEMA_VERSION",
        "SqliteLockProvider",
        "SqlitePersistenceProvider",
        "SqliteQueueProvider",
        "SqliteSearchIndex",
    ]


def test_wfe_stays_a_namespace_package() -> None:
    assert getattr(wfe, "__file__", None) is None


def test_entry_points_build_each_provider(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wfe.db'}"
    for group, protocol in (
        ("wfe.persistence", PersistenceProvider),
        ("wfe.locks", DistributedLockProvider),
        ("wfe.queues", QueueProvider),
        ("wfe.search", SearchIndex),
    ):
        provider = load_provider(group, url)
        assert isinstance(provider, protocol), group
        assert getattr(provider, "path") == str(tmp_path / "wfe.db")  # noqa: B009


def test_persistence_provides_companions() -> None:
    store = SqlitePersistenceProvider("sqlite://:memory:")
    assert isinstance(store, ProvidesCompanions)
    assert isinstance(store.default_locks(), DistributedLockProvider)
    assert isinstance(store.default_queues(), QueueProvider)
    assert isinstance(store.default_search(), SearchIndex)


def test_url_forms() -> None:
    assert SqlitePersistenceProvider("sqlite://:memory:").path == ":memory:"
    assert SqlitePersistenceProvider("sqlite:////abs/dir/w.db").path == "/abs/dir/w.db"
    rel = SqlitePersistenceProvider("sqlite:///rel/w.db").path
    assert rel == str(Path.cwd() / "rel" / "w.db")
