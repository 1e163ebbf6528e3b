"""A process SIGKILLed while its WAL is being checkpointed beside its commits (on the
checkpointer's connection and thread) loses no checkpoint it was told was stored, leaves
a sound database file, and the store reopened goes on writing with its WAL bounded."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import trio

from wfe.core.protocols import Checkpoint
from wfe.sqlite import SqlitePersistenceProvider, _writer

WORKER = Path(__file__).with_name("checkpoint_kill_worker.py")
T = TypeVar("T")


async def _lines(proc: trio.Process) -> AsyncIterator[list[str]]:
    """The words of each line the worker prints, as it prints them."""
    assert proc.stdout is not None
    pending = b""
    async for chunk in proc.stdout:
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            yield line.decode().split()
    raise AssertionError(f"the worker ended first (exit code {await proc.wait()})")


async def _killed_once(argv: list[str], until: Callable[[trio.Process], Awaitable[T]]) -> T:
    """Start the worker ``argv``, SIGKILL it as soon as ``until`` (reading its output)
    returns, and return what ``until`` returned."""
    proc = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE)
    try:
        with trio.fail_after(120):
            found = await until(proc)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return found


async def _acked_after_two_checkpoints(proc: trio.Process) -> int:
    """Read the worker's lines until it is inside its second checkpoint beside the
    commits with 20 more checkpoints stored meanwhile; the last acknowledged ``n``."""
    begun, last, since = 0, 0, 0
    async with contextlib.aclosing(_lines(proc)) as lines:
        async for words in lines:
            if words[0] == "checkpointing":
                begun, since = begun + 1, 0
            elif words[0] == "ack":
                last, since = int(words[1]), since + 1
                if begun >= 2 and since >= 20:
                    return last
    raise AssertionError("unreachable")


async def test_a_kill_during_a_checkpoint_beside_the_commits_loses_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "wfe.db"
    acked = await _killed_once(
        [sys.executable, str(WORKER), str(db), "killed-mid-checkpoint"],
        _acked_after_two_checkpoints,
    )

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (data,) = conn.execute(
            "SELECT data FROM workflows WHERE id = 'killed-mid-checkpoint'"
        ).fetchone()
    # Everything acknowledged is there (a write in flight at the kill may be too).
    assert json.loads(data)["n"] >= acked

    async with SqlitePersistenceProvider(f"sqlite:///{db}") as store:
        inst = await store.get_workflow("killed-mid-checkpoint")
        wal = trio.Path(f"{db}-wal")
        for i in range(_writer._CHECKPOINT_EVERY * 6):
            inst.data = {"n": acked + 1 + i}
            await store.persist_checkpoint(Checkpoint(instance=inst))
            if i == _writer._CHECKPOINT_EVERY * 2:
                after_two = (await wal.stat()).st_size
        assert (await wal.stat()).st_size <= after_two * 2
        stored = await store.get_workflow("killed-mid-checkpoint")
        assert stored.data == {"n": acked + _writer._CHECKPOINT_EVERY * 6}


BATCH_WORKER = Path(__file__).with_name("batch_kill_worker.py")


async def _acked_until_inside_a_batch(proc: trio.Process) -> tuple[dict[str, int], int]:
    """Read the batch worker's lines until it is writing a search document inside a
    batch (after shared batches were seen); what was acknowledged by then, by workflow,
    and the largest batch seen."""
    acked: dict[str, int] = {}
    largest = 0
    async with contextlib.aclosing(_lines(proc)) as lines:
        async for words in lines:
            if words[0] == "ack":
                acked[words[1]] = int(words[2])
            elif words[0] == "batch":
                largest = max(largest, int(words[1]))
            elif words[0] == "in" and largest > 1:
                return acked, largest
    raise AssertionError("unreachable")


async def test_a_kill_inside_a_shared_batch_loses_no_acknowledged_checkpoint(
    tmp_path: Path,
) -> None:
    """SIGKILL while a batch of checkpoints sharing one savepoint is writing a search
    document (some of its batches rolled back to that savepoint and run again write by
    write, for a refused checkpoint among them): every acknowledged checkpoint is
    stored, the file and its FTS5 index pass their integrity checks, every document
    matches its workflow's stored data, and the store goes on writing."""
    db = tmp_path / "wfe.db"
    acked, largest = await _killed_once(
        [sys.executable, str(BATCH_WORKER), str(db)], _acked_until_inside_a_batch
    )
    assert largest > 1
    assert len(acked) == 20

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.execute("INSERT INTO search_fts(search_fts) VALUES ('integrity-check')")
        stored = dict(conn.execute("SELECT id, data FROM workflows").fetchall())
        documents = dict(conn.execute("SELECT id, data FROM search_documents").fetchall())
    for wid, n in acked.items():
        # Everything acknowledged is there (a write in flight at the kill may be too).
        assert json.loads(stored[wid])["n"] >= n
        assert documents[wid] == stored[wid]
    assert json.loads(stored["wf-20"]) == {"n": 0}  # the refused one: never written
    assert "wf-20" not in documents

    async with SqlitePersistenceProvider(f"sqlite:///{db}") as store:
        inst = await store.get_workflow("wf-0")
        inst.data = {"n": 10_000}
        await store.persist_checkpoint(Checkpoint(instance=inst))
        assert (await store.get_workflow("wf-0")).data == {"n": 10_000}
