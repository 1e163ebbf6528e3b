"""The public names of wfe.yaml are pinned, so API changes show up in review."""

from __future__ import annotations

import wfe.yaml


def test_public_names() -> None:
    assert sorted(wfe.yaml.__all__) == sorted(
        [
            "STEP_TYPES_GROUP",
            "Combination",
            "CompiledWorkflow",
            "Comparison",
            "DenoStepType",
            "InterpolationError",
            "Issue",
            "ShellConfig",
            "ShellStep",
            "ShellStepError",
            "ShellStepType",
            "StepInfo",
            "StepType",
            "WorkflowStepType",
            "YamlNode",
            "YamlStep",
            "YamlWorkflowError",
            "check_inputs",
            "load_workflow",
            "load_workflow_from_str",
            "load_workflows",
            "parse_duration",
            "render",
            "render_shell",
            "render_value",
            "validate",
        ]
    )
    for name in wfe.yaml.__all__:
        assert hasattr(wfe.yaml, name)


def test_deno_runner_is_imported_lazily() -> None:
    """Loading wfe.yaml (and a Deno step) does not import the Deno runner."""
    import subprocess
    import sys

    code = (
        "import sys, wfe.yaml; "
        "wfe.yaml.load_workflow_from_str('workflow: {id: x, steps: [{name: a, type: deno, "
        "config: {script: \\'1\\'}}]}'); "
        "print('wfe.yaml._deno' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
