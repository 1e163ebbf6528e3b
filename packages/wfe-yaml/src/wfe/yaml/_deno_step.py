"""The ``deno`` step type: validates a Deno step's ``config:`` and runs it with
:func:`wfe.yaml._deno.run_deno` (imported only when a Deno step runs).

Outputs set with ``Wfe.setOutput(name, value)`` are merged into the workflow data
like shell outputs; ``data["steps"][NAME]`` records ``{"outputs": ...}``. Relative
``file``, ``modules`` and ``working_dir`` resolve against the YAML file's directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs

from wfe.core import DefinitionError, ExecutionResult, StepBody, StepExecutionContext

from ._checks import (
    check_keys,
    expect_duration,
    expect_map,
    expect_string,
    expect_string_list,
    expect_string_map,
    forbid_data_expressions,
    kind_of,
)
from ._data import merge_outputs, record_step, workflow_data
from ._deno_config import DenoConfig, DenoPermissions, is_remote
from ._durations import parse_duration
from ._errors import Issue
from ._graph_state import GRAPH_KEY
from ._interpolation import render
from ._limits import LIMIT_KEYS, OutputLimits, check_limits
from ._nodes import YamlNode
from ._plugins import StepInfo
from ._scope import current_scope
from ._shell_script import env_value

DENO_KEYS = (
    "script",
    "file",
    "permissions",
    "modules",
    "timeout",
    "env",
    "working_dir",
    "typescript",
    *LIMIT_KEYS,
)
PERMISSION_KEYS = ("net", "read", "write", "env", "run", "dynamic_import")


def _absolute(path: str, base: Path) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else base / p)


def make_deno_config(config: Mapping[str, Any], info: StepInfo) -> DenoConfig:
    """The :class:`DenoConfig` of a validated ``config:`` mapping."""
    perms = dict(config.get("permissions") or {})
    base = info.base_dir
    working_dir = config.get("working_dir")
    file = config.get("file")
    timeout = config.get("timeout")
    return DenoConfig(
        script=config.get("script"),
        file=_absolute(file, base) if file is not None else None,
        permissions=DenoPermissions(
            net=tuple(perms.get("net", ())),
            read=tuple(perms.get("read", ())),
            write=tuple(perms.get("write", ())),
            env=tuple(perms.get("env", ())),
            run=bool(perms.get("run", False)),
            dynamic_import=bool(perms.get("dynamic_import", False)),
        ),
        modules=tuple(m if is_remote(m) else _absolute(m, base) for m in config.get("modules", ())),
        timeout=parse_duration(timeout) if timeout is not None else None,
        env={k: str(v) for k, v in (config.get("env") or {}).items()},
        working_dir=_absolute(working_dir, base) if working_dir is not None else None,
        typescript=config.get("typescript"),
        limits=OutputLimits.from_config(config),
    )


class DenoStep(StepBody):
    """Runs a :class:`DenoConfig`; subclasses bind ``config`` and ``info``."""

    config: ClassVar[DenoConfig]
    info: ClassVar[StepInfo]

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult | None:
        from ._deno import run_deno

        cfg, info = type(self).config, type(self).info
        data = workflow_data(ctx.workflow.data)
        secrets = current_scope().secrets
        if cfg.env or secrets:
            env = {k: env_value(f"env {k}", render(v, data)) for k, v in cfg.env.items()}
            # The workflow's secrets, under their own names (Deno reads them with the
            # `env` permission); never in what Wfe.getData() returns.
            cfg = attrs.evolve(cfg, env={**secrets, **env})
        visible = {k: v for k, v in data.items() if k not in ("steps", GRAPH_KEY)}
        outputs = await run_deno(cfg, visible, ctx.log_sink)
        record_step(data, info.name, {"outputs": outputs})
        merge_outputs(data, outputs, info.name, inputs=info.inputs, declared=info.outputs)
        return ExecutionResult.next()


class DenoStepType:
    """The ``deno`` step type (needs the ``deno`` extra at run time)."""

    def validate_config(self, node: YamlNode, info: StepInfo) -> list[Issue]:
        issues: list[Issue] = []
        check_keys(node, DENO_KEYS, issues)
        script, file = node.get("script"), node.get("file")
        if (script is None) == (file is None):
            issues.append(node.issue("a Deno step needs exactly one of `script` or `file`"))
        expect_string(script, issues, what="a script (string)")
        expect_string(file, issues, what="a script path (string)")
        expect_string(node.get("working_dir"), issues)
        forbid_data_expressions(
            script, issues, "Deno scripts read workflow data with Wfe.getData()"
        )
        for key in ("file", "modules", "working_dir", "permissions", "timeout"):
            forbid_data_expressions(node.get(key), issues, "it is fixed when the file loads")
        perms = node.get("permissions")
        if expect_map(perms, "permissions", issues):
            assert perms is not None
            check_keys(perms, PERMISSION_KEYS, issues)
            for key in ("net", "read", "write", "env"):
                if perms.get(key) is not None:
                    expect_string_list(perms.get(key), issues, key)
            for key in ("run", "dynamic_import"):
                flag = perms.get(key)
                if flag is not None and not isinstance(flag.value, bool):
                    issues.append(flag.issue(f"expected true or false, got {kind_of(flag)}"))
        if node.get("modules") is not None:
            expect_string_list(node.get("modules"), issues, "modules")
        if node.get("env") is not None:
            expect_string_map(node.get("env"), issues, "environment variables")
        expect_duration(node.get("timeout"), issues)
        check_limits(node, issues)
        typescript = node.get("typescript")
        if typescript is not None and not isinstance(typescript.value, bool):
            issues.append(typescript.issue(f"expected true or false, got {kind_of(typescript)}"))
        if not issues:
            try:
                make_deno_config(node.plain(), info)
            except DefinitionError as exc:
                issues.append(node.issue(str(exc)))
        return issues

    def build(self, config: Mapping[str, Any], info: StepInfo) -> type[StepBody]:
        return type(
            f"DenoStep[{info.name}]",
            (DenoStep,),
            {
                "config": make_deno_config(config, info),
                "info": info,
                "fingerprint_key": "yaml:deno",
            },
        )
