"""The layout of a YAML workflow's data (a ``dict``).

* inputs given to ``start_workflow`` and every step output live at the top level
  (``data["files"]``);
* ``data["steps"][NAME]`` is the record of step NAME's last run: for shell steps
  ``{"stdout", "stderr", "exit_code", "outputs"}`` (stdout/stderr: the last 64 KiB),
  for Deno steps ``{"outputs"}``, for sub-workflows ``{"workflow_id", "status"}``,
  and ``{"skipped": true}`` for a step whose ``when`` was false;
* a shell step's output is also kept as ``data["<step>.stdout"]`` and
  ``data["<step>.stderr"]`` (the same bounded tails);
* ``data["steps"][NAME]["exports"]`` lists the outputs step NAME wrote to
  ``$WFE_OUTPUT``: with the declared inputs and outputs, the only names exported to
  later steps' environment (start data cannot hold ``steps``, so nothing else can
  add to that list).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from wfe.core import StepError

STEPS_KEY = "steps"
EXPORTS_KEY = "exports"
OUTPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$")
OUTPUT_NAME_HELP = (
    "a letter or _ then letters, digits, _ or - (at most 128 characters), "
    "not starting with __ and not `steps`"
)


_ENV_NAME = re.compile(r"[^A-Za-z0-9_]")


def env_name(key: str) -> str:
    """The environment variable a data key is exported as (upper-cased, ``_`` for
    other characters, ``_`` in front of a leading digit)."""
    name = _ENV_NAME.sub("_", key).upper()
    return f"_{name}" if not name or name[0].isdigit() else name


def output_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name an output (``None`` when it can); the same rule for every
    step type."""
    if not isinstance(name, str) or not OUTPUT_NAME.match(name):
        return f"{name!r} is not a valid output name ({OUTPUT_NAME_HELP})"
    if name == STEPS_KEY or name.startswith("__"):
        return f"output name {name!r} is reserved ({OUTPUT_NAME_HELP})"
    return None


def output_rule_problem(
    name: str, inputs: Collection[str], declared: Collection[str] | None
) -> str | None:
    """Why a step may not set output ``name``: an invalid name, a declared workflow input
    (``inputs``), or not among the step's declared ``outputs:`` (``declared``)."""
    problem = output_name_problem(name)
    if problem is not None:
        return problem
    if name in inputs:
        return f"output {name!r} would overwrite the declared workflow input {name!r}"
    clash = next((i for i in inputs if env_name(i) == env_name(name)), None)
    if clash is not None:
        return (
            f"output {name!r} would overwrite ${env_name(name)}, the environment variable "
            f"of the declared workflow input {clash!r}"
        )
    if declared is not None and name not in declared:
        names = ", ".join(sorted(declared)) or "none"
        return f"output {name!r} is not among the step's declared outputs ({names})"
    return None


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


def merge_outputs(
    data: dict[str, Any],
    outputs: Mapping[str, Any],
    step: str,
    *,
    inputs: Collection[str] = (),
    declared: Collection[str] | None = None,
) -> None:
    """Put a step's outputs at the top level of the data; a :class:`StepError` (nothing
    set) when one breaks a rule of :func:`output_rule_problem`."""
    for name in outputs:
        problem = output_rule_problem(name, inputs, declared)
        if problem is not None:
            raise StepError(f"step {step!r}: {problem}")
    data.update(outputs)


def exported_names(data: Mapping[str, Any], declared: Collection[str]) -> set[str]:
    """The data keys later steps see as environment variables: ``declared`` (inputs and
    outputs of the workflow and its steps) and what steps wrote to ``$WFE_OUTPUT``."""
    names = set(declared)
    steps = data.get(STEPS_KEY)
    if isinstance(steps, Mapping):
        for record in steps.values():
            listed = record.get(EXPORTS_KEY) if isinstance(record, Mapping) else None
            if isinstance(listed, list):
                names.update(n for n in listed if isinstance(n, str))
    return names
