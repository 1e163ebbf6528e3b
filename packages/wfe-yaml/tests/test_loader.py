# ruff: noqa: E501  (one-line YAML documents read better unwrapped)
"""Loading and validating workflow files: every key, every error with its position."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from wfe.core import ErrorBehavior, StepBody, WfeError
from wfe.yaml import (
    CompiledWorkflow,
    Issue,
    StepInfo,
    YamlNode,
    YamlWorkflowError,
    check_inputs,
    load_workflow,
    load_workflow_from_str,
    load_workflows,
    validate,
)
from wfe.yaml._compile import YamlStep

FULL = """
workflow:
  id: full
  version: 2
  name: Full
  description: every key
  error_behavior: {type: retry, interval: 5s, max_retries: 2}
  inputs:
    branch: string
    count: {type: integer, default: 1, description: how many}
    tags: list<string>?
  outputs:
    files: integer
  steps:
    - name: first
      type: shell
      config:
        run: echo hi
        shell: bash
        env: {A: "1", B: 2}
        working_dir: .
        timeout: 1h30m
      error_behavior: terminate
      outputs: {files: integer}
      on_success: [{name: ok, config: {run: "true"}}]
      on_failure: [{name: bad, config: {run: "true"}}]
      ensure: [{name: always, config: {run: "true"}}]
    - name: group
      when: {field: .outputs.files, gt: 0}
      error_behavior: {type: suspend}
      parallel:
        - {name: a, config: {file: a.sh}}
        - {name: b, type: workflow, config: {workflow: child, version: 1, inputs: {x: "${{ data.files }}"}}}
        - name: c
          type: deno
          config:
            script: Wfe.setOutput("x", 1)
            permissions: {net: [example.com], read: [.], write: [/tmp], env: [HOME], run: false, dynamic_import: false}
            modules: [./m.js]
            timeout: 10s
            env: {K: v}
            working_dir: .
"""


def load(text: str, config: Mapping[str, Any] | None = None, **kw: Any) -> list[CompiledWorkflow]:
    return load_workflow_from_str(textwrap.dedent(text), config, file="w.yaml", **kw)


def issues_of(text: str, config: Mapping[str, Any] | None = None) -> list[Issue]:
    with pytest.raises(YamlWorkflowError) as exc:
        load(text, config)
    return exc.value.issues


def test_every_key_compiles() -> None:
    (wf,) = load(FULL)
    d = wf.definition
    assert (wf.id, wf.version, d.description) == ("full", 2, "every key")
    assert d.default_error_behavior == ErrorBehavior.retry(timedelta(seconds=5), 2)
    names = [s.name for s in d.steps]
    assert names[0] == "first"
    assert "group (when)" in names
    assert "(outputs)" in names
    assert {"a", "b", "c"} <= set(names)
    first = d.steps[0]
    assert first.error_behavior == ErrorBehavior.terminate()
    assert issubclass(first.body, YamlStep)
    plan = first.body.plan
    assert [h.__name__ for h in plan.on_success + plan.on_failure + plan.ensure] == [
        "ok",
        "bad",
        "always",
    ]
    assert set(wf.inputs) == {"branch", "count", "tags"}


def test_yaml_default_error_behavior_is_suspend() -> None:
    (wf,) = load("workflow: {id: x, steps: [{name: a, config: {run: 'true'}}]}")
    assert wf.definition.default_error_behavior == ErrorBehavior.suspend()
    assert wf.version == 1


def test_every_error_is_reported_with_position_key_and_expectation() -> None:
    issues = issues_of(
        """
        workflow:
          id: x
          verison: 2
          steps:
            - name: a
              config: {run: echo, timeout: 5 minutes}
            - name: a
              typ: shell
              config: {run: echo}
            - name: c
              config: {rn: echo}
        """
    )
    text = [str(i) for i in issues]
    assert any(
        t.startswith("w.yaml:4:3: workflow.verison: unknown key 'verison'; did you mean 'version'?")
        for t in text
    ), text
    assert any(
        "w.yaml:7:36: workflow.steps[0].config.timeout: expected a duration like 500ms" in t
        for t in text
    ), text
    assert any(
        t.startswith("w.yaml:8:13: workflow.steps[1].name: step name 'a' is already used at line 6")
        for t in text
    ), text
    assert any(
        "workflow.steps[1].typ: unknown key 'typ'; did you mean 'type'?" in t for t in text
    ), text
    assert any(
        "workflow.steps[2].config.rn: unknown key 'rn'; did you mean 'run'?" in t for t in text
    ), text
    assert any("needs exactly one of `run` or `file`" in t for t in text), text
    assert len(issues) == 6


def test_error_str_lists_issues_one_per_line() -> None:
    with pytest.raises(YamlWorkflowError) as exc:
        load("workflow: {id: 1, steps: []}")
    assert isinstance(exc.value, WfeError)
    lines = str(exc.value).splitlines()
    assert len(lines) == 2
    assert all(line.startswith("w.yaml:1:") for line in lines)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("workflow: {id: x}", "needs `steps`"),
        ("workflow: {steps: [{name: a, config: {run: x}}]}", "needs `id`"),
        ("workflow: {id: x, version: 0, steps: [{name: a, config: {run: x}}]}", "positive integer"),
        ("workflow: {id: x, steps: [{config: {run: x}}]}", "needs `name`"),
        (
            "workflow: {id: x, steps: [{name: a, type: nope, config: {run: x}}]}",
            "unknown step type 'nope'",
        ),
        (
            "workflow: {id: x, steps: [{name: a, type: shel, config: {run: x}}]}",
            "did you mean 'shell'",
        ),
        (
            "workflow: {id: x, error_behavior: {type: explode}, steps: [{name: a, config: {run: x}}]}",
            "expected one of retry",
        ),
        (
            "workflow: {id: x, error_behavior: {type: suspend, interval: 5s}, steps: [{name: a, config: {run: x}}]}",
            "only a retry",
        ),
        (
            "workflow: {id: x, error_behavior: {type: retry, max_retries: -1}, steps: [{name: a, config: {run: x}}]}",
            "integer >= 0",
        ),
        (
            "workflow: {id: x, inputs: {a: strng}, steps: [{name: a, config: {run: x}}]}",
            "expected a type",
        ),
        (
            "workflow: {id: x, inputs: {a: {type: integer, default: x}}, steps: [{name: a, config: {run: x}}]}",
            "expected integer",
        ),
        (
            "workflow: {id: x, inputs: {steps: string}, steps: [{name: a, config: {run: x}}]}",
            "reserved",
        ),
        (
            "workflow: {id: x, steps: [{name: a, parallel: [{name: b, config: {run: x}}], config: {run: x}}]}",
            "parallel step takes no 'config'",
        ),
        (
            "workflow: {id: x, steps: [{name: a, config: {run: x}, ensure: [{name: b, type: workflow, config: {workflow: y}}]}]}",
            "hook cannot be a sub-workflow",
        ),
        (
            "workflow: {id: x, steps: [{name: a, config: {run: x}, on_success: [{name: b, error_behavior: suspend, config: {run: x}}]}]}",
            "error behaviour of the step",
        ),
        (
            "workflow: {id: x, steps: [{name: a, type: workflow, config: {version: 1}}]}",
            "needs `workflow`",
        ),
        (
            "workflow: {id: x, steps: [{name: a, type: deno, config: {script: 'x', file: y}}]}",
            "exactly one of `script` or `file`",
        ),
        (
            "workflow: {id: x, steps: [{name: a, type: deno, config: {script: '${{ data.x }}'}}]}",
            "Wfe.getData",
        ),
        (
            "workflow: {id: x, steps: [{name: a, type: deno, config: {script: x, permissions: {net: [a/b]}}}]}",
            "is not a host",
        ),
        (
            "workflow: {id: x, steps: [{name: a, type: deno, config: {script: x, permissions: {nett: []}}}]}",
            "did you mean 'net'",
        ),
        (
            "workflow: {id: x, steps: [{name: a, config: {run: '${{ env.HOME }}'}}]}",
            "malformed expression",
        ),
        (
            "workflow: {id: x, steps: [{name: a, config: {run: x}, when: {field: .outputs.x}}]}",
            "exactly one operator",
        ),
        ("workflows: []", "non-empty list"),
        ("[1, 2]", "expected a mapping"),
        (
            "workflow: {id: x, steps: [{name: a, config: {run: x}}]}\nextra: 1",
            "unknown key 'extra'",
        ),
        ("a: [", "(yaml)"),
        ("workflow: {id: x, id: y}", "duplicate key"),
        (
            "workflows: [{id: x, steps: [{name: a, config: {run: x}}]}, {id: x, steps: [{name: a, config: {run: x}}]}]",
            "already defined",
        ),
    ],
)
def test_invalid_files_are_rejected(text: str, message: str) -> None:
    issues = issues_of(text)
    assert any(message in str(i) for i in issues), [str(i) for i in issues]


def test_names_are_unique_per_workflow_not_per_file() -> None:
    wfs = load(
        """
        workflows:
          - {id: one, steps: [{name: build, config: {run: x}}]}
          - {id: two, steps: [{name: build, config: {run: x}}]}
        """
    )
    assert [w.id for w in wfs] == ["one", "two"]


def test_vars_are_substituted_at_load_time_keeping_lone_values_typed() -> None:
    (wf,) = load(
        """
        workflow:
          id: "${{ var.prefix }}-wf"
          version: ${{ var.version }}
          steps: [{name: a, config: {run: "echo ${{ var.greeting }} ${{ data.x }}"}}]
        """,
        {"prefix": "ci", "version": 3, "greeting": "hello"},
    )
    assert (wf.id, wf.version) == ("ci-wf", 3)
    assert wf.definition.steps[0].body.plan.body.config.run == "echo hello ${{ data.x }}"  # type: ignore[attr-defined]


def test_unresolved_vars_are_errors_naming_them() -> None:
    issues = issues_of(
        "workflow: {id: x, steps: [{name: a, config: {run: 'echo ${{ var.who }}'}}]}"
    )
    assert any("unresolved variable `var.who`" in i.message for i in issues)


def test_anchors_and_merge_keys() -> None:
    wfs = load(
        """
        workflows:
          - &base
            id: x
            error_behavior: terminate
            steps: [{name: a, config: &cfg {run: echo a, timeout: 5s}}]
          - <<: *base
            id: y
            steps: [{name: b, config: {<<: *cfg, run: echo b}}]
        """
    )
    assert [w.id for w in wfs] == ["x", "y"]
    assert wfs[1].definition.default_error_behavior == ErrorBehavior.terminate()
    cfg = wfs[1].definition.steps[0].body.plan.body.config  # type: ignore[attr-defined]
    assert (cfg.run, cfg.timeout) == ("echo b", timedelta(seconds=5))


def test_includes_are_relative_and_cycles_name_the_chain(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "main.yaml").write_text(
        "include: [sub/child.yaml]\nworkflow: {id: main, steps: [{name: a, type: workflow, config: {workflow: child}}]}\n"
    )
    (tmp_path / "sub" / "child.yaml").write_text(
        "workflow: {id: child, steps: [{name: a, config: {run: x}}]}\n"
    )
    wfs = load_workflows(tmp_path / "main.yaml")
    assert [w.id for w in wfs] == ["main", "child"]
    assert load_workflow(tmp_path / "main.yaml").id == "main"

    (tmp_path / "sub" / "child.yaml").write_text("include: [../main.yaml]\n")
    with pytest.raises(YamlWorkflowError) as exc:
        load_workflows(tmp_path / "main.yaml")
    (issue,) = [i for i in exc.value.issues if "cycle" in i.message]
    assert "main.yaml -> " in issue.message
    assert "child.yaml -> " in issue.message
    assert issue.file.endswith("child.yaml")
    assert issue.line == 1


def test_missing_include_is_reported_at_the_include(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("include:\n  - nope.yaml\n")
    issues = validate(tmp_path / "m.yaml")
    assert len(issues) == 1
    assert issues[0].line == 2
    assert "cannot read included file" in issues[0].message


def test_validate_returns_issues_without_raising(tmp_path: Path) -> None:
    assert validate("workflow: {id: x, steps: [{name: a, config: {run: x}}]}") == []
    assert validate("workflow: {id: x}")[0].message.startswith("a workflow needs `steps`")
    path = tmp_path / "w.yaml"
    path.write_text("workflow: {id: x}\n")
    assert validate(str(path))[0].file == str(path)
    assert validate(tmp_path / "absent.yaml")[0].key == "(file)"


def test_inputs_are_checked_and_defaulted() -> None:
    (wf,) = load(FULL)
    data: dict[str, Any] = {"branch": "main"}
    check_inputs(wf, data)
    assert data == {"branch": "main", "count": 1}
    with pytest.raises(YamlWorkflowError) as exc:
        check_inputs(wf, {"count": "x", "tags": [1]})
    messages = [i.message for i in exc.value.issues]
    assert len(messages) == 3
    assert any("needs input 'branch'" in m for m in messages)
    assert any("input count: expected integer, got str" in m for m in messages)
    assert all(i.file == "w.yaml" for i in exc.value.issues)
    assert wf.definition.data_validator is not None
    with pytest.raises(YamlWorkflowError):
        wf.definition.data_validator({})


class EchoType:
    """A third-party step type: sets output ``echo`` to its ``text``."""

    def validate_config(self, node: YamlNode, info: StepInfo) -> list[Issue]:
        if not isinstance(node.get("text") and node.get("text").value, str):  # type: ignore[union-attr]
            return [node.issue("echo needs `text`")]
        return []

    def build(self, config: Mapping[str, Any], info: StepInfo) -> type[StepBody]:
        text = config["text"]

        class Echo(StepBody):
            async def run(self, ctx: Any) -> None:
                ctx.workflow.data["echo"] = text

        return Echo


def test_third_party_step_types_plug_in() -> None:
    (wf,) = load(
        "workflow: {id: x, steps: [{name: a, type: echo, config: {text: hi}}]}",
        step_types={"echo": EchoType()},
    )
    assert wf.definition.steps[0].body.plan.body.__name__ == "Echo"  # type: ignore[attr-defined]
    issues = validate(
        "workflow: {id: x, steps: [{name: a, type: echo, config: {}}]}",
        step_types={"echo": EchoType()},
    )
    assert [i.message for i in issues] == ["echo needs `text`"]


def test_step_types_are_entry_points() -> None:
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="wfe.yaml.step_types")}
    assert {"shell", "deno", "workflow"} <= names
