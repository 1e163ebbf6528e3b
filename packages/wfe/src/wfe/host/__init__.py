"""wfe.host: the workflow host, its builder, and provider discovery."""

# The names are imported on first use (PEP 562), so the ``wfe`` command, which lives in
# this package, starts without loading the engine: ``wfe --help`` stays instant.
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._blocking import BlockingWorkflowHost as BlockingWorkflowHost
    from ._blocking import HostStoppedError as HostStoppedError
    from ._blocking import LifecycleEventStream as LifecycleEventStream
    from ._builder import WorkflowHostBuilder as WorkflowHostBuilder
    from ._health import HostStatistics as HostStatistics
    from ._host import WorkflowHost as WorkflowHost

_WHERE = {
    "BlockingWorkflowHost": "._blocking",
    "HostStatistics": "._health",
    "HostStoppedError": "._blocking",
    "LifecycleEventStream": "._blocking",
    "PurgeReport": "._retention",
    "WorkflowHostBuilder": "._builder",
    "WorkflowHost": "._host",
}

__all__ = [
    "BlockingWorkflowHost",
    "HostStatistics",
    "HostStoppedError",
    "LifecycleEventStream",
    "PurgeReport",
    "WorkflowHost",
    "WorkflowHostBuilder",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
