"""``wfe list`` with search, filters and paging, and ``wfe purge`` (real processes)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trio

from wfe.core import WorkflowInstance, WorkflowStatus
from wfe.core.testing import make_instance
from wfe.sqlite import SqlitePersistenceProvider

from .cli_support import wfe

NOW = datetime.now(UTC)


def stored(tmp_path: Path, *instances: WorkflowInstance) -> str:
    """A SQLite store holding ``instances``, indexed; returns its URL."""
    url = f"sqlite:///{tmp_path / 'store.db'}"

    async def fill() -> None:
        async with SqlitePersistenceProvider(url) as store, store.default_search() as index:
            for instance in instances:
                await store.create_workflow(instance)
                await index.index(instance)

    trio.run(fill)
    return url


def ids(tmp_path: Path, url: str, *args: str) -> list[str]:
    result = wfe(tmp_path, "list", "--json", "--store", url, *args)
    assert result.returncode == 0, result.stderr
    return [row["id"] for row in json.loads(result.stdout)]


def test_list_searches_filters_and_pages(tmp_path: Path) -> None:
    a = make_instance(
        definition_id="billing",
        reference="order A-17",
        data={"customer": "Ann", "n": 3},
        status=WorkflowStatus.COMPLETE,
        create_time=NOW - timedelta(hours=2),
        complete_time=NOW - timedelta(hours=1),
    )
    b = make_instance(
        definition_id="billing",
        reference="order B-2",
        data={"customer": "Bo", "n": "3"},
        create_time=NOW - timedelta(hours=1),
    )
    c = make_instance(definition_id="shipping", create_time=NOW - timedelta(days=400))
    url = stored(tmp_path, a, b, c)
    assert ids(tmp_path, url) == [b.id, a.id, c.id]
    assert ids(tmp_path, url, "--search", "order") == [b.id, a.id]
    assert ids(tmp_path, url, "--search", "ann") == [a.id]
    assert ids(tmp_path, url, "--definition", "shipping") == [c.id]
    assert ids(tmp_path, url, "--reference", "order A-17") == [a.id]
    assert ids(tmp_path, url, "--data", "n=3") == [a.id]
    assert ids(tmp_path, url, "--data", 'n="3"') == [b.id]
    assert ids(tmp_path, url, "--data", "customer=Bo", "--definition", "billing") == [b.id]
    assert ids(tmp_path, url, "--since", "30d") == [b.id, a.id]
    until = (NOW - timedelta(days=30)).date().isoformat()
    assert ids(tmp_path, url, "--until", until) == [c.id]
    assert ids(tmp_path, url, "--search", "order", "--status", "complete") == [a.id]
    assert ids(tmp_path, url, "--search", "order", "--skip", "1", "--limit", "1") == [a.id]
    table = wfe(tmp_path, "list", "--search", "order", "--limit", "1", "--store", url)
    assert table.returncode == 0, table.stderr
    assert b.id in table.stdout
    assert "1-1 of 2" in table.stderr


def test_list_refuses_bad_filters_by_name(tmp_path: Path) -> None:
    url = stored(tmp_path, make_instance())
    for args, expected in (
        (["--data", "novalue"], "--data 'novalue': expected FIELD=VALUE"),
        (["--data", "n=[1]"], "must be a single string, number"),
        (["--since", "yesterday"], "--since 'yesterday': expected a date"),
        (["--status", "done"], "--status 'done': expected one of"),
        (["--skip", "-1", "--search", "x"], "must not be negative"),
    ):
        result = wfe(tmp_path, "list", "--store", url, *args)
        assert result.returncode != 0
        assert expected in result.stderr, result.stderr


def test_purge_removes_only_what_ended_long_enough_ago(tmp_path: Path) -> None:
    old = make_instance(
        status=WorkflowStatus.COMPLETE,
        create_time=NOW - timedelta(days=90),
        complete_time=NOW - timedelta(days=60),
    )
    recent = make_instance(
        status=WorkflowStatus.TERMINATED,
        create_time=NOW - timedelta(days=2),
        complete_time=NOW - timedelta(days=1),
    )
    running = make_instance(create_time=NOW - timedelta(days=90))
    url = stored(tmp_path, old, recent, running)
    dry = wfe(tmp_path, "purge", "--older-than", "30d", "--dry-run", "--store", url)
    assert dry.returncode == 0, dry.stderr
    assert "would purge 1 workflow(s)" in dry.stdout
    assert len(ids(tmp_path, url)) == 3
    done = wfe(tmp_path, "purge", "--older-than", "30d", "--json", "--store", url)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["workflows"] == 1
    assert report["dry_run"] is False
    assert ids(tmp_path, url) == [recent.id, running.id]
    assert ids(tmp_path, url, "--definition", old.definition_id) == [recent.id, running.id]
    again = wfe(tmp_path, "purge", "--older-than", "12h", "--store", url)
    assert "purged 1 workflow(s) (COMPLETE, TERMINATED)" in again.stdout
    assert ids(tmp_path, url) == [running.id]


def test_purge_refuses_running_workflows_and_bad_ages(tmp_path: Path) -> None:
    url = stored(tmp_path, make_instance())
    for args, expected in (
        (["--older-than", "30d", "--status", "RUNNABLE"], "running workflows are never purged"),
        (["--older-than", "soon"], "--older-than 'soon': expected a duration"),
    ):
        result = wfe(tmp_path, "purge", "--store", url, *args)
        assert result.returncode != 0
        assert expected in result.stderr, result.stderr
    assert len(ids(tmp_path, url)) == 1
