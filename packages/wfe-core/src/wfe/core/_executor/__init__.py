"""The executor: runs a held workflow instance's pointers (see :mod:`._run`)."""

from ._env import ExecutorEnv as ExecutorEnv
from ._env import StepMiddleware as StepMiddleware
from ._failure import error_records as error_records
from ._outcomes import EVERY_EVENT as EVERY_EVENT
from ._run import Command as Command
from ._run import InstanceRun as InstanceRun

__all__ = [
    "EVERY_EVENT",
    "Command",
    "ExecutorEnv",
    "InstanceRun",
    "StepMiddleware",
    "error_records",
]
