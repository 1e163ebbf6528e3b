"""wfe.core: models, provider protocols, builder, primitives and executor of wfe."""

from ._builder import ContainerBuilder as ContainerBuilder
from ._builder import ParallelBuilder as ParallelBuilder
from ._builder import StepBuilder as StepBuilder
from ._builder import WhenBuilder as WhenBuilder
from ._builder import WorkflowBuilder as WorkflowBuilder
from ._clock import Clock as Clock
from ._clock import SystemClock as SystemClock
from ._clock import TrioClock as TrioClock
from ._errors import ConfigurationError as ConfigurationError
from ._errors import DataSerializationError as DataSerializationError
from ._errors import DefinitionDriftError as DefinitionDriftError
from ._errors import DefinitionError as DefinitionError
from ._errors import DefinitionNotFoundError as DefinitionNotFoundError
from ._errors import ProviderError as ProviderError
from ._errors import ProviderNotFoundError as ProviderNotFoundError
from ._errors import StaleLeaseError as StaleLeaseError
from ._errors import StepError as StepError
from ._errors import StoreLostError as StoreLostError
from ._errors import WfeError as WfeError
from ._errors import WorkflowNotFoundError as WorkflowNotFoundError
from ._errors import WorkflowTimeoutError as WorkflowTimeoutError
from ._lifecycle import LifecycleEvent as LifecycleEvent
from ._lifecycle import StepCompleted as StepCompleted
from ._lifecycle import StepStarted as StepStarted
from ._lifecycle import WorkflowCompleted as WorkflowCompleted
from ._lifecycle import WorkflowError as WorkflowError
from ._lifecycle import WorkflowResumed as WorkflowResumed
from ._lifecycle import WorkflowStarted as WorkflowStarted
from ._lifecycle import WorkflowSuspended as WorkflowSuspended
from ._lifecycle import WorkflowTerminated as WorkflowTerminated
from ._models import Event as Event
from ._models import EventSubscription as EventSubscription
from ._models import ExecutionError as ExecutionError
from ._models import ExecutionPointer as ExecutionPointer
from ._models import PointerStatus as PointerStatus
from ._models import ScheduledCommand as ScheduledCommand
from ._models import WorkflowInstance as WorkflowInstance
from ._models import WorkflowStatus as WorkflowStatus
from ._redact import redact_url as redact_url
from ._results import ErrorBehavior as ErrorBehavior
from ._results import ErrorBehaviorType as ErrorBehaviorType
from ._results import ExecutionResult as ExecutionResult
from ._step import InputMapping as InputMapping
from ._step import OutputMapping as OutputMapping
from ._step import StepBody as StepBody
from ._step import StepExecutionContext as StepExecutionContext
from ._step import StepOutcome as StepOutcome
from ._step import WorkflowDefinition as WorkflowDefinition
from ._step import WorkflowStep as WorkflowStep

__all__ = [
    "Clock",
    "ConfigurationError",
    "ContainerBuilder",
    "DataSerializationError",
    "DefinitionDriftError",
    "DefinitionError",
    "DefinitionNotFoundError",
    "ErrorBehavior",
    "ErrorBehaviorType",
    "Event",
    "EventSubscription",
    "ExecutionError",
    "ExecutionPointer",
    "ExecutionResult",
    "InputMapping",
    "LifecycleEvent",
    "OutputMapping",
    "ParallelBuilder",
    "PointerStatus",
    "ProviderError",
    "ProviderNotFoundError",
    "ScheduledCommand",
    "StaleLeaseError",
    "StepBody",
    "StepBuilder",
    "StepCompleted",
    "StepError",
    "StepExecutionContext",
    "StepOutcome",
    "StepStarted",
    "StoreLostError",
    "SystemClock",
    "TrioClock",
    "WfeError",
    "WhenBuilder",
    "WorkflowBuilder",
    "WorkflowCompleted",
    "WorkflowDefinition",
    "WorkflowError",
    "WorkflowInstance",
    "WorkflowNotFoundError",
    "WorkflowResumed",
    "WorkflowStarted",
    "WorkflowStatus",
    "WorkflowStep",
    "WorkflowSuspended",
    "WorkflowTerminated",
    "redact_url",
]
