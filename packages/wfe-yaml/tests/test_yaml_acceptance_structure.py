"""Acceptance tests for DESIGN.md §7 (YAML workflows).

File structure (include, anchors) and typed inputs/outputs.

Black-box: only the public names written in DESIGN.md §7 (``load_workflow``,
``load_workflow_from_str``, ``validate``, ``CompiledWorkflow.definition``) plus the
host of §5 are used, and behaviour is observed through workflow status, data,
recorded errors and files on disk.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from wfe.core import WfeError, WorkflowStatus
from wfe.yaml import (
    load_workflow,
    load_workflow_from_str,
)

# The helpers live in a sibling module so that they are importable by name
# (pytest's importlib mode does not put tests/ on sys.path).
sys.path.insert(0, str(Path(__file__).parent))
from yaml_acceptance_support import Rejected, one, run, run_or_reject, write

# ------------------------------------------------------------- file structure


def write_include_pair(tmp_path: Path) -> Path:
    """main.yaml includes lib/child.yaml and calls the child workflow."""
    write(
        tmp_path / "lib" / "child.yaml",
        """
        workflow:
          id: child
          steps:
            - name: inner
              config: {run: 'echo "##wfe[output from_child=yes]"'}
        """,
    )
    return write(
        tmp_path / "main.yaml",
        """
        include: [lib/child.yaml]
        workflow:
          id: parent
          steps:
            - name: call
              type: workflow
              config: {workflow: child, version: 1}
        """,
    )


async def test_include_is_relative_to_the_including_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An included file is found relative to the includer, not the working directory."""
    main = write_include_pair(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    parent = load_workflow(str(main), {})
    assert parent.definition.id == "parent"
    child = load_workflow(tmp_path / "lib" / "child.yaml", {})
    out = await run([parent, child])
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["from_child"] == "yes"


def test_load_workflow_from_str_returns_included_workflows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main = write_include_pair(tmp_path)
    monkeypatch.chdir(tmp_path)
    ids = [c.definition.id for c in load_workflow_from_str(main.read_text(), {})]
    assert ids[0] == "parent"
    assert "child" in ids


async def test_registering_load_workflow_result_runs_an_included_child(tmp_path: Path) -> None:
    """DESIGN: load_workflow + host.register(compiled) is the whole recipe."""
    out = await run(load_workflow(write_include_pair(tmp_path), {}), timeout=10)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["from_child"] == "yes"


def test_include_cycle_is_detected(tmp_path: Path) -> None:
    write(
        tmp_path / "a.yaml",
        """
        include: [b.yaml]
        workflow:
          id: a
          steps: [{name: s, config: {run: "true"}}]
        """,
    )
    write(
        tmp_path / "b.yaml",
        """
        include: [a.yaml]
        workflow:
          id: b
          steps: [{name: s, config: {run: "true"}}]
        """,
    )
    with pytest.raises(WfeError, match=r"(?i)cycl|circular"):
        load_workflow(tmp_path / "a.yaml", {})


async def test_anchors_and_merge_keys(tmp_path: Path) -> None:
    compiled = one("""
        workflow:
          id: anchors
          steps:
            - name: first
              config: &base
                run: 'echo "##wfe[output first=$GREETING]"'
                env: {GREETING: hello}
                timeout: 10s
            - name: second
              config:
                <<: *base
                run: 'echo "##wfe[output second=$GREETING]"'
            - name: third
              config: *base
        """)
    # third re-uses first's config verbatim, so it sets `first` again.
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["first"] == "hello"
    assert out.data["second"] == "hello"


# --------------------------------------------------------------- typed inputs


TYPED = """
workflow:
  id: typed
  inputs:
    s: string
    n: number
    i: integer
    b: bool
    a: any
    maybe: string?
    xs: list<integer>
    m: map<string>
  steps:
    - name: echo
      config: {run: 'echo "##wfe[output seen=$S]"'}
"""


GOOD_INPUTS: dict[str, Any] = {
    "s": "hi",
    "n": 1.5,
    "i": 2,
    "b": True,
    "a": {"anything": [1, "x"]},
    "xs": [1, 2, 3],
    "m": {"k": "v"},
}


async def test_typed_inputs_accept_matching_data() -> None:
    out = await run(one(TYPED), GOOD_INPUTS)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["seen"] == "hi"


async def test_optional_input_accepts_null() -> None:
    out = await run(one(TYPED), {**GOOD_INPUTS, "maybe": None})
    assert out.status == WorkflowStatus.COMPLETE, out.errors


async def test_number_accepts_an_integer() -> None:
    out = await run(one(TYPED), {**GOOD_INPUTS, "n": 3})
    assert out.status == WorkflowStatus.COMPLETE, out.errors


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("s", 5),
        ("n", "five"),
        ("i", 1.5),
        ("b", "yes"),
        ("maybe", 3),
        ("xs", [1, "two"]),
        ("xs", "not a list"),
        ("m", {"k": 1}),
    ],
)
async def test_typed_inputs_reject_mismatching_data(key: str, value: Any) -> None:
    """Wrong-typed start data never completes the workflow (rejected at start or run)."""
    out = await run_or_reject(one(TYPED), {**GOOD_INPUTS, key: value})
    if isinstance(out, Rejected):
        assert key in str(out.error)
    else:
        assert out.status != WorkflowStatus.COMPLETE


async def test_missing_required_input_is_rejected() -> None:
    data = dict(GOOD_INPUTS)
    del data["i"]
    out = await run_or_reject(one(TYPED), data)
    if isinstance(out, Rejected):
        assert "'i'" in str(out.error) or "inputs.i" in str(out.error)
    else:
        assert out.status != WorkflowStatus.COMPLETE


def test_unknown_type_name_is_a_validation_error() -> None:
    with pytest.raises(WfeError, match="strng"):
        one("""
            workflow:
              id: badtype
              inputs: {x: strng}
              steps: [{name: a, config: {run: "true"}}]
            """)


async def test_typed_workflow_outputs_are_checked() -> None:
    good = one("""
        workflow:
          id: outs-good
          outputs: {count: integer}
          steps:
            - name: a
              config: {run: 'echo "##wfe[output count=4]"'}
        """)
    out = await run(good)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["count"] == 4
    bad = one("""
        workflow:
          id: outs-bad
          outputs: {count: integer}
          steps:
            - name: a
              config: {run: 'echo "##wfe[output count=many]"'}
        """)
    out = await run(bad)
    assert out.status != WorkflowStatus.COMPLETE
    assert "count" in out.error_text()
