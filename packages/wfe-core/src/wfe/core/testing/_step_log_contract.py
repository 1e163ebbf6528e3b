"""Contract of the optional :class:`~wfe.core.protocols.StepLogStore` capability."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .._models import WorkflowStatus
from ..protocols import PersistenceProvider, StepLogLine
from ._samples import T0, make_instance, unique_word


def _line(wid: str, n: int, step: str = "build", stream: str = "stdout") -> StepLogLine:
    return StepLogLine(
        workflow_id=wid,
        pointer_id=f"p-{step}",
        step_name=step,
        attempt=1,
        stream=stream,
        line=f"line {n} ünïcode \\t tab",
        time=T0 + timedelta(milliseconds=n),
    )


class StepLogContract:
    """Run against a fixture ``step_logs`` yielding an entered provider with the
    capability (usually the persistence provider itself)."""

    async def test_lines_come_back_in_order_with_growing_seq(self, step_logs: Any) -> None:
        wid = unique_word()
        await step_logs.append_step_logs([_line(wid, i) for i in range(3)])
        await step_logs.append_step_logs([_line(wid, 3, step="test", stream="stderr")])
        got = await step_logs.read_step_logs(wid)
        assert [x.line for x in got] == [f"line {i} ünïcode \\t tab" for i in range(4)]
        assert [x.seq for x in got] == sorted({x.seq for x in got})
        assert (got[3].stream, got[3].step_name) == ("stderr", "test")
        assert (got[0].time, got[0].attempt, got[0].pointer_id) == (T0, 1, "p-build")

    async def test_pages_follow_after_and_limit(self, step_logs: Any) -> None:
        wid = unique_word()
        await step_logs.append_step_logs([_line(wid, i) for i in range(5)])
        first = await step_logs.read_step_logs(wid, limit=2)
        rest = await step_logs.read_step_logs(wid, after=first[-1].seq, limit=10)
        assert [x.line.split()[1] for x in first + rest] == ["0", "1", "2", "3", "4"]
        assert await step_logs.read_step_logs(wid, after=rest[-1].seq) == []

    async def test_lines_are_filtered_by_step_and_workflow(self, step_logs: Any) -> None:
        wid, other = unique_word(), unique_word()
        await step_logs.append_step_logs(
            [_line(wid, 0, "a"), _line(other, 1, "a"), _line(wid, 2, "b")]
        )
        assert [x.line.split()[1] for x in await step_logs.read_step_logs(wid, step="b")] == ["2"]
        assert len(await step_logs.read_step_logs(wid)) == 2
        assert await step_logs.read_step_logs(unique_word()) == []

    async def test_purging_a_workflow_removes_its_lines(self, step_logs: Any) -> None:
        """When the step-log store is the persistence provider (the usual case)."""
        if not isinstance(step_logs, PersistenceProvider):
            return
        logs: Any = step_logs
        old = T0 - timedelta(days=30000)
        done = make_instance(status=WorkflowStatus.COMPLETE, create_time=old, complete_time=old)
        kept = make_instance(status=WorkflowStatus.COMPLETE, create_time=T0, complete_time=T0)
        for instance in (done, kept):
            await step_logs.create_workflow(instance)
        await logs.append_step_logs([_line(done.id, 0), _line(kept.id, 1)])
        cutoff = old + timedelta(days=1)
        assert await step_logs.purge_workflows(cutoff, [WorkflowStatus.COMPLETE]) == [done.id]
        assert await logs.read_step_logs(done.id) == []
        assert len(await logs.read_step_logs(kept.id)) == 1

    async def test_an_empty_batch_is_accepted(self, step_logs: Any) -> None:
        await step_logs.append_step_logs([])
