"""Helpers: run one YAML step body on a real context, outside any host."""

from __future__ import annotations

from typing import Any

import pytest

from wfe.core import (
    ExecutionPointer,
    StepBody,
    StepExecutionContext,
    WorkflowInstance,
    WorkflowStep,
)


class Runner:
    """Runs a step body with a context over ``data``, collecting the log lines."""

    def __init__(self) -> None:
        self.logs: list[tuple[str, str]] = []

    def context(self, data: dict[str, Any], body: type[StepBody]) -> StepExecutionContext:
        step = WorkflowStep(id=0, body=body, name="step")
        return StepExecutionContext(
            workflow=WorkflowInstance(definition_id="t", version=1, data=data),
            step=step,
            pointer=ExecutionPointer(step_id=0),
            log_sink=lambda stream, line: self.logs.append((stream, line)),
        )

    async def run(self, body: type[StepBody], data: dict[str, Any]) -> dict[str, Any]:
        await body().run(self.context(data, body))
        return data

    def lines(self, stream: str) -> list[str]:
        return [line for s, line in self.logs if s == stream]


@pytest.fixture
def runner() -> Runner:
    return Runner()
