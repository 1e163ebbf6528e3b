"""Step output lines in PostgreSQL: the optional
:class:`~wfe.core.protocols.StepLogStore` capability of the persistence provider.

One table, ``step_logs``, whose identity column is the line's ``seq``. A batch of lines
is one statement. Lines of one workflow come from the one host running it, one batch
after another, so their ``seq`` order is the order they were written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from wfe.core.protocols import StepLogLine

from . import _codec as c
from ._database import ASYNC_COMMIT

if TYPE_CHECKING:
    from ._database import Database

_INSERT = (
    "INSERT INTO {s}.step_logs (workflow_id, pointer_id, step_name, attempt, stream, line, "
    "time) SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::text[], "
    # Step logs are diagnostics: a server crash may lose the last lines, never a step.
    f"%s::text[], %s::bigint[]) WHERE {ASYNC_COMMIT}"
)


def _text(value: str) -> str:
    # PostgreSQL text cannot hold NUL: a log line keeps its place, marked.
    return value.replace("\x00", "\ufffd")


class PostgresStepLogs:
    """The step-log methods of the PostgreSQL persistence provider."""

    _db: Database

    async def append_step_logs(self, lines: Sequence[StepLogLine]) -> None:
        """Store a batch of lines in one statement (see :class:`StepLogStore`)."""
        if not lines:
            return
        columns = (
            [_text(x.workflow_id) for x in lines],
            [_text(x.pointer_id) for x in lines],
            [_text(x.step_name) for x in lines],
            [x.attempt for x in lines],
            [_text(x.stream) for x in lines],
            [_text(x.line) for x in lines],
            [c.to_us(x.time) for x in lines],
        )
        sql = self._db.q(_INSERT)
        await self._db.run(lambda conn: conn.execute(sql, columns))

    async def read_step_logs(
        self,
        workflow_id: str,
        *,
        step: str | None = None,
        after: int = 0,
        limit: int = 1000,
    ) -> list[StepLogLine]:
        """A page of a workflow's lines after ``after``, in order."""
        where = "workflow_id = %s AND seq > %s" + (" AND step_name = %s" if step else "")
        params: tuple[object, ...] = (workflow_id, after) + ((step,) if step else ())
        sql = self._db.q(
            "SELECT seq, workflow_id, pointer_id, step_name, attempt, stream, line, time "
            f"FROM {{s}}.step_logs WHERE {where} ORDER BY seq LIMIT %s"
        )
        rows = await self._db.run(
            lambda conn: conn.execute(sql, (*params, max(0, limit))).fetchall(), idempotent=True
        )
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
