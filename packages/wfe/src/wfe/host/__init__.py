"""wfe.host: the workflow host, its builder, and provider discovery."""

from ._builder import WorkflowHostBuilder as WorkflowHostBuilder
from ._host import WorkflowHost as WorkflowHost

__all__ = ["WorkflowHost", "WorkflowHostBuilder"]
