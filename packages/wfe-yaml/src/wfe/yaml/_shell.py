"""The ``shell`` step type: a script run by ``sh -c`` (or ``config.shell``).

Every top-level data key is exported as an upper-cased environment variable (JSON
for non-strings; ``steps`` and names that would redirect the shell itself, such as
``PATH``, ``IFS``, ``BASH_ENV`` or ``LD_*``, are not). ``${{ data.path }}`` expressions
in ``run`` reach the shell as quoted variables, never as command text. Stdout lines
``##wfe[output NAME=VALUE]`` set outputs (``true``/``false`` → bool, ``null`` → None,
integers, floats, else the string). The step's record goes to ``data["steps"][NAME]``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

import attrs
import trio

from wfe.core import ExecutionResult, StepBody, StepError, StepExecutionContext

from ._checks import check_keys, expect_duration, expect_string, expect_string_map
from ._data import OUTPUT_NAME, STEPS_KEY, merge_outputs, record_step, workflow_data
from ._durations import format_duration, parse_duration
from ._errors import Issue
from ._interpolation import render, render_shell
from ._nodes import YamlNode
from ._plugins import StepInfo
from ._process import run_streaming

SHELL_KEYS = ("run", "file", "shell", "env", "working_dir", "timeout")
_OUTPUT_LINE = re.compile(r"^##wfe\[output ([^=\]\s]+)=(.*)\]\s*$")
_INT = re.compile(r"^[-+]?\d+$")
_FLOAT = re.compile(r"^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$")
_ENV_NAME = re.compile(r"[^A-Za-z0-9_]")
# Variables that change how the shell or the loader behave: data must not set them.
_PROTECTED = frozenset(
    {"PATH", "HOME", "SHELL", "IFS", "ENV", "BASH_ENV", "CDPATH", "PS4", "SHELLOPTS", "BASHOPTS"}
)
_MAX_ENV_VALUE = 100_000  # Linux refuses single environment strings over 128 KiB


class ShellStepError(StepError):
    """A shell step failed: non-zero ``exit_code`` or ``timed_out``; ``stderr`` is its tail."""

    def __init__(
        self, message: str, *, exit_code: int | None, timed_out: bool, stderr: str
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.timed_out = timed_out
        self.stderr = stderr


def parse_output_value(text: str) -> Any:
    """An output value typed: true/false → bool, null → None, int, float, else the string."""
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


def parse_output_line(line: str) -> tuple[str, Any] | None:
    """``(name, value)`` for a ``##wfe[output NAME=VALUE]`` line, else ``None``."""
    m = _OUTPUT_LINE.match(line)
    if m is None or not OUTPUT_NAME.match(m.group(1)) or m.group(1) == STEPS_KEY:
        return None
    return m.group(1), parse_output_value(m.group(2))


_STREAM_KEYS = (".stdout", ".stderr")


def export_env(data: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The environment exported from data, and the keys left out (with why)."""
    env: dict[str, str] = {}
    skipped: list[str] = []
    for key, value in data.items():
        if key == STEPS_KEY or not isinstance(key, str) or key.endswith(_STREAM_KEYS):
            continue  # step records and captured output stay out of the environment
        name = _ENV_NAME.sub("_", key).upper()
        if not name or name[0].isdigit():
            name = f"_{name}"
        if name in _PROTECTED or name.startswith(("LD_", "DYLD_")):
            skipped.append(f"{key} (would set {name})")
            continue
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        if "\0" in text or len(text) > _MAX_ENV_VALUE:
            skipped.append(f"{key} (value too large or holds NUL)")
            continue
        env[name] = text
    return env, skipped


@attrs.frozen(kw_only=True)
class ShellConfig:
    """A shell step's configuration (see the wfe-yaml README)."""

    run: str | None = None
    file: str | None = None
    shell: str | None = None
    env: Mapping[str, str] = attrs.field(factory=dict)
    working_dir: str | None = None
    timeout: timedelta | None = None


class ShellStep(StepBody):
    """Runs a :class:`ShellConfig`; subclasses bind ``config`` and ``info``."""

    config: ClassVar[ShellConfig]
    info: ClassVar[StepInfo]

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        cfg, info = type(self).config, type(self).info
        data = workflow_data(ctx.workflow.data)
        base = info.base_dir
        exported, skipped = export_env(data)
        if skipped:
            ctx.log(f"not exported to the environment: {', '.join(skipped)}", "log")
        env = {**os.environ, **exported}
        env.update({k: render(v, data) for k, v in cfg.env.items()})
        shell = shlex.split(cfg.shell) if cfg.shell else ["sh"]
        if cfg.run is not None:
            script, expr_env = render_shell(cfg.run, data)
            env.update(expr_env)
            argv = [*shell, "-c", script]
        else:
            assert cfg.file is not None
            argv = [*shell, str(base / render(cfg.file, data))]
        cwd = str(base / render(cfg.working_dir, data)) if cfg.working_dir else None
        if cwd is not None and not await trio.Path(cwd).is_dir():
            raise StepError(f"step {info.name!r}: working_dir {cwd!r} is not a directory")
        outputs: dict[str, Any] = {}

        def on_line(stream: str, line: str) -> None:
            if stream == "stdout":
                parsed = parse_output_line(line)
                if parsed is not None:
                    outputs[parsed[0]] = parsed[1]
            ctx.log(line, stream)

        try:
            result = await run_streaming(
                argv, env=env, cwd=cwd, timeout=cfg.timeout, on_line=on_line
            )
        except OSError as exc:
            raise StepError(f"step {info.name!r}: cannot start {argv[0]!r}: {exc}") from exc
        record_step(
            data,
            info.name,
            {
                "stdout": result.stdout,
                "stderr": result.stderr,
                "exit_code": result.exit_code,
                "outputs": outputs,
            },
        )
        # Also under "<step>.stdout" / "<step>.stderr", the names DESIGN.md and the
        # ancestor engines use (not exported to the environment: see export_env).
        data[f"{info.name}.stdout"] = result.stdout
        data[f"{info.name}.stderr"] = result.stderr
        tail = _tail(result.stderr, result.stdout)
        if result.timed_out:
            assert cfg.timeout is not None
            raise ShellStepError(
                f"step {info.name!r} timed out after {format_duration(cfg.timeout)}; "
                f"its process group was killed{tail}",
                exit_code=result.exit_code,
                timed_out=True,
                stderr=result.stderr,
            )
        if result.exit_code != 0:
            raise ShellStepError(
                f"step {info.name!r} failed with exit code {result.exit_code}{tail}",
                exit_code=result.exit_code,
                timed_out=False,
                stderr=result.stderr,
            )
        merge_outputs(data, outputs, info.name)
        return ExecutionResult.next()


def _tail(stderr: str, stdout: str, lines: int = 20) -> str:
    """The end of an error message: the last lines of stderr, or of stdout when stderr is
    empty (pytest, for one, writes why it failed to stdout)."""
    for name, text in (("stderr", stderr), ("stdout", stdout)):
        kept = text.rstrip("\n").splitlines()[-lines:]
        if any(line.strip() for line in kept):
            return f"; {name} tail:\n" + "\n".join(kept)
    return "; it wrote nothing to stdout or stderr"


class ShellStepType:
    """The ``shell`` step type (the default ``type``)."""

    def validate_config(self, node: YamlNode, info: StepInfo) -> list[Issue]:
        issues: list[Issue] = []
        check_keys(node, SHELL_KEYS, issues)
        run, file = node.get("run"), node.get("file")
        if (run is None) == (file is None):
            issues.append(node.issue("a shell step needs exactly one of `run` or `file`"))
        if run is not None:
            expect_string(run, issues, what="a script (string)")
        if file is not None:
            expect_string(file, issues, what="a script path (string)")
        for key in ("shell", "working_dir"):
            expect_string(node.get(key), issues)
        if node.get("env") is not None:
            expect_string_map(node.get("env"), issues, "environment variables")
        expect_duration(node.get("timeout"), issues)
        return issues

    def build(self, config: Mapping[str, Any], info: StepInfo) -> type[StepBody]:
        timeout = config.get("timeout")
        cfg = ShellConfig(
            run=config.get("run"),
            file=config.get("file"),
            shell=config.get("shell"),
            env={
                k: v if isinstance(v, str) else json.dumps(v)
                for k, v in config.get("env", {}).items()
            },
            working_dir=config.get("working_dir"),
            timeout=parse_duration(timeout) if timeout is not None else None,
        )
        return type(
            f"ShellStep[{info.name}]",
            (ShellStep,),
            {"config": cfg, "info": info, "fingerprint_key": "yaml:shell"},
        )
