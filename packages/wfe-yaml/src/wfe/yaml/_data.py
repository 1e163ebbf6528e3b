"""The layout of a YAML workflow's data (a ``dict``).

* inputs given to ``start_workflow`` and every step output live at the top level
  (``data["files"]``);
* ``data["steps"][NAME]`` is the record of step NAME's last run: for shell steps
  ``{"stdout", "stderr", "exit_code", "outputs"}`` (stdout/stderr: the last 64 KiB),
  for Deno steps ``{"outputs"}``, for sub-workflows ``{"workflow_id", "status"}``,
  and ``{"skipped": true}`` for a step whose ``when`` was false;
* a shell step's output is also kept as ``data["<step>.stdout"]`` and
  ``data["<step>.stderr"]`` (the same bounded tails).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from wfe.core import StepError

STEPS_KEY = "steps"
OUTPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def workflow_data(data: Any) -> dict[str, Any]:
    """The workflow data as the dict YAML steps require."""
    if not isinstance(data, dict):
        raise StepError(
            f"YAML workflow steps need dict workflow data, got {type(data).__qualname__}"
        )
    return data


def record_step(data: dict[str, Any], name: str, record: Mapping[str, Any]) -> None:
    """Store ``record`` as ``data["steps"][name]``."""
    steps = data.get(STEPS_KEY)
    if steps is None:
        steps = data[STEPS_KEY] = {}
    if not isinstance(steps, dict):
        raise StepError(
            f"workflow data key {STEPS_KEY!r} is reserved for step records, but holds "
            f"{type(steps).__qualname__}"
        )
    steps[name] = dict(record)


def merge_outputs(data: dict[str, Any], outputs: Mapping[str, Any], step: str) -> None:
    """Put a step's outputs at the top level of the data."""
    for name, value in outputs.items():
        if name == STEPS_KEY:
            raise StepError(f"step {step!r}: output name {STEPS_KEY!r} is reserved")
        data[name] = value
