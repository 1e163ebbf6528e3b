"""The executor: runs a held workflow instance's pointers (see :mod:`._run`)."""

from ._env import ExecutorEnv as ExecutorEnv
from ._env import StepMiddleware as StepMiddleware
from ._outcomes import EVERY_EVENT as EVERY_EVENT
from ._run import InstanceRun as InstanceRun
from ._state import InstanceState as InstanceState

__all__ = ["EVERY_EVENT", "ExecutorEnv", "InstanceRun", "InstanceState", "StepMiddleware"]
