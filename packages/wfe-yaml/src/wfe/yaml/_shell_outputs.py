"""How a shell step reports outputs: the file named by ``$WFE_OUTPUT`` (the documented
way, written only by the step's own process) and, for pipelines written for WFE, stdout
lines ``##wfe[output NAME=VALUE]``; and which data keys it exports to the environment."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any

from wfe.core import StepError

from ._data import STEPS_KEY, env_name

_OUTPUT_LINE = re.compile(r"^##wfe\[output ([^=\]\s]+)=(.*)\]\s*$")
_FILE_LINE = re.compile(r"^([^=<\s]+)=(.*)$")
_FILE_HEREDOC = re.compile(r"^([^=<\s]+)<<(\S+)$")
_INT = re.compile(r"^[-+]?\d{1,300}$")
_FLOAT = re.compile(r"^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$")
# Variables that change how the shell, the loader or wfe itself behave: never exported.
_PROTECTED = frozenset(
    {"PATH", "HOME", "SHELL", "IFS", "ENV", "BASH_ENV", "CDPATH", "PS4", "SHELLOPTS", "BASHOPTS"}
    | {"WFE_OUTPUT", "WFE_DATA"}
)
_STREAM_KEYS = (".stdout", ".stderr")


def parse_output_value(text: str) -> Any:
    """An output value typed: true/false → bool, null → None, int, float, else the string."""
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        number = float(text)
        return number if number not in (float("inf"), float("-inf")) else text
    return text


def parse_output_line(line: str) -> tuple[str, Any] | None:
    """``(name, value)`` for a ``##wfe[output NAME=VALUE]`` line, else ``None``."""
    m = _OUTPUT_LINE.match(line)
    if m is None:
        return None
    return m.group(1), parse_output_value(m.group(2))


def parse_output_file(text: str, step: str) -> dict[str, Any]:
    """The outputs of a ``$WFE_OUTPUT`` file: ``NAME=VALUE`` lines (typed like stdout
    outputs) and ``NAME<<DELIMITER`` … ``DELIMITER`` blocks (a string of those lines);
    a :class:`StepError` naming the line for anything else."""
    outputs: dict[str, Any] = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i = 0
    while i < len(lines):
        line = lines[i].removesuffix("\r")
        i += 1
        if not line.strip():
            continue
        block = _FILE_HEREDOC.match(line)
        if block is not None:
            name, delimiter = block.groups()
            body: list[str] = []
            while i < len(lines) and lines[i].removesuffix("\r") != delimiter:
                body.append(lines[i].removesuffix("\r"))
                i += 1
            if i >= len(lines):
                raise StepError(
                    f"step {step!r}: $WFE_OUTPUT: output {name!r} starts a block ending "
                    f"with {delimiter!r}, but no line {delimiter!r} follows"
                )
            i += 1
            outputs[name] = "\n".join(body)
            continue
        single = _FILE_LINE.match(line)
        if single is None:
            raise StepError(
                f"step {step!r}: $WFE_OUTPUT line {i}: expected NAME=VALUE or "
                "NAME<<DELIMITER (the value's lines, then DELIMITER alone on a line)"
            )
        outputs[single.group(1)] = parse_output_value(single.group(2))
    return outputs


def output_size(value: Any) -> int:
    """Bytes an output value takes (its text, or its JSON)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return len(text.encode("utf-8", "surrogatepass"))


def export_env(
    data: Mapping[str, Any], names: Collection[str] | None = None, *, max_value: int = 100_000
) -> tuple[dict[str, str], list[str]]:
    """The environment exported from ``data``: the keys in ``names`` (every key when
    ``None``) upper-cased, non-strings as JSON, and the keys left out (with why)."""
    env: dict[str, str] = {}
    skipped: list[str] = []
    for key, value in data.items():
        if key == STEPS_KEY or not isinstance(key, str) or key.endswith(_STREAM_KEYS):
            continue  # step records and captured output stay out of the environment
        if names is not None and key not in names:
            continue
        name = env_name(key)
        if name in _PROTECTED or name.startswith(("LD_", "DYLD_")):
            skipped.append(f"{key} (would set {name})")
            continue
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        if "\0" in text or len(text) > max_value:
            skipped.append(f"{key} (value too large or holds NUL; read it from $WFE_DATA)")
            continue
        env[name] = text
    return env, skipped
