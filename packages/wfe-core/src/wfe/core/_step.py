"""Step bodies, the context they run in, and the static shape of a workflow."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import attrs

from ._errors import DefinitionError
from ._results import ErrorBehavior, ExecutionResult

if TYPE_CHECKING:
    from ._models import ExecutionPointer, WorkflowInstance

LogSink = Callable[[str, str], None]
"""Receives ``(stream_name, line)``: step output streamed to the host's log."""


def _discard_log(stream: str, line: str) -> None:
    return None


class WorkflowServices(Protocol):
    """What the host offers step bodies that start other workflows."""

    async def start_child(
        self,
        definition_id: str,
        version: int | None,
        data: Any,
        child_id: str,
        parent_id: str,
    ) -> str: ...


@attrs.define(kw_only=True)
class StepExecutionContext:
    """What a step body sees while it runs.

    ``workflow`` is the live instance (``workflow.data`` may be read and mutated; the
    change is saved with the step's checkpoint), ``pointer`` the execution pointer of
    this visit, ``item`` the loop item for ``for_each`` bodies, ``persistence_data``
    what the body returned with :meth:`ExecutionResult.persist` last time.
    """

    workflow: WorkflowInstance
    step: WorkflowStep
    pointer: ExecutionPointer
    item: Any = None
    persistence_data: Any = None
    log_sink: LogSink = _discard_log
    branch_complete: Callable[[], bool] = lambda: True
    lookup_pointer: Callable[[str], ExecutionPointer | None] = lambda _id: None
    services: WorkflowServices | None = None

    @property
    def data(self) -> Any:
        """Shortcut for ``workflow.data``."""
        return self.workflow.data

    def log(self, line: str, stream: str = "log") -> None:
        """Send a line of step output to the host's log sink."""
        self.log_sink(stream, line)

    def is_branch_complete(self) -> bool:
        """Whether every child pointer started by this (container) step has ended."""
        return self.branch_complete()


class StepBody:
    """Base class of step implementations.

    Subclasses declare inputs as class attributes (set per run by ``input(...)``),
    and implement :meth:`run`. A fresh instance is made for every run, so state
    between runs belongs in ``persistence_data``.

    Capabilities the executor reads are declared here, with their defaults:
    ``ends_workflow`` (finishing this step completes the workflow), ``is_saga``
    (a failure inside this container compensates its completed steps) and
    ``replayable`` (see below).
    """

    ends_workflow: ClassVar[bool] = False
    is_saga: ClassVar[bool] = False
    replayable: ClassVar[bool] = False
    """Whether running this step again repeats nothing outside its instance (control
    flow, waits, delays: it only decides from the instance's own state). Such a step
    may run before the checkpoint of the step before it and shares the next one: after
    a crash it simply runs again. Other steps never start before the checkpoint that
    created them."""

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        """Do the step's work; return how to proceed (``None`` means next)."""
        raise DefinitionError(f"{type(self).__qualname__} must implement async def run(self, ctx)")


StepFunction = Callable[
    [StepExecutionContext], "ExecutionResult | Awaitable[ExecutionResult | None] | None"
]


class FunctionStep(StepBody):
    """A step whose body is a plain (sync or async) function of the context."""

    fn: ClassVar[StepFunction]

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        result = type(self).fn(ctx)
        if isinstance(result, Awaitable):
            result = await result
        if result is not None and not isinstance(result, ExecutionResult):
            raise TypeError(
                f"step function {getattr(type(self).fn, '__qualname__', type(self).fn)!r} returned "
                f"{type(result).__qualname__}; expected ExecutionResult or None"
            )
        return result


def function_step(fn: StepFunction) -> type[FunctionStep]:
    """Wrap a plain function into a :class:`StepBody` subclass."""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "function")
    short = getattr(fn, "__name__", "function")
    return type(
        f"FunctionStep[{name}]",
        (FunctionStep,),
        {"fn": staticmethod(fn), "default_name": short},
    )


@attrs.frozen
class InputMapping:
    """Sets body attribute ``attr`` to ``fn(data, ctx)`` before the body runs."""

    attr: str
    fn: Callable[[Any, StepExecutionContext], Any]

    def apply(self, body: StepBody, data: Any, ctx: StepExecutionContext) -> None:
        setattr(body, self.attr, self.fn(data, ctx))


@attrs.frozen
class OutputMapping:
    """After the body ran: sets data ``attr`` (attribute or dict key) to ``fn(body)``,
    or, with ``attr`` None, calls ``fn(body, data)``."""

    attr: str | None
    fn: Callable[..., Any]

    def apply(self, body: StepBody, data: Any) -> None:
        if self.attr is None:
            self.fn(body, data)
            return
        value = self.fn(body)
        if isinstance(data, dict):
            data[self.attr] = value
        else:
            setattr(data, self.attr, value)


ANY_OUTCOME: Any = attrs.make_class("_AnyOutcome", {}, frozen=True)()


@attrs.define(kw_only=True)
class StepOutcome:
    """An edge to ``next_step``, followed when the result's outcome matches ``value``.

    ``value`` ``None`` matches any outcome (the default edge); a callable value is
    evaluated against the workflow data.
    """

    next_step: int
    value: Any = None
    label: str | None = None

    def matches(self, outcome_value: Any, data: Any) -> bool:
        value = self.value(data) if callable(self.value) else self.value
        return value is None or value == outcome_value


@attrs.define(kw_only=True, eq=False)
class WorkflowStep:
    """One step of a definition: its body, edges, data mappings and error handling.

    ``children`` are the first steps of the branches of a container step; ``parent``
    is the container the step belongs to (``None`` at top level).
    """

    id: int
    body: type[StepBody]
    name: str | None = None
    external_id: str | None = None
    children: list[int] = attrs.field(factory=list)
    outcomes: list[StepOutcome] = attrs.field(factory=list)
    inputs: list[InputMapping] = attrs.field(factory=list)
    outputs: list[OutputMapping] = attrs.field(factory=list)
    error_behavior: ErrorBehavior | None = None
    compensation_step_id: int | None = None
    cancel_condition: Callable[[Any], bool] | None = None
    proceed_on_cancel: bool = False
    parent: int | None = None
    is_compensation: bool = False

    @property
    def display_name(self) -> str:
        default = getattr(self.body, "default_name", None)
        return self.name or self.external_id or default or self.body.__name__

    def make_body(self) -> StepBody:
        """A fresh body instance for one run."""
        return self.body()


def _body_key(body: type[StepBody]) -> str:
    key = getattr(body, "fingerprint_key", None)
    if isinstance(key, str):
        return key
    if issubclass(body, FunctionStep):
        return "fn"
    return f"{body.__module__}:{body.__qualname__}"


@attrs.define(kw_only=True, eq=False)
class WorkflowDefinition:
    """A workflow's step graph, registered with a host under ``id`` and ``version``."""

    id: str
    version: int
    steps: list[WorkflowStep]
    data_type: type | None = None
    default_error_behavior: ErrorBehavior | None = None
    description: str | None = None
    data_validator: Callable[[Any], None] | None = None
    """Called by ``start_workflow`` with the initial data; raises to reject it."""

    def step(self, step_id: int) -> WorkflowStep:
        """The step with this id."""
        return self.steps[step_id]

    @property
    def fingerprint(self) -> str:
        """A hash of the step graph, to detect a changed definition under the same id/version."""
        h = hashlib.sha256()
        for s in self.steps:
            outcomes = ",".join(
                f"{o.next_step}:{'fn' if callable(o.value) else repr(o.value)}" for o in s.outcomes
            )
            h.update(
                f"{s.id}|{_body_key(s.body)}|{s.children}|{outcomes}|{s.compensation_step_id}|"
                f"{s.parent}|{s.external_id}\n".encode()
            )
        return h.hexdigest()[:16]
