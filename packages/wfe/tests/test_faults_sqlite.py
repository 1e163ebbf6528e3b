"""Faults under a running host on a SQLite file: the file deleted or replaced (the host
stops with a clear StoreLostError instead of writing into the void), the disk full and
a read-only remount on a real small tmpfs (the host keeps running, retries with backoff,
reports the error, and finishes every workflow once the disk has room again)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from wfe.core import (
    ConfigurationError,
    LifecycleEvent,
    StoreLostError,
    WorkflowCompleted,
    WorkflowStatus,
)
from wfe.host import BlockingWorkflowHost, WorkflowHost

from .cli_support import wfe_cmd, write
from .fault_support import PAYLOAD, Gated, fill, host_builder, small_tmpfs, wait_until

N = 12


async def _collect(host: WorkflowHost, into: list[LifecycleEvent]) -> None:
    async for event in host.lifecycle_events(replay=False):
        into.append(event)


async def _stopped_by_lost_store(
    db: Path, gated: Gated, disrupt: Callable[[], None]
) -> StoreLostError:
    """Run N gated workflows up to their second step, ``disrupt()`` the file, open the
    gate; the host must stop with StoreLostError and complete nothing after the fault."""
    events: list[LifecycleEvent] = []

    async def run() -> None:
        async with host_builder(db, gated.definition()).build() as host, trio.open_nursery() as n:
            n.start_soon(_collect, host, events)
            for _ in range(N):
                await host.start_workflow("gated", 1, {})
            await wait_until(lambda: len(gated.at_gate) == N, "every workflow at step 2")
            disrupt()
            gated.gate.set()
            with trio.fail_after(15):
                await trio.sleep_forever()

    with pytest.raises(StoreLostError) as info:
        await run()
    assert not [e for e in events if isinstance(e, WorkflowCompleted)], (
        "a workflow was reported complete after its store was gone"
    )
    assert str(db) in str(info.value)
    return info.value


async def test_deleting_the_file_stops_the_host_with_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "wfe.db"
    error = await _stopped_by_lost_store(db, Gated(), lambda: os.unlink(db))
    assert "was deleted" in str(error)


async def test_replacing_the_file_stops_the_host_and_the_old_file_keeps_its_work(
    tmp_path: Path,
) -> None:
    db = tmp_path / "wfe.db"
    aside = tmp_path / "moved-aside.db"
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE unrelated (x)").connection.close()
    gated = Gated()

    def replace() -> None:
        os.rename(db, aside)  # e.g. a restore: the running store's file moved away
        os.rename(other, db)

    error = await _stopped_by_lost_store(db, gated, replace)
    assert "was replaced by another file" in str(error)
    # Everything committed before the swap is in the file that was opened (its WAL was
    # checkpointed into it when the host closed), and nothing went into the new one.
    async with host_builder(aside, gated.definition()).run_workflows(False).build() as host:
        stored = await host.list_workflows(take=1000)
        assert len(stored) == N
        for w in stored:
            assert (await host.get_workflow(w.id)).data == {"s1": w.id}
    tables = sqlite3.connect(db).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("unrelated",)]


def test_the_wfe_worker_exits_non_zero_naming_the_deleted_file(tmp_path: Path) -> None:
    flow = write(
        tmp_path,
        "flow.yaml",
        """
        workflow:
          id: idle
          version: 1
          steps:
            - name: Hello
              config:
                run: echo hello
        """,
    )
    db = tmp_path / "wfe.db"
    proc = subprocess.Popen(
        wfe_cmd("worker", str(flow), "--store", f"sqlite:///{db}"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "worker serving" in line:
                break
        else:
            raise AssertionError(f"the worker did not start: {proc.communicate()}")
        os.unlink(db)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode not in (0, None), (out, err)
    assert "StoreLostError" in err, err
    assert str(db) in err, err
    assert "was deleted" in err, err


async def test_a_full_disk_is_retried_reported_and_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The disk fills while every workflow waits in its second step; their checkpoints
    (and the host's queue writes) fail with "database or disk is full". The host keeps
    running and reports the failures; once the filler is gone every workflow completes,
    with its first step's stored result intact and run once."""
    with small_tmpfs(tmp_path / "disk", "16m") as disk:
        db = disk / "wfe.db"
        gated = Gated()
        async with host_builder(db, gated.definition()).build() as host:
            ids = [await host.start_workflow("gated", 1, {}) for _ in range(N)]
            await wait_until(lambda: len(gated.at_gate) == N, "every workflow at step 2")
            filler = fill(disk)
            gated.gate.set()

            def full_reported() -> bool:
                stats = host.statistics()
                return bool(stats.failing) and "full" in (stats.last_error or "")

            await wait_until(full_reported, "the host to report the full disk")
            stats = host.statistics()
            assert not stats.healthy
            assert stats.store_errors > 0
            filler.unlink()
            with trio.fail_after(20):
                done = [await host.wait_for_workflow(wid, timeout=20) for wid in ids]
            await wait_until(lambda: host.statistics().healthy, "the host to recover")
            errors = host.statistics().store_errors
        # Logged once per failure streak, and when it ends: not once per retry.
        logged = [r.getMessage() for r in caplog.records if r.name == "wfe.host"]
        failed = [m for m in logged if " failed: " in m]
        assert failed, logged
        assert len(failed) < errors or errors == 1, logged
        assert any("works again after" in m for m in logged), logged
        for w in done:
            assert w.status is WorkflowStatus.COMPLETE
            assert w.data == {"s1": w.id, "s2": "x" * PAYLOAD}
        assert all(gated.runs[(wid, "s1")] == 1 for wid in ids), "a stored step ran again"


async def test_a_read_only_remount_is_refused_under_a_running_host(tmp_path: Path) -> None:
    """Linux refuses ``mount -o remount,ro`` while a file on it is open for writing (the
    store's is), so a running host cannot be remounted read-only under it: it finishes
    its work. A store on a mount that is read-only when the host starts is refused with
    an error naming the file."""
    with small_tmpfs(tmp_path / "disk", "16m") as disk:
        db = disk / "wfe.db"
        gated = Gated()
        async with host_builder(db, gated.definition()).build() as host:
            ids = [await host.start_workflow("gated", 1, {}) for _ in range(N)]
            await wait_until(lambda: len(gated.at_gate) == N, "every workflow at step 2")
            remount = await trio.run_process(
                ["mount", "-o", "remount,ro", str(disk)], capture_stderr=True, check=False
            )
            assert remount.returncode != 0, "remounted read-only under open files"
            assert b"busy" in remount.stderr, remount.stderr
            gated.gate.set()
            with trio.fail_after(20):
                done = [await host.wait_for_workflow(wid, timeout=20) for wid in ids]
            assert host.statistics().store_errors == 0
        assert {w.status for w in done} == {WorkflowStatus.COMPLETE}

        await trio.run_process(["mount", "-o", "remount,ro", str(disk)])
        with pytest.raises(ConfigurationError, match="read-only") as info:
            async with host_builder(db, gated.definition()).build():
                pass
        assert str(db) in str(info.value)


def test_a_blocking_host_reports_its_statistics(tmp_path: Path) -> None:
    gated = Gated()
    gated.gate.set()
    with BlockingWorkflowHost(host_builder(tmp_path / "wfe.db", gated.definition())) as host:
        wid = host.start_workflow("gated", 1, {})
        assert host.wait_for_workflow(wid, timeout=10).status is WorkflowStatus.COMPLETE
        stats = host.statistics()
    assert stats.healthy
    assert stats.store_errors == 0
    assert stats.last_error is None
