# ruff: noqa: E501  (one-line YAML documents read better unwrapped)
"""``artifacts:``: files a step leaves, copied under .wfe/artifacts/<id>/<step>/ and
usable by later steps as ``${{ artifacts.step.name }}``; no escaping the working
directory, no symbolic links."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from wfe.core import WorkflowInstance, WorkflowStatus
from wfe.host import WorkflowHostBuilder
from wfe.yaml import CompiledWorkflow, YamlWorkflowError, load_workflow_from_str


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WFE_ARTIFACTS_DIR", raising=False)
    return tmp_path


def load(text: str) -> CompiledWorkflow:
    return load_workflow_from_str(textwrap.dedent(text), {}, file="a.yaml")[0]


async def run(compiled: CompiledWorkflow) -> tuple[WorkflowInstance, list[str]]:
    async with WorkflowHostBuilder().register(compiled).build() as host:
        wid = await host.start_workflow(compiled.id, None, {})
        inst = await host.wait_for_workflow(wid, timeout=30)
        errors = [e.message for e in await host.get_errors(wid)]
    return inst, errors


async def test_artifacts_are_copied_recorded_and_readable_by_later_steps(tmp_path: Path) -> None:
    wf = load(
        """
        workflow:
          id: art
          steps:
            - name: build
              config: {run: "mkdir -p dist/docs && echo wheel > dist/app.whl && echo page > dist/docs/index.html"}
              artifacts: [{name: wheel, path: dist/app.whl}, dist/docs]
            - name: publish
              needs: [build]
              config:
                run: 'cat "${{ artifacts.build.wheel }}" > published; cat ${{ artifacts.build.docs }}/index.html >> published'
        """
    )
    inst, errors = await run(wf)
    assert inst.status is WorkflowStatus.COMPLETE, errors
    base = tmp_path / ".wfe" / "artifacts" / inst.id / "build"
    recorded = inst.data["steps"]["build"]["artifacts"]
    assert recorded == {"wheel": str(base / "wheel"), "docs": str(base / "docs")}
    assert (base / "wheel").read_text() == "wheel\n"
    assert (base / "docs" / "index.html").read_text() == "page\n"
    assert (tmp_path / "published").read_text() == "wheel\npage\n"


@pytest.mark.parametrize(
    ("script", "path", "message"),
    [
        ("ln -s /etc/hostname out", "out", "is a symbolic link"),
        ("mkdir real && ln -s /etc real/link", "real/link/hostname", "is a symbolic link"),
        ("mkdir d && ln -s /etc/hostname d/x", "d", "holds a symbolic link"),
        ("true", "nothing-here", "does not exist"),
    ],
)
async def test_symlinks_and_missing_paths_fail_the_step(
    script: str, path: str, message: str, tmp_path: Path
) -> None:
    wf = load(
        f"""
        workflow:
          id: bad
          steps:
            - {{name: s, config: {{run: "{script}"}}, artifacts: ["{path}"]}}
        """
    )
    inst, errors = await run(wf)
    assert inst.status is WorkflowStatus.SUSPENDED
    assert any(message in e for e in errors), errors
    assert not (tmp_path / ".wfe" / "artifacts" / inst.id / "s" / Path(path).name).exists()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('"../outside"', "must not leave the working directory"),
        ('"/etc/passwd"', "must be relative"),
        ('"a/../../b"', "must not leave the working directory"),
        ('{path: x, name: "a/b"}', "is not a valid artifact name"),
        ("[x, x]", "artifact name 'x' is used twice"),
    ],
)
def test_bad_artifact_paths_are_validation_errors(entry: str, message: str) -> None:
    items = entry[1:-1] if entry.startswith("[") else entry
    doc = f"workflow:\n  id: w\n  steps:\n    - {{name: a, config: {{run: x}}, artifacts: [{items}]}}\n"
    with pytest.raises(YamlWorkflowError) as info:
        load_workflow_from_str(doc, {}, file="w.yaml")
    assert message in str(info.value)
    assert str(info.value.issues[0]).startswith("w.yaml:4:")


def test_artifact_references_must_name_a_declared_artifact() -> None:
    doc = "workflow:\n  id: w\n  steps:\n    - {name: a, config: {run: x}, artifacts: [out]}\n    - {name: b, config: {run: 'cat ${{ artifacts.a.other }}'}}\n"
    with pytest.raises(YamlWorkflowError) as info:
        load_workflow_from_str(doc, {}, file="w.yaml")
    assert (
        "w.yaml:5:31: workflow.steps[1].config.run: `${{ artifacts.a.other }}`: step 'a' declares no artifact 'other' (declared: out)"
        in str(info.value)
    )
