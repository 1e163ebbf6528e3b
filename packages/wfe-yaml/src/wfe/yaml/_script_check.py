"""Checks of Deno scripts at validation time: a syntax error is reported with its
position (in the YAML file for an inline ``script:``, in the script file for
``file:``) before anything runs; without the Deno runtime a Deno step is a warning
naming how to install it.

The syntax check is ``deno fmt --ext ts|js -`` on the script text: it parses without
running or type-checking anything (no network, no permissions) and says where the first
syntax error is.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

from wfe.core import DefinitionError, StepError

from ._deno_errors import deno_install_hint
from ._deno_step import DenoStepType, make_deno_config
from ._errors import Issue
from ._nodes import YamlNode
from ._schema import StepSpec, WorkflowSpec

_AT = re.compile(r"at file:///\S*?_stdin\.\w+:(\d+):(\d+)")
_FIRST = re.compile(r"^(?:error: )?(.*)$")
_TS_SUFFIXES = (".ts", ".mts", ".cts", ".tsx")
_CHECK_TIMEOUT = 30.0


def _leaves(steps: Iterable[StepSpec]) -> Iterator[StepSpec]:
    for step in steps:
        yield step
        yield from _leaves(step.parallel)
        yield from _leaves(step.on_success + step.on_failure + step.ensure)


def _deno() -> str | None:
    from ._deno import _deno_binary

    try:
        return _deno_binary()
    except StepError:
        return None


def check_scripts(specs: Iterable[WorkflowSpec]) -> tuple[list[Issue], list[Issue]]:
    """``(errors, warnings)`` for the Deno steps of ``specs``."""
    deno_steps = [
        step
        for spec in specs
        for step in _leaves(spec.steps)
        if isinstance(step.step_type, DenoStepType)
    ]
    if not deno_steps:
        return [], []
    binary = _deno()
    if binary is None:
        first = deno_steps[0]
        return [], [
            first.node.issue(
                f"the Deno runtime is not installed, so {len(deno_steps)} Deno step(s) "
                f"(first: {first.name!r}) would fail when they run; install it with: "
                f"{deno_install_hint()}"
            )
        ]
    errors: list[Issue] = []
    for step in deno_steps:
        issue = _check_step(binary, step)
        if issue is not None:
            errors.append(issue)
    return errors, []


def _check_step(binary: str, step: StepSpec) -> Issue | None:
    try:
        config = make_deno_config(step.config, step.info)
    except DefinitionError:
        return None  # already reported by the step type's validation
    config_node = step.node.get("config")
    if config.script is not None:
        script_node = config_node.get("script") if config_node is not None else None
        found = _syntax_error(binary, config.script, config.script_suffix == ".ts")
        if found is None:
            return None
        line, column, message = found
        node = script_node or step.node
        file_line, file_column = _in_file(node, config.script, line, column)
        return Issue(
            file=node.file,
            line=file_line,
            column=file_column,
            key=node.path,
            message=f"Deno syntax error at script line {line}, column {column}: {message}",
        )
    assert config.file is not None
    path = Path(config.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        node = (config_node.get("file") if config_node is not None else None) or step.node
        return node.issue(f"cannot read the Deno script {str(path)!r}: {exc}")
    found = _syntax_error(binary, text, path.suffix.lower() in _TS_SUFFIXES)
    if found is None:
        return None
    line, column, message = found
    return Issue(
        file=str(path),
        line=line,
        column=column,
        key=f"{step.node.path}.config.file",
        message=f"Deno syntax error: {message}",
    )


def _syntax_error(binary: str, text: str, typescript: bool) -> tuple[int, int, str] | None:
    """``(line, column, message)`` of the first syntax error in ``text``, else ``None``."""
    env = {**os.environ, "NO_COLOR": "1", "DENO_NO_UPDATE_CHECK": "1"}
    try:
        result = subprocess.run(
            [binary, "fmt", "--ext", "ts" if typescript else "js", "-"],
            input=text,
            capture_output=True,
            text=True,
            env=env,
            timeout=_CHECK_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None  # the check is a convenience: the step itself reports at run time
    if result.returncode == 0:
        return None
    where = _AT.search(result.stderr)
    if where is None:
        return None  # not a syntax error (deno could not run): nothing to say here
    lines = [ln.strip() for ln in result.stderr.strip().splitlines() if ln.strip()]
    first = _FIRST.match(lines[0]) if lines else None
    message = first.group(1) if first is not None else "invalid syntax"
    return int(where.group(1)), int(where.group(2)), message


def _in_file(node: YamlNode, script: str, line: int, column: int) -> tuple[int, int]:
    """Where script ``line``/``column`` is in the YAML file: exact for a block scalar
    (``script: |``) whose lines are found in the file, else the script's own start."""
    try:
        lines = Path(node.file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return node.line, node.column
    wanted = script.splitlines()
    if not 0 < line <= len(wanted) or "\n" not in script:
        return node.line, node.column
    # A block scalar's content starts on the line after its indicator.
    target = node.line + line  # node.line is the indicator's line (1-based)
    if (
        target - 1 < len(lines)
        and wanted[line - 1]
        and lines[target - 1].endswith(wanted[line - 1])
    ):
        indent = len(lines[target - 1]) - len(wanted[line - 1])
        return target, indent + column
    return node.line, node.column
