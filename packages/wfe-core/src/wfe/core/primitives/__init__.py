"""Built-in step bodies the builder uses for control flow."""

from ._container import ContainerStep as ContainerStep
from ._container import Saga as Saga
from ._container import Sequence as Sequence
from ._control import Decide as Decide
from ._control import EndWorkflow as EndWorkflow
from ._control import ForEach as ForEach
from ._control import If as If
from ._control import Switch as Switch
from ._control import When as When
from ._control import While as While
from ._events import CHILD_FINISHED_EVENT as CHILD_FINISHED_EVENT
from ._events import SubWorkflow as SubWorkflow
from ._events import WaitFor as WaitFor
from ._time import Delay as Delay
from ._time import Recur as Recur
from ._time import Schedule as Schedule

__all__ = [
    "CHILD_FINISHED_EVENT",
    "ContainerStep",
    "Decide",
    "Delay",
    "EndWorkflow",
    "ForEach",
    "If",
    "Recur",
    "Saga",
    "Schedule",
    "Sequence",
    "SubWorkflow",
    "Switch",
    "WaitFor",
    "When",
    "While",
]
