"""A process that stores checkpoints of one workflow back to back on a SQLite file,
printing ``ack <n>`` once the checkpoint with data ``{"n": n}`` is stored, and
``checkpointing`` when its WAL checkpointer (a thread of its own) begins a checkpoint
beside those commits; each such checkpoint lasts at least 0.2 s, so the parent can kill
the process while one is under way. Run: ``checkpoint_kill_worker.py DB WORKFLOW_ID``."""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime

import trio

from wfe.core import WorkflowInstance
from wfe.core.protocols import Checkpoint
from wfe.sqlite import SqlitePersistenceProvider, _writer

_real = _writer._checkpoint_wal
_out = threading.Lock()


def _say(line: str) -> None:
    """One whole line (two threads print)."""
    with _out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _slow_beside(conn: object) -> None:
    if threading.current_thread().name.startswith("wfe-sqlite-checkpointer"):
        _say("checkpointing")
        time.sleep(0.2)
    _real(conn)  # type: ignore[arg-type]


async def main(db: str, workflow_id: str) -> None:
    _writer._checkpoint_wal = _slow_beside  # type: ignore[assignment]
    async with SqlitePersistenceProvider(f"sqlite:///{db}") as store:
        inst = WorkflowInstance(
            id=workflow_id,
            definition_id="d",
            version=1,
            data={"n": 0},
            create_time=datetime(2026, 12, 4, tzinfo=UTC),
        )
        await store.create_workflow(inst)
        n = 0
        while True:
            n += 1
            inst.data = {"n": n}
            await store.persist_checkpoint(Checkpoint(instance=inst))
            _say(f"ack {n}")


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2])
