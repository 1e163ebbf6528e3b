"""wfe.yaml: workflows written in YAML — loader, validator, ``${{ }}`` interpolation,
``when`` conditions, and the shell, Deno and sub-workflow step types."""

from ._compile import CompiledWorkflow as CompiledWorkflow
from ._compile import YamlStep as YamlStep
from ._compile import check_inputs as check_inputs
from ._conditions import Combination as Combination
from ._conditions import Comparison as Comparison
from ._deno_step import DenoStepType as DenoStepType
from ._durations import parse_duration as parse_duration
from ._errors import Issue as Issue
from ._errors import YamlWorkflowError as YamlWorkflowError
from ._interpolation import InterpolationError as InterpolationError
from ._interpolation import render as render
from ._interpolation import render_value as render_value
from ._loader import load_workflow as load_workflow
from ._loader import load_workflow_from_str as load_workflow_from_str
from ._loader import load_workflows as load_workflows
from ._loader import validate as validate
from ._nodes import YamlNode as YamlNode
from ._plugins import STEP_TYPES_GROUP as STEP_TYPES_GROUP
from ._plugins import StepInfo as StepInfo
from ._plugins import StepType as StepType
from ._shell import ShellConfig as ShellConfig
from ._shell import ShellStep as ShellStep
from ._shell import ShellStepError as ShellStepError
from ._shell import ShellStepType as ShellStepType
from ._shell_script import render_shell as render_shell
from ._subworkflow import WorkflowStepType as WorkflowStepType

__all__ = [
    "STEP_TYPES_GROUP",
    "Combination",
    "Comparison",
    "CompiledWorkflow",
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
