"""PostgreSQL specifics of the step-log capability (the contract is in test_contract)."""

from __future__ import annotations

from datetime import UTC, datetime

from wfe.core.protocols import StepLogLine, StepLogStore
from wfe.postgres import PostgresPersistenceProvider


async def test_a_line_holding_nul_is_kept_with_the_nul_marked(
    persistence: PostgresPersistenceProvider,
) -> None:
    assert isinstance(persistence, StepLogStore)
    line = StepLogLine(
        workflow_id="w1",
        pointer_id="p1",
        step_name="build",
        attempt=1,
        stream="stdout",
        line="before\x00after",
        time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    await persistence.append_step_logs([line])
    (stored,) = await persistence.read_step_logs("w1")
    assert stored.line == "before\ufffdafter"
    assert (stored.step_name, stored.attempt, stored.time) == ("build", 1, line.time)
