"""wfe.host: the workflow host, its builder, and provider discovery."""

from ._blocking import BlockingWorkflowHost as BlockingWorkflowHost
from ._blocking import HostStoppedError as HostStoppedError
from ._blocking import LifecycleEventStream as LifecycleEventStream
from ._builder import WorkflowHostBuilder as WorkflowHostBuilder
from ._host import WorkflowHost as WorkflowHost

__all__ = [
    "BlockingWorkflowHost",
    "HostStoppedError",
    "LifecycleEventStream",
    "WorkflowHost",
    "WorkflowHostBuilder",
]
