"""What a YAML step sees beside the workflow data while it runs: its matrix combination,
the workflow's secrets and the artifacts of earlier steps (``${{ matrix.x }}``,
``${{ secrets.NAME }}``, ``${{ artifacts.step.name }}``).

The scope lives in a context variable set by :class:`~wfe.yaml.YamlStep` around the
step's body, so it is private to the step's task (concurrent steps each see their own)
and never part of the stored workflow data — secrets in particular never are.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from typing import Any

import attrs


@attrs.frozen(kw_only=True)
class StepScope:
    """The non-data namespaces of the running step."""

    matrix: Mapping[str, Any] = attrs.field(factory=dict)
    secrets: Mapping[str, str] = attrs.field(factory=dict)
    artifacts: Mapping[str, Mapping[str, str]] = attrs.field(factory=dict)


_EMPTY = StepScope()
_CURRENT: contextvars.ContextVar[StepScope] = contextvars.ContextVar(
    "wfe_yaml_step_scope",
    default=_EMPTY,
)


def current_scope() -> StepScope:
    """The scope of the step running in this task (empty outside a YAML step)."""
    return _CURRENT.get()


@contextlib.contextmanager
def using_scope(scope: StepScope) -> Iterator[StepScope]:
    """Make ``scope`` the current one for the duration of the ``with`` block."""
    token = _CURRENT.set(scope)
    try:
        yield scope
    finally:
        _CURRENT.reset(token)
