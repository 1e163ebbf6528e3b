"""The ``shell`` step type: a script run by ``sh -c`` (or ``config.shell``).

Outputs go to the file named by ``$WFE_OUTPUT`` (``NAME=VALUE`` or ``NAME<<DELIM``
blocks, as GitHub's ``$GITHUB_OUTPUT``); stdout lines ``##wfe[output NAME=VALUE]``
are read too (``true``/``false`` → bool, ``null`` → None, integers, floats, else the
string). No output overwrites a declared workflow input, and a step declaring
``outputs:`` sets only those. Only names the author chose reach the environment,
upper-cased: declared inputs and outputs and what steps wrote to ``$WFE_OUTPUT``
(never ``PATH``, ``IFS``, ``BASH_ENV``, ``LD_*`` and the like); all data is in the
JSON file named by ``$WFE_DATA``. ``${{ data.path }}`` expressions in ``run`` reach
the shell as quoted variables, never as command text (see :mod:`._scanner`). The
step's record goes to ``data["steps"][NAME]``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import tempfile
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

import attrs
import trio

from wfe.core import ExecutionResult, StepBody, StepError, StepExecutionContext

from ._checks import (
    check_keys,
    expect_duration,
    expect_string,
    expect_string_map,
    forbid_data_expressions,
)
from ._data import (
    EXPORTS_KEY,
    exported_names,
    merge_outputs,
    output_rule_problem,
    record_step,
    workflow_data,
)
from ._durations import format_duration, parse_duration
from ._errors import Issue
from ._interpolation import render
from ._limits import LIMIT_KEYS, OutputLimits, check_limits
from ._nodes import YamlNode
from ._plugins import StepInfo
from ._process import ProcessResult, run_streaming
from ._scanner import problems as script_problems
from ._scope import current_scope
from ._shell_outputs import (
    export_env,
    output_size,
    parse_output_file,
    parse_output_line,
)
from ._shell_script import env_value, render_shell

SHELL_KEYS = ("run", "file", "shell", "env", "working_dir", "timeout", *LIMIT_KEYS)
_WFE_LINE_PREFIX = "##wfe[output "
# An environment and argument list larger than this fails exec() with E2BIG (Linux
# allows 2 MiB with the default stack limit; leave room for the inherited environment).
_MAX_ENV_TOTAL = 1024 * 1024


class ShellStepError(StepError):
    """A shell step failed: non-zero ``exit_code`` or ``timed_out``; ``stderr`` is its tail."""

    def __init__(
        self, message: str, *, exit_code: int | None, timed_out: bool, stderr: str
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.timed_out = timed_out
        self.stderr = stderr


@attrs.frozen(kw_only=True)
class ShellConfig:
    """A shell step's configuration (see the wfe-yaml README)."""

    run: str | None = None
    file: str | None = None
    shell: str | None = None
    env: Mapping[str, str] = attrs.field(factory=dict)
    working_dir: str | None = None
    timeout: timedelta | None = None
    limits: OutputLimits = attrs.field(factory=OutputLimits)


class ShellStep(StepBody):
    """Runs a :class:`ShellConfig`; subclasses bind ``config`` and ``info``."""

    config: ClassVar[ShellConfig]
    info: ClassVar[StepInfo]

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        cfg, info = type(self).config, type(self).info
        data = workflow_data(ctx.workflow.data)
        base = info.base_dir
        exported, skipped = export_env(data, exported_names(data, info.exported))
        if skipped:
            ctx.log(f"not exported to the environment: {', '.join(skipped)}", "log")
        # The workflow's secrets, under their own names (never in $WFE_DATA).
        env = {**os.environ, **exported, **current_scope().secrets}
        for key, value in cfg.env.items():
            env[key] = env_value(f"env {key}", render(value, data))
        shell = shlex.split(cfg.shell) if cfg.shell else ["sh"]
        if cfg.run is not None:
            script, expr_env = render_shell(cfg.run, data, shell=cfg.shell)
            env.update(expr_env)
            argv = [*shell, "-c", script]
        else:
            assert cfg.file is not None
            argv = [*shell, str(base / cfg.file)]
        total = sum(len(k) + len(v) + 2 for k, v in env.items()) + sum(map(len, argv))
        if total > _MAX_ENV_TOTAL:
            raise StepError(
                f"step {info.name!r}: its environment and command line take {total:,} bytes, "
                f"more than the {_MAX_ENV_TOTAL:,} a process may be given; read large values "
                "from the JSON file named by $WFE_DATA instead of `${{ }}` or `env:`"
            )
        cwd = str(base / cfg.working_dir) if cfg.working_dir else None
        if cwd is not None and not await trio.Path(cwd).is_dir():
            raise StepError(f"step {info.name!r}: working_dir {cwd!r} is not a directory")
        private = tempfile.mkdtemp(prefix="wfe-step-")  # mode 0700, this user only
        output_file = os.path.join(private, "output")
        data_file = os.path.join(private, "data.json")
        try:
            _create_private(output_file, b"")
            await _write_data(data_file, data)
            env["WFE_OUTPUT"], env["WFE_DATA"] = output_file, data_file
            result, printed, problems = await self._run_process(ctx, cfg, argv, env, cwd)
            written = await _read_output_file(output_file, cfg.limits.per_step, info.name)
        finally:
            _remove_private(private, (output_file, data_file))
        record: dict[str, Any] = {
            "stdout": result.stdout,
            "stderr": result.stderr,
            "exit_code": result.exit_code,
            "outputs": {**printed, **written},
        }
        if written:
            record[EXPORTS_KEY] = sorted(written)
        record_step(data, info.name, record)
        # Also under "<step>.stdout" / "<step>.stderr", the names DESIGN.md and the
        # ancestor engines use (not exported to the environment: see export_env).
        data[f"{info.name}.stdout"] = result.stdout
        data[f"{info.name}.stderr"] = result.stderr
        _raise_for_exit(info, cfg, result)
        if problems:
            raise StepError(f"step {info.name!r}: " + "; ".join(problems))
        _check_sizes(info.name, written, cfg.limits)
        merge_outputs(data, printed, info.name)
        merge_outputs(data, written, info.name, inputs=info.inputs, declared=info.outputs)
        return ExecutionResult.next()

    async def _run_process(
        self,
        ctx: StepExecutionContext,
        cfg: ShellConfig,
        argv: list[str],
        env: dict[str, str],
        cwd: str | None,
    ) -> tuple[ProcessResult, dict[str, Any], list[str]]:
        info = type(self).info
        printed: dict[str, Any] = {}
        problems: list[str] = []
        budget = [cfg.limits.per_step]
        max_line = cfg.limits.per_value + len(_WFE_LINE_PREFIX) + 256

        def on_line(stream: str, line: str) -> None:
            ctx.log(line, stream)
            if stream == "stdout" and line.startswith(_WFE_LINE_PREFIX):
                note = _stdout_output(line, printed, problems, budget, info, cfg.limits, max_line)
                if note is not None:
                    ctx.log(note, "log")

        try:
            result = await run_streaming(
                argv, env=env, cwd=cwd, timeout=cfg.timeout, on_line=on_line, max_line=max_line
            )
        except OSError as exc:
            raise StepError(f"step {info.name!r}: cannot start {argv[0]!r}: {exc}") from exc
        return result, printed, problems


def _stdout_output(
    line: str,
    printed: dict[str, Any],
    problems: list[str],
    budget: list[int],
    info: StepInfo,
    limits: OutputLimits,
    max_line: int,
) -> str | None:
    """Take one ``##wfe[output ...]`` stdout line. Stdout may carry text the step did not
    write itself (``cat untrusted.txt``), so a line breaking a rule is ignored (noted in
    the log, returned), and one too large fails the step."""
    if len(line) >= max_line:
        problems.append(f"a stdout output line is longer than {limits.per_value:,} bytes")
        return None
    parsed = parse_output_line(line)
    if parsed is None:
        return None
    name, value = parsed
    problem = output_rule_problem(name, info.inputs, info.outputs)
    if problem is not None:
        return f"ignored a stdout output line: {problem}"
    size = output_size(value)
    budget[0] -= size
    if size > limits.per_value or budget[0] < 0:
        problems.append(
            f"output {name!r} makes the step's outputs larger than allowed "
            f"({limits.per_value:,} bytes a value, {limits.per_step:,} a step: "
            "max_output_size / max_outputs_size)"
        )
        return None
    printed[name] = value
    return None


# Files up to this size are written and read on the trio thread: for a few KiB a
# thread hop costs more than the I/O (the JSON encoding holds the GIL either way).
_INLINE_IO = 64 * 1024


def _create_private(path: str, content: bytes) -> None:
    """Create ``path`` readable by this user only, from the first byte, with
    ``content``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(content)


async def _write_data(path: str, data: dict[str, Any]) -> None:
    text = json.dumps(data, default=str, ensure_ascii=False, allow_nan=False)
    content = text.encode("utf-8", errors="surrogatepass")
    if len(content) <= _INLINE_IO:
        _create_private(path, content)
    else:
        await trio.to_thread.run_sync(_create_private, path, content)


async def _read_output_file(path: str, limit: int, step: str) -> dict[str, Any]:
    size = os.stat(path).st_size
    if size > limit:
        raise StepError(
            f"step {step!r}: $WFE_OUTPUT holds {size:,} bytes, more than the {limit:,} "
            "a step's outputs may take (max_outputs_size)"
        )
    if size <= _INLINE_IO:
        raw = _read_bytes(path)
    else:
        raw = await trio.to_thread.run_sync(_read_bytes, path)
    return parse_output_file(raw.decode("utf-8", errors="replace"), step)


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _remove_private(directory: str, files: tuple[str, ...]) -> None:
    """Remove a step's private directory: its two files and itself, or, when the step
    left more in it, the whole tree."""
    try:
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        os.rmdir(directory)
    except OSError:
        shutil.rmtree(directory, ignore_errors=True)


def _check_sizes(step: str, outputs: dict[str, Any], limits: OutputLimits) -> None:
    for name, value in outputs.items():
        size = output_size(value)
        if size > limits.per_value:
            raise StepError(
                f"step {step!r}: output {name!r} takes {size:,} bytes, more than the "
                f"{limits.per_value:,} one output may take (max_output_size)"
            )


def _raise_for_exit(info: StepInfo, cfg: ShellConfig, result: ProcessResult) -> None:
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
        for key in ("file", "working_dir", "shell", "timeout", *LIMIT_KEYS):
            forbid_data_expressions(
                node.get(key), issues, "it is fixed when the file loads (use `${{ var.NAME }}`)"
            )
        if node.get("env") is not None:
            expect_string_map(node.get("env"), issues, "environment variables")
        expect_duration(node.get("timeout"), issues)
        check_limits(node, issues)
        shell = node.get("shell")
        if run is not None and isinstance(run.value, str):
            shell_text = shell.value if shell is not None and isinstance(shell.value, str) else None
            for site in script_problems(run.value, shell_text):
                issues.append(run.issue(site.describe(run.value)))
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
            limits=OutputLimits.from_config(config),
        )
        return type(
            f"ShellStep[{info.name}]",
            (ShellStep,),
            {"config": cfg, "info": info, "fingerprint_key": "yaml:shell"},
        )
