"""A process SIGKILLed while its WAL is being checkpointed beside its commits (on the
checkpointer's connection and thread) loses no checkpoint it was told was stored, leaves
a sound database file, and the store reopened goes on writing with its WAL bounded."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import trio

from wfe.core.protocols import Checkpoint
from wfe.sqlite import SqlitePersistenceProvider, _writer

WORKER = Path(__file__).with_name("checkpoint_kill_worker.py")


async def _acked_after_two_checkpoints(proc: trio.Process) -> int:
    """Read the worker's lines until it is inside its second checkpoint beside the
    commits with 20 more checkpoints stored meanwhile; the last acknowledged ``n``."""
    assert proc.stdout is not None
    begun, last, since = 0, 0, 0
    pending = b""
    async for chunk in proc.stdout:
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            if line.startswith(b"checkpointing"):
                begun, since = begun + 1, 0
            elif line.startswith(b"ack "):
                last, since = int(line.split()[1]), since + 1
                if begun >= 2 and since >= 20:
                    return last
    raise AssertionError(f"the worker ended first (exit code {await proc.wait()})")


async def test_a_kill_during_a_checkpoint_beside_the_commits_loses_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "wfe.db"
    proc = await trio.lowlevel.open_process(
        [sys.executable, str(WORKER), str(db), "killed-mid-checkpoint"],
        stdout=subprocess.PIPE,
    )
    try:
        with trio.fail_after(120):
            acked = await _acked_after_two_checkpoints(proc)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == -signal.SIGKILL

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
