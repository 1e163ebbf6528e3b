"""Step output lines in the SQLite file: the optional
:class:`~wfe.core.protocols.StepLogStore` capability of the persistence provider.

One table, ``step_logs``, whose rowid is the line's ``seq`` (it only grows, across
workflows and processes sharing the file); a batch of lines is one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from wfe.core.protocols import StepLogLine

from . import _codec as c

if TYPE_CHECKING:
    from ._database import Database

STEP_LOGS_DDL = (
    "CREATE TABLE IF NOT EXISTS step_logs ("
    "seq INTEGER PRIMARY KEY AUTOINCREMENT, workflow_id TEXT NOT NULL, "
    "pointer_id TEXT NOT NULL, step_name TEXT NOT NULL, attempt INTEGER NOT NULL, "
    "stream TEXT NOT NULL, line TEXT NOT NULL, time INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_step_logs_workflow ON step_logs (workflow_id, seq)",
)


def create_step_logs(conn: Connection) -> None:
    """Schema migration: the ``step_logs`` table."""
    for statement in STEP_LOGS_DDL:
        conn.exec_driver_sql(statement)


class SqliteStepLogs:
    """The step-log methods of the SQLite persistence provider."""

    _db: Database

    async def append_step_logs(self, lines: Sequence[StepLogLine]) -> None:
        """Store a batch of lines in one transaction (see :class:`StepLogStore`)."""
        if not lines:
            return
        rows = [
            (x.workflow_id, x.pointer_id, x.step_name, x.attempt, x.stream, x.line, c.to_us(x.time))
            for x in lines
        ]

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO step_logs (workflow_id, pointer_id, step_name, attempt, stream, "
                "line, time) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

        await self._db.write(run)

    async def read_step_logs(
        self,
        workflow_id: str,
        *,
        step: str | None = None,
        after: int = 0,
        limit: int = 1000,
    ) -> list[StepLogLine]:
        """A page of a workflow's lines after ``after``, in order."""
        where = "workflow_id = ? AND seq > ?" + (" AND step_name = ?" if step is not None else "")
        params: tuple[object, ...] = (workflow_id, after) + ((step,) if step is not None else ())

        def run(conn: sqlite3.Connection) -> list[StepLogLine]:
            rows = conn.execute(
                "SELECT seq, workflow_id, pointer_id, step_name, attempt, stream, line, time "
                f"FROM step_logs WHERE {where} ORDER BY seq LIMIT ?",
                (*params, max(0, limit)),
            ).fetchall()
            return [
                StepLogLine(
                    seq=r[0],
                    workflow_id=r[1],
                    pointer_id=r[2],
                    step_name=r[3],
                    attempt=r[4],
                    stream=r[5],
                    line=r[6],
                    time=c.from_us(r[7]),
                )
                for r in rows
            ]

        return await self._db.read(run)
