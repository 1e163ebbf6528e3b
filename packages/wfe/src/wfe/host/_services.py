"""What the dispatcher and middleware need from their host: a small record, not the host."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs

from wfe.core import Clock, LifecycleEvent, StepExecutionContext, WorkflowInstance
from wfe.core.protocols import (
    DistributedLockProvider,
    PersistenceProvider,
    QueueProvider,
    SearchIndex,
)

from ._config import HostConfig
from ._registry import DefinitionRegistry

StartWorkflow = Callable[..., Awaitable[str]]
"""``WorkflowHost.start_workflow`` (children are started through it)."""


@attrs.frozen(kw_only=True)
class HostServices:
    """The entered providers and settings of one running host."""

    config: HostConfig
    persistence: PersistenceProvider
    locks: DistributedLockProvider
    queues: QueueProvider
    search_index: SearchIndex | None
    clock: Clock
    registry: DefinitionRegistry
    publish: Callable[[LifecycleEvent], None]
    start_workflow: StartWorkflow
    # A workflow run here ended, its final checkpoint stored (WorkflowHost._ended_here).
    ended_here: Callable[[WorkflowInstance], None]
    # Each line a step body logs, innermost (the host's step logs); None: none kept.
    step_log: Callable[[StepExecutionContext, str, str], None] | None = None
