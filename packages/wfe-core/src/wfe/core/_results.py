"""What a step body returns, and what happens when it raises."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs


@attrs.frozen(kw_only=True)
class ExecutionResult:
    """The result of running a step body once.

    Build one with the class methods; a body that returns ``None`` means
    :meth:`next`.
    """

    proceed: bool = False
    outcome_value: Any = None
    persistence_data: Any = None
    sleep_for: timedelta | None = None
    branch_values: tuple[Any, ...] | None = None
    event_name: str | None = None
    event_key: str | None = None
    event_as_of: datetime | None = None

    @classmethod
    def next(cls) -> ExecutionResult:
        """The step is done; follow its default outcome."""
        return cls(proceed=True)

    @classmethod
    def outcome(cls, value: Any) -> ExecutionResult:
        """The step is done; follow the outcomes matching ``value``."""
        return cls(proceed=True, outcome_value=value)

    @classmethod
    def persist(cls, data: Any) -> ExecutionResult:
        """The step is not done; keep ``data`` and run it again on the next pass."""
        return cls(proceed=False, persistence_data=data)

    @classmethod
    def sleep(cls, duration: timedelta, data: Any = None) -> ExecutionResult:
        """The step is not done; run it again after ``duration`` with ``data``."""
        return cls(proceed=False, sleep_for=duration, persistence_data=data)

    @classmethod
    def branch(cls, values: Sequence[Any], data: Any) -> ExecutionResult:
        """Start the step's children once per value (``ctx.item``); keep ``data``."""
        return cls(proceed=False, branch_values=tuple(values), persistence_data=data)

    @classmethod
    def wait_for_event(cls, name: str, key: str, as_of: datetime | None = None) -> ExecutionResult:
        """Park the step until an event ``name``/``key`` at or after ``as_of`` arrives."""
        return cls(proceed=False, event_name=name, event_key=key, event_as_of=as_of)


class ErrorBehaviorType(enum.StrEnum):
    """What to do when a step raises."""

    RETRY = "retry"
    SUSPEND = "suspend"
    TERMINATE = "terminate"
    COMPENSATE = "compensate"


@attrs.frozen(kw_only=True)
class ErrorBehavior:
    """How a failing step is handled; build one with the class methods."""

    type: ErrorBehaviorType
    interval: timedelta = timedelta(seconds=60)
    max_retries: int | None = None

    @classmethod
    def retry(cls, interval: timedelta, max_retries: int | None = None) -> ErrorBehavior:
        """Retry after ``interval``; ``max_retries=N`` allows N retries (N+1 attempts),
        ``None`` retries forever. Exhaustion fails the step and suspends the workflow."""
        if max_retries is not None and max_retries < 0:
            raise ValueError(f"max_retries must be >= 0 or None, got {max_retries}")
        if interval < timedelta(0):
            raise ValueError(f"retry interval must not be negative, got {interval}")
        return cls(type=ErrorBehaviorType.RETRY, interval=interval, max_retries=max_retries)

    @classmethod
    def suspend(cls) -> ErrorBehavior:
        """Suspend the workflow; resuming runs the failed step again."""
        return cls(type=ErrorBehaviorType.SUSPEND)

    @classmethod
    def terminate(cls) -> ErrorBehavior:
        """Terminate the workflow."""
        return cls(type=ErrorBehaviorType.TERMINATE)

    @classmethod
    def compensate(cls) -> ErrorBehavior:
        """Run the compensating steps of the failed scope, in reverse completion order."""
        return cls(type=ErrorBehaviorType.COMPENSATE)


DEFAULT_ERROR_BEHAVIOR = ErrorBehavior.retry(timedelta(seconds=60), max_retries=3)
