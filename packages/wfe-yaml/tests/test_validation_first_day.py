"""Validation that catches what would fail later (unknown step references, Deno syntax),
hooks written for WFE, and command-line input text typed by its declaration."""

from __future__ import annotations

import sys
import textwrap
from datetime import timedelta

import pytest

from wfe.yaml import Issue, load_workflow_from_str, validate
from wfe.yaml._durations import format_duration
from wfe.yaml._types import parse_type


def _steps(body: str) -> str:
    return "workflow:\n  id: w\n  version: 1\n  steps:\n" + textwrap.indent(
        textwrap.dedent(body), "    "
    )


def test_data_steps_reference_to_an_unknown_step_is_an_issue() -> None:
    text = _steps(
        """\
        - name: build
          config: {run: echo ok}
        - name: show
          config: {run: 'echo "${{ data.steps.biuld.stdout }}"'}
        """
    )
    issues = validate(text)
    assert len(issues) == 1
    issue = issues[0]
    assert (issue.line, issue.key) == (8, "workflow.steps[1].config.run")
    assert "step 'biuld'" in issue.message
    assert "did you mean 'build'" in issue.message


def test_when_field_on_an_unknown_step_is_an_issue() -> None:
    text = _steps(
        """\
        - name: build
          config: {run: echo ok}
        - name: ship
          when: {any: [{field: .steps.tests.exit_code, equals: 0}, {field: .outputs.x, equals: 1}]}
          config: {run: echo ok}
        """
    )
    issues = validate(text)
    assert [i.key for i in issues] == ["workflow.steps[1].when.any[0].field"]
    assert "step 'tests'" in issues[0].message


def test_references_to_hooks_and_parallel_branches_are_known() -> None:
    text = _steps(
        """\
        - name: group
          parallel:
            - name: left
              config: {run: echo l}
        - name: main
          config: {run: 'echo "${{ data.steps.left.stdout }}"'}
          ensure:
            name: after
            config: {run: 'echo "${{ data.steps["main"].exit_code }} ${{ data.steps.after }}"'}
          when: {field: .steps.left.exit_code, equals: 0}
        """
    )
    assert validate(text) == []


@pytest.mark.parametrize("hook", ["on_success", "on_failure", "ensure"])
def test_a_hook_may_be_one_step(hook: str) -> None:
    text = _steps(
        f"""\
        - name: main
          config: {{run: echo main}}
          {hook}:
            name: extra
            config: {{run: echo extra}}
        """
    )
    (compiled,) = load_workflow_from_str(text)
    assert compiled.definition.steps[0].name == "main"
    as_list = _steps(
        f"""\
        - name: main
          config: {{run: echo main}}
          {hook}:
            - name: extra
              config: {{run: echo extra}}
        """
    )
    assert validate(as_list) == []


def test_a_hook_of_another_shape_says_what_is_expected() -> None:
    issues = validate(_steps("- name: main\n  config: {run: echo}\n  ensure: oops\n"))
    assert len(issues) == 1
    assert (
        "expected a step (a mapping) or a list of steps for ensure of 'main'" in issues[0].message
    )


DENO = _steps(
    """\
    - name: js
      type: deno
      config:
        script: |
          const ok = 1;
          const broken = (;
    """
)


def test_a_deno_syntax_error_is_reported_at_its_line() -> None:
    pytest.importorskip("deno")
    issues = validate(DENO)
    assert len(issues) == 1
    assert issues[0].key == "workflow.steps[0].config.script"
    assert "Deno syntax error at script line 2, column 17" in issues[0].message
    assert validate(DENO.replace("(;", "(1);")) == []


def test_without_deno_a_deno_step_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """An installation without the ``deno`` distribution: valid, with a warning."""
    from wfe.yaml import _deno

    monkeypatch.setitem(sys.modules, "deno", None)  # what `import deno` meets then
    _deno._deno_binary.cache_clear()
    try:
        warnings: list[Issue] = []
        assert validate(DENO, warnings=warnings) == []
    finally:
        _deno._deno_binary.cache_clear()
    assert len(warnings) == 1
    assert "Deno runtime is not installed" in warnings[0].message
    assert "pip install" in warnings[0].message


@pytest.mark.parametrize(
    ("declared", "text", "value"),
    [
        ("string", "1.10", "1.10"),
        ("string", "true", "true"),
        ("number", "1.10", 1.1),
        ("integer", "3", 3),
        ("integer", "3.0", "3.0"),
        ("integer", "abc", "abc"),
        ("bool", "yes", True),
        ("bool", "off", False),
        ("bool?", "null", None),
        ("list<integer>", "[1, 2]", [1, 2]),
        ("map<string>", '{"a": "b"}', {"a": "b"}),
        ("any", "x", "x"),
    ],
)
def test_input_text_is_typed_by_its_declaration(declared: str, text: str, value: object) -> None:
    t = parse_type(declared)
    assert t is not None
    got = t.from_text(text)
    assert got == value
    assert type(got) is type(value)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(milliseconds=300), "300ms"),
        (timedelta(seconds=1), "1s"),
        (timedelta(minutes=5), "5m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(seconds=2, milliseconds=500), "2s500ms"),
    ],
)
def test_durations_are_written_as_yaml_takes_them(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text
