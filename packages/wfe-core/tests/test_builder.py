"""The builder: the step graph it produces and the mistakes it refuses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from core_models import Counter

from wfe.core import (
    DefinitionError,
    ErrorBehavior,
    ExecutionResult,
    StepBody,
    StepExecutionContext,
    WorkflowBuilder,
    WorkflowDefinition,
)
from wfe.core.primitives import ForEach, Saga, Switch, When


class Noop(StepBody):
    async def run(self, ctx: StepExecutionContext) -> ExecutionResult:
        return ExecutionResult.next()


class NoRun(StepBody):
    """Forgets to implement run."""


def nothing(ctx: StepExecutionContext) -> None:
    return None


def linear() -> WorkflowDefinition:
    return WorkflowBuilder(Counter).start_with(Noop).then(nothing).then(Noop).build("lin", 3)


def test_build_records_id_version_data_type_and_description() -> None:
    definition = (
        WorkflowBuilder(Counter)
        .start_with(Noop)
        .build("order", 2, description="Orders", default_error_behavior=ErrorBehavior.suspend())
    )
    assert (definition.id, definition.version) == ("order", 2)
    assert definition.data_type is Counter
    assert definition.description == "Orders"
    assert definition.default_error_behavior == ErrorBehavior.suspend()


def test_then_links_each_step_to_the_next() -> None:
    steps = linear().steps
    assert [s.id for s in steps] == [0, 1, 2]
    assert [[o.next_step for o in s.outcomes] for s in steps] == [[1], [2], []]


def test_use_default_error_behavior_sets_the_definition_default() -> None:
    behavior = ErrorBehavior.retry(timedelta(seconds=5), max_retries=1)
    definition = (
        WorkflowBuilder(dict).use_default_error_behavior(behavior).start_with(Noop).build("d", 1)
    )
    assert definition.default_error_behavior == behavior


def test_name_id_and_display_name() -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(Noop)
        .name("Charge card")
        .then(nothing)
        .id("notify")
        .then(Noop)
        .build("names", 1)
    )
    named, external, plain = definition.steps
    assert named.display_name == "Charge card"
    assert external.external_id == "notify"
    assert external.display_name == "notify"
    assert plain.display_name == "Noop"


def test_function_steps_are_named_after_the_function() -> None:
    step = WorkflowBuilder(dict).start_with(nothing).build("fn", 1).steps[0]
    assert step.display_name == "nothing"


def test_container_children_belong_to_their_container() -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(Noop)
        .for_each(lambda data: [1], lambda b: b.start_with(Noop).then(Noop))
        .then(Noop)
        .build("container", 1)
    )
    _first, loop, inner1, inner2, after = definition.steps
    assert issubclass(loop.body, ForEach)
    assert loop.children == [inner1.id]
    assert inner1.parent == loop.id
    assert inner2.parent == loop.id
    assert after.parent is None
    assert [o.next_step for o in loop.outcomes] == [after.id]


def test_parallel_has_one_child_per_branch() -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(Noop)
        .parallel()
        .do(lambda b: b.start_with(Noop))
        .do(lambda b: b.then(Noop))
        .do(lambda b: b.start_with(Noop))
        .join()
        .build("par", 1)
    )
    assert len(definition.steps[1].children) == 3


def test_for_each_sequential_is_not_parallel() -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(Noop)
        .for_each(lambda data: [], lambda b: b.start_with(Noop), parallel=False)
        .build("seq", 1)
    )
    assert definition.steps[1].body.run_parallel is False  # type: ignore[attr-defined]


def test_several_whens_form_one_switch() -> None:
    definition = (
        WorkflowBuilder(dict)
        .start_with(Noop)
        .when(1)
        .do(lambda b: b.start_with(Noop))
        .when(2)
        .do(lambda b: b.start_with(Noop))
        .build("switch", 1)
    )
    switches = [s for s in definition.steps if issubclass(s.body, Switch)]
    assert len(switches) == 1
    cases = [definition.steps[c] for c in switches[0].children]
    assert all(issubclass(c.body, When) for c in cases)
    assert [c.body.case_value for c in cases] == [1, 2]  # type: ignore[attr-defined]


def test_decide_branches_become_valued_outcomes() -> None:
    builder = WorkflowBuilder(dict)
    yes = builder.create_branch()
    yes.start_with(Noop).then(Noop)
    no = builder.create_branch()
    no.start_with(Noop)
    definition = (
        builder.start_with(Noop)
        .decide(lambda d: True)
        .branch(True, yes)
        .branch(False, no)
        .build("decide", 1)
    )
    decide = definition.steps[1]
    assert [(o.value, o.next_step) for o in decide.outcomes] == [(True, 2), (False, 4)]
    assert [o.next_step for o in definition.steps[2].outcomes] == [3]


def test_attach_adds_an_edge_to_the_named_step() -> None:
    definition = (
        WorkflowBuilder(dict).start_with(Noop).id("top").then(Noop).attach("top").build("goto", 1)
    )
    assert [o.next_step for o in definition.steps[1].outcomes] == [0]


def test_compensate_with_adds_a_compensation_step_in_the_same_scope() -> None:
    definition = (
        WorkflowBuilder(dict)
        .saga(lambda b: b.start_with(Noop).compensate_with(nothing))
        .build("comp", 1)
    )
    saga, step, comp = definition.steps
    assert issubclass(saga.body, Saga)
    assert step.compensation_step_id == comp.id
    assert comp.is_compensation
    assert comp.parent == saga.id
    assert step.outcomes == []  # a compensation is not a successor


def test_fingerprint_is_stable_and_tracks_the_graph() -> None:
    assert linear().fingerprint == linear().fingerprint
    longer = (
        WorkflowBuilder(Counter)
        .start_with(Noop)
        .then(nothing)
        .then(Noop)
        .then(Noop)
        .build("lin", 3)
    )
    assert longer.fingerprint != linear().fingerprint


def test_fingerprint_ignores_display_names() -> None:
    renamed = WorkflowBuilder(Counter).start_with(Noop).name("x").then(nothing).then(Noop)
    assert renamed.build("lin", 3).fingerprint == linear().fingerprint


def test_an_empty_workflow_is_refused() -> None:
    with pytest.raises(DefinitionError, match="'empty' v1 has no steps"):
        WorkflowBuilder(dict).build("empty", 1)


def test_attach_to_an_unknown_id_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(DefinitionError, match=r"attach\('nowhere'\) names no step.*\['top'\]"):
        WorkflowBuilder(dict).start_with(Noop).id("top").then(Noop).attach("nowhere").build(
            "bad", 1
        )


def test_a_step_body_without_run_is_refused() -> None:
    with pytest.raises(DefinitionError, match="NoRun must implement"):
        WorkflowBuilder(dict).start_with(NoRun)


def test_a_step_body_instance_is_refused() -> None:
    with pytest.raises(DefinitionError, match="pass the StepBody class Noop, not an instance"):
        WorkflowBuilder(dict).start_with(Noop())  # type: ignore[arg-type]


def test_a_non_callable_step_is_refused() -> None:
    with pytest.raises(DefinitionError, match="must be a StepBody subclass or a function"):
        WorkflowBuilder(dict).start_with(42)  # type: ignore[arg-type]


def test_a_block_without_steps_is_refused() -> None:
    with pytest.raises(DefinitionError, match="its block adds no steps"):
        WorkflowBuilder(dict).start_with(Noop).if_do(lambda d: True, lambda b: None)


def test_parallel_without_branches_is_refused() -> None:
    with pytest.raises(DefinitionError, match="at least one"):
        WorkflowBuilder(dict).start_with(Noop).parallel().join()


def test_output_by_name_needs_a_function() -> None:
    with pytest.raises(DefinitionError, match=r"output\('x'\) needs a function"):
        WorkflowBuilder(dict).start_with(Noop).output("x")


def test_branch_needs_a_builder_from_create_branch() -> None:
    builder = WorkflowBuilder(dict)
    step = builder.start_with(Noop).decide(lambda d: 1)
    with pytest.raises(DefinitionError, match="create_branch"):
        step.branch(1, builder)
    with pytest.raises(DefinitionError, match="has no steps"):
        step.branch(1, builder.create_branch())


def test_negative_retry_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_retries must be >= 0"):
        ErrorBehavior.retry(timedelta(seconds=1), max_retries=-1)
    with pytest.raises(ValueError, match="must not be negative"):
        ErrorBehavior.retry(timedelta(seconds=-1))
