"""Acceptance tests for DESIGN.md §7 (YAML workflows, shell and Deno steps).

Black-box: only the public names written in DESIGN.md §7 (``load_workflow``,
``load_workflow_from_str``, ``validate``, ``CompiledWorkflow.definition``) plus the
host of §5 are used, and behaviour is observed through workflow status, data,
recorded errors and files on disk.
"""

from __future__ import annotations

import re
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

from wfe.core import WfeError, WorkflowDefinition, WorkflowInstance, WorkflowStatus
from wfe.host import WorkflowHostBuilder
from wfe.yaml import (
    CompiledWorkflow,
    YamlWorkflowError,
    load_workflow,
    load_workflow_from_str,
    validate,
)


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def listing(directory: Path) -> list[str]:
    """The sorted names in ``directory``."""
    return sorted(p.name for p in directory.iterdir())


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dedent(text))
    return path


class Outcome:
    """A finished (or no longer runnable) run: its instance and its errors."""

    def __init__(self, instance: WorkflowInstance, errors: list[str], elapsed: float) -> None:
        self.instance = instance
        self.errors = errors
        self.elapsed = elapsed

    @property
    def status(self) -> WorkflowStatus:
        return self.instance.status

    @property
    def data(self) -> dict[str, Any]:
        data = self.instance.data
        assert isinstance(data, dict)
        return data

    def error_text(self) -> str:
        return "\n".join(self.errors)


class Rejected:
    """``start_workflow`` refused the data."""

    def __init__(self, error: WfeError) -> None:
        self.error = error


async def run(
    workflows: CompiledWorkflow | Sequence[CompiledWorkflow],
    data: dict[str, Any] | None = None,
    *,
    timeout: float = 30,
) -> Outcome:
    """Register every compiled workflow, start the first, wait until it stops running."""
    result = await run_or_reject(workflows, data, timeout=timeout)
    assert isinstance(result, Outcome), result.error
    return result


async def run_or_reject(
    workflows: CompiledWorkflow | Sequence[CompiledWorkflow],
    data: dict[str, Any] | None = None,
    *,
    timeout: float = 30,
) -> Outcome | Rejected:
    """Like ``run``, but a start refused with a ``WfeError`` is returned, not raised."""
    compiled = [workflows] if isinstance(workflows, CompiledWorkflow) else list(workflows)
    builder = WorkflowHostBuilder()
    for c in compiled:
        builder = builder.register(c)
    first = compiled[0].definition
    async with builder.build() as host:
        started = time.monotonic()
        try:
            wid = await host.start_workflow(first.id, first.version, dict(data or {}))
        except WfeError as exc:
            return Rejected(exc)
        instance = await host.wait_for_workflow(wid, timeout=timeout)
        elapsed = time.monotonic() - started
        errors = [e.message for e in await host.get_errors(wid)]
    return Outcome(instance, errors, elapsed)


def one(text: str, config: dict[str, Any] | None = None) -> CompiledWorkflow:
    compiled = load_workflow_from_str(dedent(text), config or {})
    assert isinstance(compiled, list)
    return compiled[0]


def issues_text(result: Any) -> str:
    """The text of whatever ``validate`` returned (a list of issues, or similar)."""
    if isinstance(result, list | tuple):
        return "\n".join(str(i) for i in result)
    return str(result)


# --------------------------------------------------------------------------- API


DESIGN_EXAMPLE = """
workflow:
  id: deploy-pipeline
  version: 1
  error_behavior: {type: suspend}          # default for YAML workflows
  steps:
    - name: Test
      config:
        run: test 1 -eq 1
        timeout: "300s"
    - name: Count
      config:
        run: echo "##wfe[output files=$(ls | wc -l)]"
    - name: Notify
      type: deno
      when: {field: .outputs.files, gt: 0}
      config:
        script: |
          const data = Wfe.getData();
          Wfe.setOutput("status", `saw ${data.files} files`);
        permissions:
          net: ["hooks.example.com"]
        timeout: "10s"
"""


async def test_design_example_runs_to_completion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The §7 example (pytest replaced) completes; Count's output feeds Notify."""
    monkeypatch.chdir(tmp_path)
    for i in range(3):
        (tmp_path / f"f{i}.txt").write_text("x")
    path = write(tmp_path / "deploy.yaml", DESIGN_EXAMPLE)
    compiled = load_workflow(path, {})
    assert isinstance(compiled, CompiledWorkflow)
    assert isinstance(compiled.definition, WorkflowDefinition)
    assert compiled.definition.id == "deploy-pipeline"
    assert compiled.definition.version == 1
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    files = len(listing(tmp_path))
    assert out.data["files"] == files
    assert out.data["status"] == f"saw {files} files"


async def test_design_example_skips_notify_when_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`when: {field: .outputs.files, gt: 0}` is false with files=0: Notify is skipped."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    compiled = one(DESIGN_EXAMPLE)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["files"] == 0
    assert "status" not in out.data


def test_load_workflow_from_str_returns_a_list_of_compiled_workflows() -> None:
    compiled = load_workflow_from_str(
        dedent("""
        workflows:
          - id: first
            steps: [{name: a, config: {run: "true"}}]
          - id: second
            version: 3
            steps: [{name: b, config: {run: "true"}}]
        """),
        {},
    )
    assert isinstance(compiled, list)
    assert [(c.definition.id, c.definition.version) for c in compiled] == [
        ("first", 1),
        ("second", 3),
    ]
    assert all(isinstance(c, CompiledWorkflow) for c in compiled)


def test_load_workflow_from_str_single_workflow_is_a_one_element_list() -> None:
    compiled = load_workflow_from_str(
        "workflow:\n  id: solo\n  steps:\n    - name: a\n      config: {run: 'true'}\n", {}
    )
    assert isinstance(compiled, list)
    assert len(compiled) == 1
    assert compiled[0].definition.id == "solo"


def test_workflow_keys_id_version_name_description() -> None:
    compiled = one("""
        workflow:
          id: keyed
          version: 7
          name: Keyed workflow
          description: checks every workflow key
          steps:
            - name: a
              config: {run: "true"}
        """)
    assert compiled.definition.id == "keyed"
    assert compiled.definition.version == 7
    assert compiled.definition.description == "checks every workflow key"


async def test_compiled_workflow_registers_with_host_register() -> None:
    """`host.register(compiled)` works like registering a definition."""
    compiled = one("""
        workflow:
          id: reg-host
          steps:
            - name: a
              config: {run: 'echo "##wfe[output ok=true]"'}
        """)
    async with WorkflowHostBuilder().build() as host:
        host.register(compiled)
        wid = await host.start_workflow("reg-host", 1, {})
        instance = await host.wait_for_workflow(wid, timeout=30)
    assert instance.status == WorkflowStatus.COMPLETE
    assert instance.data["ok"] is True


async def test_compiled_workflow_registers_with_builder_register() -> None:
    compiled = one("""
        workflow:
          id: reg-builder
          steps:
            - name: a
              config: {run: 'echo "##wfe[output ok=true]"'}
        """)
    async with WorkflowHostBuilder().register(compiled).build() as host:
        wid = await host.start_workflow("reg-builder", None, {})
        instance = await host.wait_for_workflow(wid, timeout=30)
    assert instance.status == WorkflowStatus.COMPLETE
    assert instance.data["ok"] is True


def test_validate_accepts_a_good_file_and_reports_a_bad_one(tmp_path: Path) -> None:
    good = write(
        tmp_path / "good.yaml",
        """
        workflow:
          id: good
          steps: [{name: a, config: {run: "true"}}]
        """,
    )
    bad = write(
        tmp_path / "bad.yaml",
        """
        workflow:
          id: bad
          steps:
            - name: a
              config: {run: "true"}
              colour: blue
        """,
    )
    assert not validate(good)
    assert not validate(str(good))
    assert not validate(good.read_text())
    assert "colour" in issues_text(validate(str(bad)))
    found = issues_text(validate(bad))
    assert "colour" in found
    assert "bad.yaml:6:" in found


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


# ----------------------------------------------------------------- conditions


CONDITIONS: list[tuple[str, bool]] = [
    ("{field: .inputs.env, equals: prod}", True),
    ("{field: .inputs.env, equals: dev}", False),
    ("{field: .inputs.env, not_equals: dev}", True),
    ("{field: .inputs.env, not_equals: prod}", False),
    ("{field: .inputs.n, gt: 4}", True),
    ("{field: .inputs.n, gt: 5}", False),
    ("{field: .inputs.n, gte: 5}", True),
    ("{field: .inputs.n, gte: 6}", False),
    ("{field: .inputs.n, lt: 6}", True),
    ("{field: .inputs.n, lt: 5}", False),
    ("{field: .inputs.n, lte: 5}", True),
    ("{field: .inputs.n, lte: 4}", False),
    ("{field: .inputs.tag, contains: rc}", True),
    ("{field: .inputs.tag, contains: beta}", False),
    ("{field: .inputs.tags, contains: blue}", True),
    ("{field: .inputs.tags, contains: green}", False),
    ("{field: .inputs.nothing, is_null: true}", True),
    ("{field: .inputs.env, is_null: true}", False),
    ("{field: .inputs.env, is_not_null: true}", True),
    ("{field: .inputs.absent, is_not_null: true}", False),
    ("{field: .outputs.made, equals: 3}", True),
    ("{field: .outputs.made, gt: 3}", False),
    ("{all: [{field: .inputs.env, equals: prod}, {field: .inputs.n, equals: 5}]}", True),
    ("{all: [{field: .inputs.env, equals: prod}, {field: .inputs.n, equals: 6}]}", False),
    ("{any: [{field: .inputs.env, equals: dev}, {field: .inputs.n, equals: 5}]}", True),
    ("{any: [{field: .inputs.env, equals: dev}, {field: .inputs.n, equals: 6}]}", False),
    ("{none: [{field: .inputs.env, equals: dev}, {field: .inputs.n, equals: 6}]}", True),
    ("{none: [{field: .inputs.env, equals: prod}, {field: .inputs.n, equals: 6}]}", False),
    ("{one_of: [{field: .inputs.env, equals: prod}, {field: .inputs.n, equals: 6}]}", True),
    ("{one_of: [{field: .inputs.env, equals: prod}, {field: .inputs.n, equals: 5}]}", False),
    ("{not: {field: .inputs.env, equals: dev}}", True),
    ("{not: {field: .inputs.env, equals: prod}}", False),
]


async def test_when_comparisons_and_combinators() -> None:
    """Each `when` decides whether its step runs; a skipped step sets nothing."""
    steps = ["    - name: producer", "      config: {run: 'echo \"##wfe[output made=3]\"'}"]
    for index, (condition, _) in enumerate(CONDITIONS):
        steps += [
            f"    - name: c{index}",
            f"      when: {condition}",
            f"      config: {{run: 'echo \"##wfe[output ran{index}=true]\"'}}",
        ]
    text = "workflow:\n  id: conditions\n  steps:\n" + "\n".join(steps) + "\n"
    compiled = load_workflow_from_str(text, {})[0]
    data = {"env": "prod", "n": 5, "tag": "v1-rc2", "tags": ["red", "blue"], "nothing": None}
    out = await run(compiled, data)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    wrong = [
        (condition, expected)
        for index, (condition, expected) in enumerate(CONDITIONS)
        if (out.data.get(f"ran{index}") is True) != expected
    ]
    assert wrong == []


def test_when_with_unknown_operator_is_a_validation_error() -> None:
    with pytest.raises(WfeError, match="bigger"):
        one("""
            workflow:
              id: badwhen
              steps:
                - name: a
                  when: {field: .inputs.x, bigger: 3}
                  config: {run: "true"}
            """)


# -------------------------------------------------------------- error handling


async def test_default_error_behavior_suspends(tmp_path: Path) -> None:
    compiled = one(f"""
        workflow:
          id: suspends
          steps:
            - name: boom
              config: {{run: "exit 1"}}
            - name: after
              config: {{run: "touch {tmp_path}/after"}}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.SUSPENDED
    assert not (tmp_path / "after").exists()


async def test_error_behavior_terminate() -> None:
    compiled = one("""
        workflow:
          id: terminates
          error_behavior: {type: terminate}
          steps:
            - name: boom
              config: {run: "exit 1"}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.TERMINATED


async def test_step_error_behavior_overrides_workflow() -> None:
    compiled = one("""
        workflow:
          id: step-override
          error_behavior: {type: suspend}
          steps:
            - name: boom
              error_behavior: {type: terminate}
              config: {run: "exit 1"}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.TERMINATED


async def test_error_behavior_retry_with_interval_and_max_retries(tmp_path: Path) -> None:
    """retry: the step is re-run after `interval`; it succeeds on the third attempt."""
    counter = tmp_path / "count"
    compiled = one(f"""
        workflow:
          id: retries
          steps:
            - name: flaky
              error_behavior: {{type: retry, interval: 200ms, max_retries: 3}}
              config:
                run: |
                  echo x >> {counter}
                  test "$(wc -l < {counter})" -ge 3
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert counter.read_text().count("x") == 3


async def test_retry_exhaustion_suspends_after_n_plus_one_attempts(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    compiled = one(f"""
        workflow:
          id: exhausted
          error_behavior: {{type: retry, interval: 100ms, max_retries: 2}}
          steps:
            - name: always
              config: {{run: "echo x >> {counter}; exit 1"}}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.SUSPENDED
    assert counter.read_text().count("x") == 3


async def test_error_behavior_compensate_stops_the_workflow(tmp_path: Path) -> None:
    compiled = one(f"""
        workflow:
          id: compensates
          error_behavior: {{type: compensate}}
          steps:
            - name: boom
              config: {{run: "exit 1"}}
            - name: after
              config: {{run: "touch {tmp_path}/after"}}
        """)
    out = await run(compiled)
    assert out.status != WorkflowStatus.RUNNABLE
    assert not (tmp_path / "after").exists()


def test_error_behavior_unknown_type_is_a_validation_error() -> None:
    with pytest.raises(WfeError, match="explode"):
        one("""
            workflow:
              id: badeb
              error_behavior: {type: explode}
              steps: [{name: a, config: {run: "true"}}]
            """)


async def test_hooks_after_success(tmp_path: Path) -> None:
    compiled = one(f"""
        workflow:
          id: hooks-ok
          steps:
            - name: main
              config: {{run: "touch {tmp_path}/main"}}
              on_success:
                - name: ok
                  config: {{run: "touch {tmp_path}/ok"}}
              on_failure:
                - name: failed
                  config: {{run: "touch {tmp_path}/failed"}}
              ensure:
                - name: always
                  config: {{run: "touch {tmp_path}/always"}}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert listing(tmp_path) == ["always", "main", "ok"]


async def test_hooks_after_failure(tmp_path: Path) -> None:
    compiled = one(f"""
        workflow:
          id: hooks-fail
          steps:
            - name: main
              config: {{run: "exit 4"}}
              on_success:
                - name: ok
                  config: {{run: "touch {tmp_path}/ok"}}
              on_failure:
                - name: failed
                  config: {{run: "touch {tmp_path}/failed"}}
              ensure:
                - name: always
                  config: {{run: "touch {tmp_path}/always"}}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.SUSPENDED
    assert listing(tmp_path) == ["always", "failed"]


def test_step_names_must_be_unique() -> None:
    with pytest.raises(WfeError, match="twice"):
        one("""
            workflow:
              id: dupe
              steps:
                - name: twice
                  config: {run: "true"}
                - name: twice
                  config: {run: "true"}
            """)


# ---------------------------------------------------------- parallel, durations


async def test_parallel_steps_run_concurrently() -> None:
    compiled = one("""
        workflow:
          id: par
          steps:
            - name: group
              parallel:
                - name: one
                  config: {run: 'sleep 1; echo "##wfe[output one=1]"'}
                - name: two
                  config: {run: 'sleep 1; echo "##wfe[output two=2]"'}
                - name: three
                  config: {run: 'sleep 1; echo "##wfe[output three=3]"'}
            - name: after
              config: {run: 'echo "##wfe[output total=$((ONE + TWO + THREE))]"'}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.elapsed < 2.0
    assert (out.data["one"], out.data["two"], out.data["three"]) == (1, 2, 3)
    assert out.data["total"] == 6


@pytest.mark.parametrize("duration", ["500ms", "30s", "5m", "1h30m"])
def test_durations_are_accepted(duration: str) -> None:
    compiled = one(f"""
        workflow:
          id: dur
          error_behavior: {{type: retry, interval: {duration}, max_retries: 1}}
          steps:
            - name: a
              config: {{run: "true", timeout: "{duration}"}}
        """)
    assert compiled.definition.id == "dur"


@pytest.mark.parametrize("duration", ["5 minutes", "abc", "-1s"])
def test_bad_durations_are_validation_errors(duration: str) -> None:
    with pytest.raises(WfeError, match="timeout"):
        one(f"""
            workflow:
              id: dur
              steps:
                - name: a
                  config: {{run: "true", timeout: "{duration}"}}
            """)


# --------------------------------------------------------------- interpolation


async def test_var_interpolation_at_load_time() -> None:
    compiled = one(
        """
        workflow:
          id: vars-${{ var.suffix }}
          steps:
            - name: a
              config: {run: 'echo "##wfe[output greeting=hello ${{ var.name }}]"'}
        """,
        {"name": "world", "suffix": "x"},
    )
    assert compiled.definition.id == "vars-x"
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["greeting"] == "hello world"


def test_unresolved_var_is_an_error_naming_it() -> None:
    with pytest.raises(WfeError, match="nosuchvar"):
        one("""
            workflow:
              id: novar
              steps:
                - name: a
                  config: {run: 'echo ${{ var.nosuchvar }}'}
            """)


async def test_data_interpolation_at_run_time_reads_inputs_and_earlier_outputs() -> None:
    compiled = one("""
        workflow:
          id: data-interp
          steps:
            - name: first
              config: {run: 'echo "##wfe[output made=${{ data.who }}-1]"'}
            - name: second
              config: {run: 'echo "##wfe[output seen=${{ data.made }}]"'}
        """)
    out = await run(compiled, {"who": "alice"})
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["made"] == "alice-1"
    assert out.data["seen"] == "alice-1"


async def test_unresolved_data_name_is_a_step_error_naming_it(tmp_path: Path) -> None:
    compiled = one(f"""
        workflow:
          id: nodata
          steps:
            - name: a
              config: {{run: 'echo ${{{{ data.missing_thing }}}}; touch {tmp_path}/ran'}}
        """)
    out = await run(compiled)
    assert out.status != WorkflowStatus.COMPLETE
    assert "missing_thing" in out.error_text()
    assert not (tmp_path / "ran").exists()


INJECTIONS = [
    "$(touch {p}/pwned1)",
    "`touch {p}/pwned2`",
    '"; touch {p}/pwned3; echo "',
    "'; touch {p}/pwned4; echo '",
    "x\ntouch {p}/pwned5",
    "a; touch {p}/pwned6",
    "$HOME ${{IFS}} && touch {p}/pwned7 | cat",
]


@pytest.mark.parametrize("payload", INJECTIONS)
async def test_data_cannot_inject_shell_syntax(tmp_path: Path, payload: str) -> None:
    """A data value stays data, whether the expression is bare or in double quotes."""
    value = payload.format(p=tmp_path)
    bare = tmp_path / "bare.txt"
    quoted = tmp_path / "quoted.txt"
    compiled = one(f"""
        workflow:
          id: inject
          steps:
            - name: bare
              config:
                run: printf '%s' ${{{{ data.v }}}} > {bare}
            - name: quoted
              config:
                run: printf '%s' "${{{{ data.v }}}}" > {quoted}
        """)
    out = await run(compiled, {"v": value})
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert not [n for n in listing(tmp_path) if n.startswith("pwned")]
    assert quoted.read_text() == value
    assert bare.read_text() == value


async def test_data_values_from_outputs_cannot_inject(tmp_path: Path) -> None:
    compiled = one(f"""
        workflow:
          id: inject-outputs
          steps:
            - name: producer
              config:
                run: echo '##wfe[output evil=$(touch {tmp_path}/pwned)]'
            - name: consumer
              config:
                run: echo "${{{{ data.evil }}}}" ${{{{ data.evil }}}}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert not (tmp_path / "pwned").exists()


# ----------------------------------------------------------------- shell steps


async def test_top_level_data_keys_are_exported_upper_cased() -> None:
    compiled = one("""
        workflow:
          id: envs
          steps:
            - name: a
              config:
                run: |
                  echo "##wfe[output b=$BRANCH]"
                  echo "##wfe[output c=$COUNT]"
        """)
    out = await run(compiled, {"branch": "main", "count": 3})
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["b"] == "main"
    assert out.data["c"] == 3


async def test_outputs_are_typed() -> None:
    compiled = one("""
        workflow:
          id: typed-out
          steps:
            - name: a
              config:
                run: |
                  echo "##wfe[output t=true]"
                  echo "##wfe[output f=false]"
                  echo "##wfe[output z=null]"
                  echo "##wfe[output i=42]"
                  echo "##wfe[output neg=-7]"
                  echo "##wfe[output x=3.5]"
                  echo "##wfe[output s=hello world]"
                  echo "##wfe[output v=1.2.3]"
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    d = out.data
    assert d["t"] is True
    assert d["f"] is False
    assert "z" in d
    assert d["z"] is None
    assert d["i"] == 42
    assert type(d["i"]) is int
    assert d["neg"] == -7
    assert d["x"] == 3.5
    assert type(d["x"]) is float
    assert d["s"] == "hello world"
    assert d["v"] == "1.2.3"


def _kept(data: dict[str, Any], step: str, stream: str) -> str:
    """A step's kept stdout/stderr: ``data["<step>.<stream>"]`` or ``data["steps"][step]``."""
    if f"{step}.{stream}" in data:
        return str(data[f"{step}.{stream}"])
    return str(data["steps"][step][stream])


async def test_stdout_and_stderr_are_kept() -> None:
    compiled = one("""
        workflow:
          id: kept
          steps:
            - name: talk
              config: {run: "echo to-out; echo to-err >&2"}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert "to-out" in _kept(out.data, "talk", "stdout")
    assert "to-err" in _kept(out.data, "talk", "stderr")


async def test_stdout_and_stderr_are_kept_as_step_dot_stream_keys() -> None:
    compiled = one("""
        workflow:
          id: kept-literal
          steps:
            - name: talk
              config: {run: "echo to-out; echo to-err >&2"}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert "to-out" in out.data["talk.stdout"]
    assert "to-err" in out.data["talk.stderr"]


async def test_kept_stdout_is_bounded() -> None:
    compiled = one("""
        workflow:
          id: bounded
          steps:
            - name: loud
              config: {run: "head -c 3000000 /dev/zero | tr '\\\\0' 'a'; echo; echo END"}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    kept = _kept(out.data, "loud", "stdout")
    assert len(kept) < 1_000_000
    assert "END" in kept


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "survivor"
    compiled = one(f"""
        workflow:
          id: timeout
          steps:
            - name: slow
              config:
                run: (sleep 2; touch {marker}) & sleep 30
                timeout: 500ms
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.SUSPENDED
    assert out.elapsed < 2.0
    assert re.search(r"(?i)time", out.error_text())
    await trio.sleep(2.5)
    assert not marker.exists()


async def test_nonzero_exit_is_an_error_with_exit_code_and_stderr_tail() -> None:
    compiled = one("""
        workflow:
          id: exitcode
          steps:
            - name: fails
              config: {run: "for i in 1 2 3; do echo line$i >&2; done; echo last-words >&2; exit 7"}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.SUSPENDED
    text = out.error_text()
    assert re.search(r"\b7\b", text)
    assert "last-words" in text


async def test_shell_key_env_and_working_dir(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    path = write(
        tmp_path / "wf.yaml",
        """
        workflow:
          id: shellkeys
          steps:
            - name: a
              config:
                shell: bash
                env: {EXTRA: from-env, FROM_DATA: "${{ data.x }}"}
                working_dir: work
                run: |
                  [[ -n "$BASH_VERSION" ]] && echo "##wfe[output bash=true]"
                  echo "##wfe[output extra=$EXTRA]"
                  echo "##wfe[output fromdata=$FROM_DATA]"
                  echo "##wfe[output dir=$(basename "$PWD")]"
        """,
    )
    out = await run(load_workflow(path, {}), {"x": "xval"})
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["bash"] is True
    assert out.data["extra"] == "from-env"
    assert out.data["fromdata"] == "xval"
    assert out.data["dir"] == "work"


async def test_shell_file_runs_a_script(tmp_path: Path) -> None:
    (tmp_path / "script.sh").write_text('echo "##wfe[output fromfile=yes]"\n')
    path = write(
        tmp_path / "wf.yaml",
        """
        workflow:
          id: shellfile
          steps:
            - name: a
              type: shell
              config: {file: script.sh}
        """,
    )
    out = await run(load_workflow(path, {}))
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["fromfile"] == "yes"


async def test_step_outputs_key_requires_the_named_output() -> None:
    compiled = one("""
        workflow:
          id: step-outputs
          steps:
            - name: a
              outputs: [needed]
              config: {run: 'echo "##wfe[output other=1]"'}
        """)
    out = await run(compiled)
    assert out.status != WorkflowStatus.COMPLETE
    assert "needed" in out.error_text()


async def test_workflow_step_type_runs_a_child() -> None:
    compiled = load_workflow_from_str(
        dedent("""
        workflows:
          - id: outer
            steps:
              - name: call
                type: workflow
                config: {workflow: inner, version: 2}
              - name: after
                config: {run: 'echo "##wfe[output got=$CHILD]"'}
          - id: inner
            version: 2
            steps:
              - name: work
                config: {run: 'echo "##wfe[output child=done]"'}
        """),
        {},
    )
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["got"] == "done"


# ------------------------------------------------------------------ validation


def test_validation_error_names_file_line_column_key_and_expectation(tmp_path: Path) -> None:
    path = write(
        tmp_path / "broken.yaml",
        """
        workflow:
          id: broken
          version: one
          steps:
            - name: a
              config: {run: "true"}
        """,
    )
    with pytest.raises(WfeError) as info:
        load_workflow(path, {})
    text = str(info.value)
    assert re.search(r"broken\.yaml:3:\d+", text), text
    assert "version" in text
    assert re.search(r"(?i)integer|number", text), text


def test_every_validation_error_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path / "many.yaml",
        """
        workflow:
          id: many
          steps:
            - name: a
              config: {run: "true"}
              frobnicate: 1
            - name: b
              type: shell
              config: {run: "true", timeout: soon}
            - name: c
              error_behavior: {type: explode}
              config: {run: "true"}
        """,
    )
    with pytest.raises(WfeError) as info:
        load_workflow(path, {})
    text = str(info.value)
    assert re.search(r"many\.yaml:6:\d+", text), text
    assert re.search(r"many\.yaml:9:\d+", text), text
    assert re.search(r"many\.yaml:11:\d+", text), text
    assert "frobnicate" in text
    assert "timeout" in text
    assert "explode" in text
    found = issues_text(validate(path))
    for line in (6, 9, 11):
        assert f"many.yaml:{line}:" in found


def test_yaml_syntax_error_names_position(tmp_path: Path) -> None:
    path = write(tmp_path / "syntax.yaml", "workflow:\n  id: x\n  steps: [\n")
    with pytest.raises(WfeError, match=r"syntax\.yaml:\d+:\d+"):
        load_workflow(path, {})


def test_nothing_runs_until_the_file_validates(tmp_path: Path) -> None:
    """A valid first step never runs when a later part of the file is invalid."""
    path = write(
        tmp_path / "partly.yaml",
        f"""
        workflow:
          id: partly
          steps:
            - name: good
              config: {{run: "touch {tmp_path}/ran"}}
            - name: bad
              type: no-such-type
              config: {{}}
        """,
    )
    with pytest.raises(WfeError, match="no-such-type"):
        load_workflow(path, {})
    assert not (tmp_path / "ran").exists()


def test_missing_required_keys_are_reported() -> None:
    with pytest.raises(WfeError) as info:
        one("""
            workflow:
              steps:
                - config: {run: "true"}
            """)
    text = str(info.value)
    assert "id" in text
    assert "name" in text


# ------------------------------------------------------------------ deno steps


async def test_deno_reads_data_and_sets_outputs_of_every_json_type() -> None:
    compiled = one("""
        workflow:
          id: deno-types
          steps:
            - name: js
              type: deno
              config:
                script: |
                  const d = Wfe.getData();
                  Wfe.log("got", d.name);
                  Wfe.setOutput("s", `hi ${d.name}`);
                  Wfe.setOutput("i", d.n + 1);
                  Wfe.setOutput("f", 2.5);
                  Wfe.setOutput("t", true);
                  Wfe.setOutput("no", false);
                  Wfe.setOutput("z", null);
                  Wfe.setOutput("l", [1, "two", [3], {"four": 4}]);
                  Wfe.setOutput("o", {"a": {"b": [true, null]}});
                  Wfe.setOutput("e", "");
        """)
    out = await run(compiled, {"name": "deno", "n": 41})
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    d = out.data
    assert d["s"] == "hi deno"
    assert d["i"] == 42
    assert d["f"] == 2.5
    assert d["t"] is True
    assert d["no"] is False
    assert "z" in d
    assert d["z"] is None
    assert d["l"] == [1, "two", [3], {"four": 4}]
    assert d["o"] == {"a": {"b": [True, None]}}
    assert d["e"] == ""


async def test_deno_typescript_file(tmp_path: Path) -> None:
    (tmp_path / "step.ts").write_text(
        'const x: number = 6;\nWfe.setOutput("ts", x * 7);\n',
    )
    path = write(
        tmp_path / "wf.yaml",
        """
        workflow:
          id: deno-file
          steps:
            - name: ts
              type: deno
              config: {file: step.ts}
        """,
    )
    out = await run(load_workflow(path, {}))
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["ts"] == 42


async def test_deno_file_read_is_denied_without_permission(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    compiled = one(f"""
        workflow:
          id: deno-denied
          steps:
            - name: js
              type: deno
              config:
                script: |
                  Wfe.setOutput("c", Deno.readTextFileSync("{secret}"));
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.SUSPENDED
    assert "c" not in out.data
    assert re.search(r"(?i)read|permission|denied", out.error_text())


async def test_deno_file_read_is_allowed_with_read_permission(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    compiled = one(f"""
        workflow:
          id: deno-allowed
          steps:
            - name: js
              type: deno
              config:
                permissions:
                  read: ["{secret}"]
                script: |
                  Wfe.setOutput("c", Deno.readTextFileSync("{secret}"));
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["c"] == "top secret"


async def test_deno_env_is_denied_without_permission() -> None:
    compiled = one("""
        workflow:
          id: deno-env
          steps:
            - name: js
              type: deno
              config:
                script: |
                  Wfe.setOutput("home", Deno.env.get("HOME") ?? "none");
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.SUSPENDED


async def test_deno_infinite_loop_is_killed_at_its_timeout() -> None:
    compiled = one("""
        workflow:
          id: deno-loop
          steps:
            - name: spin
              type: deno
              config:
                timeout: 1s
                script: |
                  while (true) {}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.SUSPENDED
    assert out.elapsed < 1.0 + 2.0
    assert re.search(r"(?i)time", out.error_text())


async def test_deno_thrown_error_reports_its_line() -> None:
    compiled = one("""
        workflow:
          id: deno-throw
          steps:
            - name: thrower
              type: deno
              config:
                script: |
                  const a = 1;
                  const b = a + 1;
                  throw new Error("boom " + b);
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.SUSPENDED
    text = out.error_text()
    assert "boom 2" in text
    assert re.search(r"(?i)line\D{0,3}3\b|:3:\d+", text), text


async def test_deno_modules_are_imported_first(tmp_path: Path) -> None:
    (tmp_path / "helper.js").write_text("globalThis.HELPER_VALUE = 41;\n")
    path = write(
        tmp_path / "wf.yaml",
        """
        workflow:
          id: deno-modules
          steps:
            - name: js
              type: deno
              config:
                modules: [./helper.js]
                script: |
                  Wfe.setOutput("v", globalThis.HELPER_VALUE + 1);
        """,
    )
    out = await run(load_workflow(path, {}))
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["v"] == 42


def test_deno_unknown_permission_is_a_validation_error() -> None:
    with pytest.raises(WfeError, match="everything"):
        one("""
            workflow:
              id: deno-badperm
              steps:
                - name: js
                  type: deno
                  config:
                    permissions: {everything: true}
                    script: Wfe.setOutput("x", 1);
            """)


async def test_deno_env_is_allowed_with_env_permission() -> None:
    compiled = one("""
        workflow:
          id: deno-env-ok
          steps:
            - name: js
              type: deno
              config:
                permissions: {env: [WFE_ACCEPTANCE_VAR]}
                env: {WFE_ACCEPTANCE_VAR: visible}
                script: |
                  Wfe.setOutput("v", Deno.env.get("WFE_ACCEPTANCE_VAR") ?? "none");
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["v"] == "visible"


async def test_deno_var_interpolation_at_load_time() -> None:
    compiled = one(
        """
        workflow:
          id: deno-var
          steps:
            - name: js
              type: deno
              config:
                script: Wfe.setOutput("who", "${{ var.who }}");
        """,
        {"who": "carol"},
    )
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["who"] == "carol"


async def test_deno_script_reads_data_through_the_private_channel() -> None:
    """Deno scripts read workflow data with Wfe.getData(); pasting `${{ data.x }}` into
    the source is refused at load time with a message saying so (issue 7: data travels
    over a private channel, never into the script's source)."""
    with pytest.raises(YamlWorkflowError, match=r"Wfe\.getData\(\)"):
        one("""
            workflow:
              id: deno-data
              steps:
                - name: js
                  type: deno
                  config:
                    script: Wfe.setOutput("who", "${{ data.who }}");
            """)
    compiled = one("""
        workflow:
          id: deno-data
          steps:
            - name: js
              type: deno
              config:
                script: Wfe.setOutput("who", Wfe.getData().who);
        """)
    out = await run(compiled, {"who": "dave"})
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["who"] == "dave"
