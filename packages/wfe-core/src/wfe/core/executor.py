"""The executor's public seam, for hosts (``wfe.host`` and any other).

A host owns leases, queues and timers; the executor owns an instance's state machine.
The host drives it through a small command set and never touches its insides:

- ``InstanceRun(env, instance, definition, fencing_token)`` for an instance the host
  has claimed (``PersistenceProvider.claim_workflow`` with its lease's token);
- ``await run.run()`` runs runnable steps until the instance is idle, writing one
  :class:`~wfe.core.protocols.Checkpoint` per change;
- ``await run.deliver_event(subscription, event, mark_processed=...)`` hands an
  event to a held instance; ``await run.apply(Command.TERMINATE)`` (or SUSPEND,
  RESUME) is the one implementation of the control commands, used in a pass and out
  of one (a run made for the command alone, with ``definition=None`` if the host does
  not know the definition); ``await run.defer(message, until)`` records an error and
  retries later; ``run.drain()`` starts nothing new;
- :data:`DEFAULT_ERROR_BEHAVIOR` is what a step does on error when neither it nor its
  definition says (retry every 60 s, 3 times);
- :func:`error_records` is the one way an error becomes an ``ExecutionError`` and a
  ``WorkflowError`` lifecycle event.
"""

from ._executor import EVERY_EVENT as EVERY_EVENT
from ._executor import Command as Command
from ._executor import ExecutorEnv as ExecutorEnv
from ._executor import InstanceRun as InstanceRun
from ._executor import StepMiddleware as StepMiddleware
from ._executor import error_records as error_records
from ._models import as_utc as as_utc
from ._results import DEFAULT_ERROR_BEHAVIOR as DEFAULT_ERROR_BEHAVIOR
from ._step import LogSink as LogSink
from ._telemetry import get_tracer as get_tracer

__all__ = [
    "DEFAULT_ERROR_BEHAVIOR",
    "EVERY_EVENT",
    "Command",
    "ExecutorEnv",
    "InstanceRun",
    "LogSink",
    "StepMiddleware",
    "as_utc",
    "error_records",
    "get_tracer",
]
