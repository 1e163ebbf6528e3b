"""Random and mutated YAML never makes load or validate raise anything but YamlWorkflowError."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wfe.yaml import YamlWorkflowError, load_workflow_from_str, validate

SEED = (Path(__file__).parents[3] / "examples" / "ci-pipeline.yaml").read_text()
TOKENS = [
    "workflow:",
    "workflows:",
    "include:",
    "steps:",
    "- name: x",
    "config:",
    "run: echo",
    "parallel:",
    "when:",
    "{field: .outputs.x, gt: 1}",
    "type: deno",
    "type: workflow",
    "&a",
    "*a",
    "<<: *a",
    "!!binary",
    "!tag",
    "${{ var.x }}",
    "${{ data.x }}",
    "${{",
    "[",
    "]",
    "{",
    "}",
    ":",
    "-",
    "\n",
    "  ",
    "'",
    '"',
    "|",
    ">",
    "#",
    "?",
    "%YAML 1.2",
    "---",
    "...",
    "\t",
    "\0",
    "error_behavior: {type: retry, interval: x}",
    "timeout: 5s",
    "inputs: {a: list<map<string?>>}",
    "on_failure:",
    "ensure: []",
    "version: -1",
]


def check(text: str) -> None:
    raised = 1
    try:
        load_workflow_from_str(text, {"x": "1"})
    except YamlWorkflowError as exc:
        raised = len(exc.issues)
    assert raised > 0
    issues = validate(text)
    assert isinstance(issues, list)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    check(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join))
def test_random_token_soup(text: str) -> None:
    check(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(SEED)), st.integers(0, 12), st.sampled_from(["", *TOKENS])),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_example(edits: list[tuple[int, int, str]]) -> None:
    text = SEED
    for pos, cut, insert in edits:
        text = text[:pos] + insert + text[pos + cut :]
    check(text)


def test_deep_nesting() -> None:
    check("a: " + "[" * 5000)
    check("workflow: " + "{a: " * 3000)
