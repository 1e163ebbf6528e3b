"""SIGKILL at every write boundary, and a paused holder fenced out: real processes
sharing one SQLite file or one PostgreSQL schema (``db`` is parametrised by store).
Whatever instant a host dies at, a new host finishes every workflow and no step whose
result was stored runs again; a host that lost its lease cannot store anything once
another host has claimed the instance."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import pg_support

WORKER = Path(__file__).with_name("crash_worker.py")

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", *(["postgres"] if pg_support.INSTALLED else [])])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path | str]:
    """The workflow store the worker processes share: a SQLite file, or the URL of a
    fresh PostgreSQL schema."""
    if request.param == "postgres":
        yield from pg_support.fresh_store()
    else:
        yield tmp_path / "w.db"


def spawn(
    db: Path | str,
    log: Path,
    *args: str,
    crash: str = "",
    locks: str = "",
    visibility: str = "",
    search_apart: bool = False,
) -> subprocess.Popen[str]:
    env = dict(os.environ)
    for name in ("WFE_CRASH", "WFE_LOCKS", "WFE_VISIBILITY", "WFE_SEARCH_APART"):
        env.pop(name, None)
    if search_apart:
        env["WFE_SEARCH_APART"] = "1"
    if crash:
        env["WFE_CRASH"] = crash
    if locks:
        env["WFE_LOCKS"] = locks
    if visibility:
        env["WFE_VISIBILITY"] = visibility
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), str(log), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"worker failed ({proc.returncode}):\n{err}"
    return out


def killed(proc: subprocess.Popen[str], timeout: float = 120) -> None:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == -signal.SIGKILL, f"expected a SIGKILL ({proc.returncode}):\n{err}"


def lines(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines()]


def wait_for(log: Path, *words: str, timeout: float = 60) -> None:
    """Wait until a log line starts with ``words``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and any(w[: len(words)] == list(words) for w in lines(log)):
            return
        time.sleep(0.02)
    raise AssertionError(f"no line {' '.join(words)!r} in {log}:\n{log.read_text()}")


def stored_data(db: Path | str) -> dict[str, tuple[str, dict[str, object]]]:
    if isinstance(db, str):
        import psycopg

        schema = db.rpartition("schema=")[2]
        with psycopg.connect(pg_support.URL) as pg:
            rows = pg.execute(f'SELECT id, status, data::text FROM "{schema}".workflows').fetchall()
    else:
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT id, status, data FROM workflows").fetchall()
    return {wid: (status, json.loads(data)) for wid, status, data in rows}


def taken_index_items(db: Path | str) -> int:
    """Index queue items delivered to a consumer and not acknowledged."""
    sql = "SELECT count(*) FROM {}queue_items WHERE kind = 'index' AND receipt IS NOT NULL"
    if isinstance(db, str):
        import psycopg

        schema = db.rpartition("schema=")[2]
        with psycopg.connect(pg_support.URL) as pg:
            row = pg.execute(sql.format(f'"{schema}".')).fetchone()
    else:
        with sqlite3.connect(db) as conn:
            row = conn.execute(sql.format("")).fetchone()
    assert row is not None
    return int(row[0])


def assert_no_committed_step_ran_again(log: Path) -> Counter[tuple[str, str]]:
    """A step run is committed once a later checkpoint of its workflow was stored by
    the same process; such a step must never run again. Returns the run counts."""
    entries = lines(log)
    runs: Counter[tuple[str, str]] = Counter()
    committed: set[tuple[str, str]] = set()
    for i, entry in enumerate(entries):
        if entry[0] != "step":
            continue
        wid, n, pid = entry[1], entry[2], entry[-1]
        assert (wid, n) not in committed, f"step {n} of {wid} ran again after it was stored"
        runs[(wid, n)] += 1
        later = entries[i + 1 :]
        if any(e[0] == "stored" and e[1] == wid and e[-1] == pid for e in later):
            committed.add((wid, n))
    return runs


def assert_all_complete(db: Path | str, count: int, steps: tuple[str, ...]) -> None:
    stored = stored_data(db)
    assert len(stored) == count
    for wid, (status, data) in stored.items():
        assert status == "COMPLETE", f"{wid} left {status}: {data}"
        for n in steps:
            assert f"s{n}" in data, f"{wid} lost step {n}'s result: {data}"


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_kill_right_after_a_checkpoint_reruns_nothing(
    tmp_path: Path, db: Path | str, n: int
) -> None:
    log = tmp_path / "log"
    killed(spawn(db, log, "start", "seq5", "1", crash=f"persist_checkpoint:after:{n}"))
    finish(spawn(db, log, "finish"))
    runs = assert_no_committed_step_ran_again(log)
    assert set(runs.values()) == {1}, f"a step ran twice: {runs}"
    assert_all_complete(db, 1, ("1", "2", "3", "4", "5"))


@pytest.mark.parametrize(
    "crash",
    [
        # Checkpoints: 1 the parent's first step, 2 its wait for the child (the child
        # exists already), 3-6 the child's first four steps, 7 the child's end with
        # its notice, then the notice's delivery, 8 the parent's sub_workflow step
        # done, 9 its end.
        "persist_checkpoint:before:2",
        "persist_checkpoint:after:2",
        "persist_checkpoint:before:7",
        "persist_checkpoint:after:7",
        "delivery:before:1",
        "delivery:after:1",
        "persist_checkpoint:after:8",
    ],
)
def test_kill_around_a_sub_workflow_finishes_parent_and_child(
    tmp_path: Path, db: Path | str, crash: str
) -> None:
    """Wherever the host dies between a parent starting its child and taking the
    child's end, a new host finishes both, and the parent learns how the child ended
    (its notice is stored with the child's end, whether the parent waits yet or not)."""
    log = tmp_path / "log"
    killed(spawn(db, log, "start", "mum", "1", crash=crash))
    finish(spawn(db, log, "finish"))
    assert_no_committed_step_ran_again(log)
    stored = stored_data(db)
    assert sorted(status for status, _ in stored.values()) == ["COMPLETE", "COMPLETE"]
    by_steps = sorted(sorted(k for k in data if k.startswith("s")) for _, data in stored.values())
    assert by_steps == [["s1", "s2", "s3", "s4", "s5"], ["s1", "s3"]], stored


@pytest.mark.parametrize("n", [1, 3, 5])
def test_kill_before_a_checkpoint_reruns_only_the_step_in_flight(
    tmp_path: Path, db: Path | str, n: int
) -> None:
    """n=5 is the old gap: the last step done, completion not yet written."""
    log = tmp_path / "log"
    killed(spawn(db, log, "start", "seq5", "1", crash=f"persist_checkpoint:before:{n}"))
    finish(spawn(db, log, "finish"))
    runs = assert_no_committed_step_ran_again(log)
    twice = [key for key, count in runs.items() if count > 1]
    assert [step for _, step in twice] == [str(n)], runs
    assert max(runs.values()) == 2
    assert_all_complete(db, 1, ("1", "2", "3", "4", "5"))


@pytest.mark.parametrize("when", ["before", "after"])
def test_kill_around_the_final_checkpoint_leaves_the_end_searchable(
    tmp_path: Path, db: Path | str, when: str
) -> None:
    """Killed right before or right after the checkpoint that completes the workflow
    (the fifth): the next host shows it COMPLETE in the search index. Right after, the
    dead host asked for no index work; the document is the one the checkpoint wrote
    (on PostgreSQL, in the same statement), or the next host indexes it."""
    log = tmp_path / "log"
    killed(spawn(db, log, "start", "seq5", "1", crash=f"persist_checkpoint:{when}:5"))
    assert finish(spawn(db, log, "indexed")).strip() == "COMPLETE"
    assert_all_complete(db, 1, ("1", "2", "3", "4", "5"))


@pytest.mark.parametrize("crash", ["create_workflow:after:4", "create_workflow:before:4"])
def test_kill_in_a_start_burst_loses_no_started_workflow(
    tmp_path: Path, db: Path | str, crash: str
) -> None:
    log = tmp_path / "log"
    killed(spawn(db, log, "start", "seq5", "10", crash=crash))
    created = 4 if crash.endswith("after:4") else 3
    finish(spawn(db, log, "finish"))
    assert_no_committed_step_ran_again(log)
    assert_all_complete(db, created, ("1", "2", "3", "4", "5"))


@pytest.mark.parametrize("crash", ["persist_checkpoint:before:1", "persist_checkpoint:after:1"])
def test_kill_around_the_checkpoint_that_stores_a_step_and_the_wait_after_it(
    tmp_path: Path, db: Path | str, crash: str
) -> None:
    """The wait after step 1 is replayable: it runs before step 1's checkpoint and is
    stored with it. Killed before that checkpoint, step 1 runs again (it was never
    stored) and the wait opens again; killed after it, nothing runs again.

    One workflow: with two, their checkpoints overlap (group commit), so the first may
    still be in flight when the kill comes before the second, and whose step runs
    again would be a race."""
    log = tmp_path / "log"
    killed(spawn(db, log, "start", "wait", "1", crash=crash))
    assert finish(spawn(db, log, "park")).strip() == "waiting"
    assert finish(spawn(db, log, "publish")).strip() == "COMPLETE"
    runs = assert_no_committed_step_ran_again(log)
    again = [step for (_, step), count in runs.items() if count > 1]
    assert again == (["1"] if "before" in crash else []), runs
    assert max(runs.values()) <= 2, runs
    assert_all_complete(db, 1, ("1", "3"))
    for wid, (_, data) in stored_data(db).items():
        assert data["event"] == {"for": wid}


def test_kill_while_indexing_a_taken_batch_loses_no_index_entry(
    tmp_path: Path, db: Path | str
) -> None:
    """The index consumer took a batch of index items (one dequeue) and is killed
    reading its instances, before it indexed or acknowledged them; the other
    workflows' items still wait. The next host gets the taken items again once their
    visibility timeout passes, and the index shows every workflow ended.

    The index is opened apart from the store: the store's own index is written with
    the final checkpoint, and the queue would carry nothing for ended workflows."""
    log = tmp_path / "log"
    crash = "get_workflows:before:1"
    killed(spawn(db, log, "start", "seq5", "3", crash=crash, visibility="1", search_apart=True))
    assert ["killed", "get_workflows", "before", "1"] in [e[:4] for e in lines(log)]
    assert taken_index_items(db) >= 1  # the batch the consumer held when it died
    out = finish(spawn(db, log, "indexed", visibility="1", search_apart=True))
    assert out.strip() == "COMPLETE COMPLETE COMPLETE"
    assert_all_complete(db, 3, ("1", "2", "3", "4", "5"))


@pytest.mark.parametrize("crash", ["delivery:before:2", "delivery:after:2"])
def test_kill_in_the_middle_of_event_deliveries(tmp_path: Path, db: Path | str, crash: str) -> None:
    log = tmp_path / "log"
    assert finish(spawn(db, log, "start", "wait", "3")).strip() == "waiting"
    killed(spawn(db, log, "publish", crash=crash))
    finish(spawn(db, log, "finish"))
    runs = assert_no_committed_step_ran_again(log)
    # The killed host may already be running the step after the wait of a workflow whose
    # event it delivered (its checkpoint not yet committed): that step runs again, once
    # (at-least-once). Nothing else may: no step before the wait, no step twice over.
    again = {key: count for key, count in runs.items() if count > 1}
    assert all(step == "3" and count == 2 for (_, step), count in again.items()), runs
    assert len(again) <= 2, runs
    assert_all_complete(db, 3, ("1", "3"))
    for wid, (_, data) in stored_data(db).items():
        assert data["event"] == {"for": wid}, "an event was lost or went to another workflow"


def test_kill_right_after_an_event_is_stored_with_its_lease(tmp_path: Path, db: Path | str) -> None:
    """The worker host publishing the events of two waiting workflows stores each with
    the lease on its name and key in one write, and is killed right after the second
    such write, before delivering it. The next host delivers that event once the dead
    host's lease expires: each workflow gets its own event, once, and no step before
    the wait runs again."""
    log = tmp_path / "log"
    assert finish(spawn(db, log, "start", "wait", "2")).strip() == "waiting"
    killed(spawn(db, log, "publish-here", crash="create_event:after:2"))
    assert ["killed", "create_event", "after", "2"] in [e[:4] for e in lines(log)]
    # Both events stored, and with the second its lease (taken apart, it would come
    # after the event's write, and the kill before it).
    assert stored_rows(db)[1:] == (2, 2), stored_rows(db)
    finish(spawn(db, log, "finish"))
    runs = assert_no_committed_step_ran_again(log)
    again = {key: count for key, count in runs.items() if count > 1}
    assert all(step == "3" and count == 2 for (_, step), count in again.items()), runs
    assert_all_complete(db, 2, ("1", "3"))
    for wid, (_, data) in stored_data(db).items():
        assert data["event"] == {"for": wid}, "an event was lost or went to another workflow"


@pytest.mark.parametrize("when", ["before", "after"])
def test_kill_around_a_delivery_that_takes_the_workflow_lease_and_gives_the_events_up(
    tmp_path: Path, db: Path | str, when: str
) -> None:
    """The worker host publishing here delivers each event with one write that takes
    the workflow's lease, claims it and gives the event's lease up; it is killed right
    before or after the second such write. Nothing is half done: the next host delivers
    what is left once the dead host's leases expire, each workflow gets its own event
    once, and no committed step runs again."""
    log = tmp_path / "log"
    assert finish(spawn(db, log, "start", "wait", "2")).strip() == "waiting"
    killed(spawn(db, log, "publish-here", crash=f"deliver_event:{when}:2"))
    assert ["leased-delivery", "releasing"] in [e[:2] for e in lines(log)], lines(log)
    assert ["killed", "deliver_event", when, "2"] in [e[:4] for e in lines(log)]
    finish(spawn(db, log, "finish"))
    runs = assert_no_committed_step_ran_again(log)
    again = {key: count for key, count in runs.items() if count > 1}
    assert all(step == "3" and count == 2 for (_, step), count in again.items()), runs
    assert_all_complete(db, 2, ("1", "3"))
    for wid, (_, data) in stored_data(db).items():
        assert data["event"] == {"for": wid}, "an event was lost or went to another workflow"


def lease_owner(db: Path | str, workflow_id: str) -> str | None:
    """Who the store's lock table says holds the workflow's lease (``None``: nobody,
    given up), whether or not it has expired."""
    resource = f"wfe:workflow:{workflow_id}"
    if isinstance(db, str):
        import psycopg

        schema = db.rpartition("schema=")[2]
        with psycopg.connect(pg_support.URL) as pg:
            row = pg.execute(
                f'SELECT owner FROM "{schema}".locks WHERE resource = %s', (resource,)
            ).fetchone()
    else:
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT owner FROM locks WHERE resource = ?", (resource,)).fetchone()
    assert row is not None, f"no lease row for {workflow_id}"
    return row[0]  # type: ignore[no-any-return]


def document_status(db: Path | str, workflow_id: str) -> str | None:
    """The status the store's own search document of the workflow shows (``None``:
    no document)."""
    if isinstance(db, str):
        import psycopg

        schema = db.rpartition("schema=")[2]
        with psycopg.connect(pg_support.URL) as pg:
            row = pg.execute(
                f'SELECT status FROM "{schema}".search_documents WHERE id = %s', (workflow_id,)
            ).fetchone()
    else:
        with sqlite3.connect(db) as conn:
            row = conn.execute(
                "SELECT status FROM search_documents WHERE id = ?", (workflow_id,)
            ).fetchone()
    return None if row is None else str(row[0])


@pytest.mark.parametrize("when", ["before", "after"])
def test_kill_around_the_last_checkpoint_of_a_pass_that_gives_the_lease_up(
    tmp_path: Path, db: Path | str, when: str
) -> None:
    """A waiting workflow's first pass ends with one write that stores its first step
    and its wait, gives its lease up and writes its search document; the host is
    killed right before or after it. After it, all are stored: the wait, the lease
    free at once (the next host need not wait for it to expire), the workflow
    searchable as waiting. Before it, neither the step nor the wait, and the lease is
    held: the next host runs the first step again once the dead host's lease expires.
    Either way the workflow gets its event and completes, and no committed step runs
    again."""
    log = tmp_path / "log"
    killed(spawn(db, log, "start", "wait", "1", crash=f"releasing_checkpoint:{when}:1"))
    entries = lines(log)
    assert ["killed", "releasing_checkpoint", when, "1"] in [e[:4] for e in entries]
    (wid,) = [e[1] for e in entries if e[0] == "releasing-checkpoint"]
    if when == "after":
        assert lease_owner(db, wid) is None, "the lease outlived the write giving it up"
        assert "s1" in stored_data(db)[wid][1]
        assert document_status(db, wid) == "RUNNABLE"
    else:
        assert lease_owner(db, wid) is not None, "a lease given up without its checkpoint"
        assert "s1" not in stored_data(db)[wid][1]
    assert finish(spawn(db, log, "park")).strip() == "waiting"
    finish(spawn(db, log, "publish"))
    runs = assert_no_committed_step_ran_again(log)
    assert runs[(wid, "1")] == (1 if when == "after" else 2), runs
    assert_all_complete(db, 1, ("1", "3"))
    assert lease_owner(db, wid) is None


@pytest.mark.parametrize("pause", ["blocked-loop", "sigstop"])
@pytest.mark.parametrize("locks", ["store", "separate-lock-file"])
def test_a_holder_paused_past_its_lease_is_fenced_out(
    tmp_path: Path, db: Path | str, pause: str, locks: str
) -> None:
    """Host a stops renewing (its step blocks the event loop, or the process is
    stopped) past its 1 s lease; host b claims the instance and runs the step; then a
    continues. Whether a first tries to store its result (the store refuses it,
    although b has not written anything yet) or first sees its renewal fail, a stores
    nothing and runs nothing more, and b finishes the workflow."""
    log = tmp_path / "log"
    lock_url = f"sqlite:///{tmp_path / 'locks.db'}" if locks != "store" else ""
    a = spawn(db, log, "fence", "a", locks=lock_url)
    wait_for(log, "step2-start")
    if pause == "sigstop":
        a.send_signal(signal.SIGSTOP)
    b = spawn(db, log, "fence", "b", locks=lock_url)
    try:
        wait_for(log, "step2-start", timeout=60)
        deadline = time.monotonic() + 60
        while not any(x[0] == "step2-start" and x[-1] == "b" for x in lines(log)):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        log.with_suffix(".go").touch()
        if pause == "sigstop":
            a.send_signal(signal.SIGCONT)
        assert finish(b).split() == ["COMPLETE"]
        finish(a)
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    entries = lines(log)
    (wid,) = {x[1] for x in entries if x[0] == "started"}
    b_start = next(i for i, x in enumerate(entries) if x[0] == "step2-start" and x[-1] == "b")
    after = entries[b_start:]
    # a either tries to store its step and is refused, or notices first that its lease
    # renewal fails and stops; it never stores anything once b has claimed.
    stopped = [x[0] for x in after if x[-1] == "a" and x[0] in ("refused", "lease-lost")]
    assert stopped, log.read_text()
    assert not any(x[0] == "stored" and x[-1] == "a" for x in after), "a stale write was stored"
    assert [x[-1] for x in entries if x[0] == "step" and x[2] == "3"] == ["b"]
    status, data = stored_data(db)[wid]
    assert (status, data["s2"], data["s3"]) == ("COMPLETE", "b", "b")


def stored_rows(db: Path | str) -> tuple[int, int, int]:
    """(workflows, events, event leases) the store holds, read from the database."""
    queries = (
        "SELECT count(*) FROM workflows",
        "SELECT count(*) FROM events",
        "SELECT count(*) FROM locks WHERE resource LIKE 'wfe:event:%'",
    )
    if isinstance(db, Path):
        with sqlite3.connect(db) as conn:
            a, b, c = (conn.execute(q).fetchone()[0] for q in queries)
        return a, b, c
    import psycopg

    schema = db.rsplit("schema=", 1)[1]
    with psycopg.connect(pg_support.URL) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        a, b, c = (conn.execute(q).fetchone()[0] for q in queries)  # type: ignore[index]
    return a, b, c


@pytest.mark.parametrize(
    "crash",
    [
        "purge_workflows:before:1",
        "purge_workflows:after:1",
        "purge_events:before:1",
        "purge_events:after:1",
    ],
)
def test_kill_in_a_purge_leaves_all_or_nothing_and_the_next_purge_finishes(
    tmp_path: Path, db: Path | str, crash: str
) -> None:
    """A purge deletes an instance with everything that is its, and an event with its
    free lease, each in one transaction: killed around either, the store holds all of
    a batch or none of it, and the next purge takes what is left."""
    log = tmp_path / "log"
    assert finish(spawn(db, log, "start", "wait", "3")).strip() == "waiting"
    finish(spawn(db, log, "publish"))
    assert stored_rows(db) == (3, 3, 3)
    killed(spawn(db, log, "purge", crash=crash))
    workflows, events, leases = stored_rows(db)
    assert workflows in (0, 3), workflows
    assert events in (0, 3), events
    if crash.startswith("purge_events"):
        assert workflows == 0  # the instances went first, in their own transaction
        assert (events, leases) == ((0, 0) if crash.endswith("after:1") else (3, 3))
    finish(spawn(db, log, "purge"))
    assert stored_rows(db) == (0, 0, 0)
    if isinstance(db, Path):
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
