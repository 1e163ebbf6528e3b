"""The fluent builder that turns Python code into a :class:`WorkflowDefinition`."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar, cast

from ._errors import DefinitionError
from ._results import ErrorBehavior
from ._step import (
    InputMapping,
    OutputMapping,
    StepBody,
    StepExecutionContext,
    StepFunction,
    StepOutcome,
    WorkflowDefinition,
    WorkflowStep,
    function_step,
)
from .primitives import (
    Decide,
    Delay,
    EndWorkflow,
    ForEach,
    If,
    Recur,
    Saga,
    Schedule,
    Sequence,
    SubWorkflow,
    Switch,
    WaitFor,
    When,
    While,
)

D = TypeVar("D")
StepLike = type[StepBody] | Callable[..., Any]
BranchFn = Callable[["WorkflowBuilder[D]"], Any]


def _positional_arity(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def data_fn(fn: Any) -> Callable[[Any, StepExecutionContext], Any]:
    """Adapt a value, ``fn()``, ``fn(data)`` or ``fn(data, ctx)`` to ``(data, ctx) -> value``."""
    if not callable(fn):
        return lambda _data, _ctx: fn
    arity = _positional_arity(fn)
    if arity == 0:
        return lambda _data, _ctx: fn()
    if arity == 1:
        return lambda data, _ctx: fn(data)
    return lambda data, ctx: fn(data, ctx)


def _as_body(x: StepLike) -> type[StepBody]:
    if isinstance(x, type) and issubclass(x, StepBody):
        if x.run is StepBody.run:
            raise DefinitionError(f"{x.__qualname__} must implement async def run(self, ctx)")
        return x
    if isinstance(x, StepBody):
        raise DefinitionError(
            f"pass the StepBody class {type(x).__qualname__}, not an instance; "
            "set its attributes with .input(...)"
        )
    if callable(x):
        return function_step(cast(StepFunction, x))
    raise DefinitionError(f"a step must be a StepBody subclass or a function, got {x!r}")


def _body(base: type[StepBody], name: str, **attrs_: Any) -> type[StepBody]:
    """A subclass of ``base`` with class attributes bound (per-step configuration)."""
    return type(f"{base.__name__}[{name}]", (base,), {"fingerprint_key": base.__name__, **attrs_})


class _Graph:
    """The steps under construction, shared by a builder and its nested branch builders."""

    def __init__(self) -> None:
        self.steps: list[WorkflowStep] = []
        self.attachments: list[tuple[int, str]] = []

    def add(self, body: type[StepBody], parent: int | None) -> WorkflowStep:
        step = WorkflowStep(id=len(self.steps), body=body, parent=parent)
        self.steps.append(step)
        return step


class _Verbs(ABC, Generic[D]):
    """Verbs that append a step after the current position."""

    _builder: WorkflowBuilder[D]

    @abstractmethod
    def _link_from(self) -> int | None:
        """The step the next verb's step follows (``None``: nothing to link from)."""

    @abstractmethod
    def _parent(self) -> int | None:
        """The container the next verb's step belongs to."""

    def _append(self, body: type[StepBody]) -> StepBuilder[D]:
        graph = self._builder._graph
        source = self._link_from()
        step = graph.add(body, self._parent())
        if source is not None:
            graph.steps[source].outcomes.append(StepOutcome(next_step=step.id))
        self._builder._last = step.id
        return StepBuilder(self._builder, step)

    def then(self, step: StepLike) -> StepBuilder[D]:
        """Append a step: a :class:`StepBody` subclass or a (sync or async) function."""
        return self._append(_as_body(step))

    def then_fn(self, fn: Callable[[StepExecutionContext], Any]) -> StepBuilder[D]:
        """Append a plain function as a step."""
        return self._append(function_step(fn))

    def wait_for(
        self,
        event_name: str,
        key: Any,
        effective_date: datetime | Callable[..., Any] | None = None,
        cancel_condition: Callable[[Any], bool] | None = None,
    ) -> StepBuilder[D]:
        """Wait for an external event; the step exposes ``event_data`` to ``output``."""
        sb = self._append(_body(WaitFor, event_name))
        sb.input("event_name", lambda _d, _c: event_name)
        sb.input("event_key", key)
        if effective_date is not None:
            sb.input("effective_date", effective_date)
        if cancel_condition is not None:
            sb.cancel_condition(cancel_condition)
        return sb

    def delay(self, duration: timedelta | Callable[..., timedelta]) -> StepBuilder[D]:
        """Sleep for ``duration`` (a timedelta, or a function of data/ctx)."""
        return self._append(Delay).input("duration", duration)

    def if_do(self, condition: Any, fn: BranchFn[D]) -> StepBuilder[D]:
        """Run the branch built by ``fn`` once, when ``condition(data[, ctx])`` holds."""
        sb = self._append(If).input("condition", condition)
        sb._add_branch(fn)
        return sb

    def while_do(self, condition: Any, fn: BranchFn[D]) -> StepBuilder[D]:
        """Run the branch built by ``fn`` while ``condition(data[, ctx])`` holds."""
        sb = self._append(While).input("condition", condition)
        sb._add_branch(fn)
        return sb

    def for_each(self, items: Any, fn: BranchFn[D], parallel: bool = True) -> StepBuilder[D]:
        """Run the branch once per item of ``items(data[, ctx])`` (item in ``ctx.item``)."""
        body = _body(ForEach, "parallel" if parallel else "sequential", run_parallel=parallel)
        sb = self._append(body).input("collection", items)
        sb._add_branch(fn)
        return sb

    def parallel(self) -> ParallelBuilder[D]:
        """Start a set of branches that run concurrently: ``.do(fn).do(fn).join()``."""
        return ParallelBuilder(self._append(_body(Sequence, "parallel")))

    def saga(self, fn: BranchFn[D]) -> StepBuilder[D]:
        """A transaction: if a step inside fails, completed steps are compensated."""
        sb = self._append(Saga)
        sb._add_branch(fn)
        return sb

    def decide(self, fn: Callable[..., Any]) -> StepBuilder[D]:
        """Compute a value; ``.branch(value, branch)`` picks where to continue."""
        return self._append(Decide).input("value", fn)

    def recur(self, interval: Any, until: Any) -> ContainerBuilder[D]:
        """Run a block every ``interval`` until ``until(data[, ctx])`` holds."""
        sb = self._append(Recur).input("interval", interval).input("stop", until)
        return ContainerBuilder(sb)

    def schedule(self, interval: Any) -> ContainerBuilder[D]:
        """Run a block once after ``interval``."""
        return ContainerBuilder(self._append(Schedule).input("interval", interval))

    def sub_workflow(
        self, definition_id: str, version: int | None = None, data: Any = None
    ) -> StepBuilder[D]:
        """Start workflow ``definition_id`` and wait for it to end; the step exposes
        ``child_id``, ``child_status`` and ``child_data``."""
        body = _body(SubWorkflow, definition_id)
        sb = self._append(body)
        sb.input("definition_id", lambda _d, _c: definition_id)
        sb.input("version", lambda _d, _c: version)
        if data is not None:
            sb.input("data", data)
        return sb

    def end_workflow(self) -> StepBuilder[D]:
        """Complete the workflow here; nothing after this step runs."""
        return self._append(EndWorkflow)

    def build(
        self,
        id: str,
        version: int,
        *,
        description: str | None = None,
        default_error_behavior: ErrorBehavior | None = None,
    ) -> WorkflowDefinition:
        """The finished definition."""
        return self._builder._build(id, version, description, default_error_behavior)


class WorkflowBuilder(_Verbs[D]):
    """Builds a workflow definition for data of type ``data_type`` (an attrs class or dict).

    ``start_with`` adds the first step; every verb returns a builder for the step it
    added, so a workflow reads top to bottom.
    """

    def __init__(self, data_type: type[D] | None = None) -> None:
        self.data_type = data_type
        self._graph = _Graph()
        self._builder = self
        self._last: int | None = None
        self._parent_id: int | None = None
        self._default_error: ErrorBehavior | None = None

    def _nested(self, parent: int) -> WorkflowBuilder[D]:
        nested: WorkflowBuilder[D] = WorkflowBuilder(self.data_type)
        nested._graph = self._graph
        nested._parent_id = parent
        return nested

    def _link_from(self) -> int | None:
        return self._last

    def _parent(self) -> int | None:
        return self._parent_id

    def start_with(self, step: StepLike) -> StepBuilder[D]:
        """Add the first step of this (branch of the) workflow."""
        self._last = None
        return self._append(_as_body(step))

    def create_branch(self) -> WorkflowBuilder[D]:
        """A detached builder for a ``decide(...).branch(value, branch)`` branch."""
        return WorkflowBuilder(self.data_type)

    def use_default_error_behavior(self, behavior: ErrorBehavior) -> WorkflowBuilder[D]:
        """The error behaviour of steps that set none (default: retry every 60 s, 3 times)."""
        self._default_error = behavior
        return self

    def _build(
        self,
        id: str,
        version: int,
        description: str | None,
        default_error_behavior: ErrorBehavior | None,
    ) -> WorkflowDefinition:
        steps = self._graph.steps
        if not steps:
            raise DefinitionError(f"workflow {id!r} v{version} has no steps")
        by_external = {s.external_id: s.id for s in steps if s.external_id}
        for source, external in self._graph.attachments:
            if external not in by_external:
                raise DefinitionError(
                    f"workflow {id!r}: attach({external!r}) names no step; "
                    f"known ids: {sorted(by_external) or 'none'}"
                )
            steps[source].outcomes.append(StepOutcome(next_step=by_external[external]))
        return WorkflowDefinition(
            id=id,
            version=version,
            steps=list(steps),
            data_type=self.data_type,
            default_error_behavior=default_error_behavior or self._default_error,
            description=description,
        )


class StepBuilder(_Verbs[D]):
    """Configures the step just added; its verbs append the next step after it."""

    def __init__(self, builder: WorkflowBuilder[D], step: WorkflowStep) -> None:
        self._builder = builder
        self.step = step

    def _link_from(self) -> int | None:
        return self.step.id

    def _parent(self) -> int | None:
        return self.step.parent

    def _add_branch(self, fn: BranchFn[D]) -> None:
        graph = self._builder._graph
        first = len(graph.steps)
        fn(self._builder._nested(self.step.id))
        if len(graph.steps) == first:
            raise DefinitionError(f"step {self.step.display_name!r}: its block adds no steps")
        self.step.children.append(first)

    def name(self, name: str) -> StepBuilder[D]:
        """A display name (shown in logs, timelines and errors)."""
        self.step.name = name
        return self

    def id(self, external_id: str) -> StepBuilder[D]:
        """A stable id other steps can ``attach`` to."""
        self.step.external_id = external_id
        return self

    def attach(self, external_id: str) -> StepBuilder[D]:
        """Continue at the step with ``id(external_id)`` (a goto)."""
        self._builder._graph.attachments.append((self.step.id, external_id))
        return self

    def input(self, attr: str, value: Any) -> StepBuilder[D]:
        """Set body attribute ``attr`` before each run to ``value(data[, ctx])``."""
        self.step.inputs.append(InputMapping(attr, data_fn(value)))
        return self

    def output(self, target: str | Callable[..., Any], fn: Any = None) -> StepBuilder[D]:
        """After the body ran: ``output("attr", fn(step))`` sets a data attribute/key;
        ``output(fn(step, data))`` does anything with both."""
        if isinstance(target, str):
            if fn is None:
                raise DefinitionError(f"output({target!r}) needs a function of the step")
            self.step.outputs.append(OutputMapping(target, fn))
        else:
            self.step.outputs.append(OutputMapping(None, target))
        return self

    def on_error(self, behavior: ErrorBehavior) -> StepBuilder[D]:
        """How this step's failures are handled."""
        self.step.error_behavior = behavior
        return self

    def compensate_with(self, step: StepLike) -> StepBuilder[D]:
        """The step that undoes this one when it (or its saga) fails."""
        comp = self._builder._graph.add(_as_body(step), self.step.parent)
        comp.is_compensation = True
        self.step.compensation_step_id = comp.id
        return self

    def compensate_with_sequence(self, fn: BranchFn[D]) -> StepBuilder[D]:
        """Several steps, in order, that undo this one."""
        comp = self._builder._graph.add(_body(Sequence, "compensation"), self.step.parent)
        comp.is_compensation = True
        StepBuilder(self._builder, comp)._add_branch(fn)
        self.step.compensation_step_id = comp.id
        return self

    def cancel_condition(self, fn: Callable[[Any], bool], proceed: bool = False) -> StepBuilder[D]:
        """Cancel this step when ``fn(data)`` holds; with ``proceed`` the flow continues."""
        self.step.cancel_condition = fn
        self.step.proceed_on_cancel = proceed
        return self

    def branch(self, value: Any, branch: WorkflowBuilder[D] | StepBuilder[D]) -> StepBuilder[D]:
        """Continue into ``branch`` (from ``create_branch()``, or any step builder of it)
        when the outcome is ``value``."""
        if isinstance(branch, StepBuilder):
            branch = branch._builder
        if not isinstance(branch, WorkflowBuilder):
            raise DefinitionError(
                f"branch({value!r}, ...) takes a builder from create_branch(), "
                f"got {type(branch).__qualname__}"
            )
        graph = self._builder._graph
        if branch._graph is graph:
            raise DefinitionError("branch() takes a builder from create_branch()")
        if not branch._graph.steps:
            raise DefinitionError(f"branch for value {value!r} has no steps")
        offset = len(graph.steps)

        def shift(i: int | None) -> int | None:
            return None if i is None else i + offset

        for s in branch._graph.steps:
            s.id += offset
            s.children = [c + offset for c in s.children]
            for o in s.outcomes:
                o.next_step += offset
            s.compensation_step_id = shift(s.compensation_step_id)
            s.parent = self.step.parent if s.parent is None else s.parent + offset
            graph.steps.append(s)
        graph.attachments.extend((i + offset, e) for i, e in branch._graph.attachments)
        branch._graph = _Graph()
        self.step.outcomes.append(StepOutcome(next_step=offset, value=value, label=repr(value)))
        return self

    def when(self, value: Any) -> WhenBuilder[D]:
        """One case of a switch on the previous step's outcome; every matching case runs."""
        switch = self if issubclass(self.step.body, Switch) else self._append(Switch)
        return WhenBuilder(switch, value)


class ParallelBuilder(Generic[D]):
    """``parallel().do(fn).do(fn).join()``: branches that run at the same time."""

    def __init__(self, container: StepBuilder[D]) -> None:
        self._container = container

    def do(self, fn: BranchFn[D]) -> ParallelBuilder[D]:
        """Add a branch."""
        self._container._add_branch(fn)
        return self

    def join(self) -> StepBuilder[D]:
        """Wait for every branch; continue after the parallel block."""
        if not self._container.step.children:
            raise DefinitionError("parallel() needs at least one .do(...) branch")
        return self._container


class ContainerBuilder(Generic[D]):
    """``recur(...)``/``schedule(...)``: ``.do(fn)`` gives the block to run."""

    def __init__(self, container: StepBuilder[D]) -> None:
        self._container = container

    def do(self, fn: BranchFn[D]) -> StepBuilder[D]:
        self._container._add_branch(fn)
        return self._container


class WhenBuilder(Generic[D]):
    """``when(value).do(fn)``: the block to run when the outcome equals ``value``."""

    def __init__(self, switch: StepBuilder[D], value: Any) -> None:
        self._switch = switch
        self._value = value

    def do(self, fn: BranchFn[D]) -> StepBuilder[D]:
        graph = self._switch._builder._graph
        case = graph.add(
            _body(When, repr(self._value), case_value=self._value), self._switch.step.id
        )
        self._switch.step.children.append(case.id)
        StepBuilder(self._switch._builder, case)._add_branch(fn)
        return self._switch
