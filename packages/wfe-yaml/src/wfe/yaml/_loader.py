"""Loading YAML workflow files: read, parse, substitute ``${{ var.* }}``, follow
``include``, validate everything, and only then compile."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ._checks import check_expressions, check_keys, kind_of
from ._compile import CompiledWorkflow, compile_workflow
from ._errors import Issue, YamlWorkflowError
from ._interpolation import EXPRESSION, parse_expression, to_text
from ._nodes import YamlNode, parse_yaml
from ._plugins import StepType, StepTypeRegistry
from ._schema import FILE_KEYS, WorkflowSpec, parse_workflow
from ._script_check import check_scripts


def substitute_vars(node: YamlNode, config: Mapping[str, Any], issues: list[Issue]) -> None:
    """Replace ``${{ var.NAME }}`` in every string under ``node`` (in place).

    A string that is exactly one var expression takes the config value itself (its
    type kept); elsewhere the value is inserted as text. Unknown names are issues.
    """
    if node.is_map or node.is_seq:
        for child in node.value.values() if node.is_map else node.value:
            substitute_vars(child, config, issues)
        return
    if not isinstance(node.value, str) or "${{" not in node.value:
        return
    text: str = node.value
    missing: list[str] = []

    def lookup(m: Any) -> tuple[bool, Any]:
        parsed = parse_expression(m.group(1))
        if parsed is None or parsed[0] != "var":
            return False, None
        name = str(parsed[1][0])
        if name not in config:
            missing.append(name)
            return False, None
        return True, config[name]

    whole = EXPRESSION.fullmatch(text.strip())
    if whole is not None:
        found, value = lookup(whole)
        if found:
            node.value = value
            return
    if whole is None or not missing:

        def sub(m: Any) -> str:
            found, value = lookup(m)
            return to_text(value) if found else str(m.group())

        node.value = EXPRESSION.sub(sub, text)
    for name in dict.fromkeys(missing):
        known = ", ".join(sorted(config)) or "none given"
        issues.append(
            node.issue(
                f"unresolved variable `var.{name}` (set it with --set {name}=...; known: {known})"
            )
        )


@attrs.define
class _Load:
    config: Mapping[str, Any]
    registry: StepTypeRegistry
    check_scripts: bool = False
    issues: list[Issue] = attrs.field(factory=list)
    warnings: list[Issue] = attrs.field(factory=list)
    specs: list[WorkflowSpec] = attrs.field(factory=list)
    loaded: set[str] = attrs.field(factory=set)

    def load_file(self, path: Path, chain: tuple[str, ...], at: YamlNode | None) -> None:
        key = str(path.resolve())
        if key in chain:
            names = " -> ".join([*(os.path.relpath(c) for c in chain), os.path.relpath(key)])
            assert at is not None
            self.issues.append(at.issue(f"include cycle: {names}"))
            return
        if key in self.loaded:
            return
        self.loaded.add(key)
        try:
            text = read_workflow_file(path)
        except _Unreadable as exc:
            if at is not None:
                self.issues.append(
                    at.issue(f"cannot read included file {str(path)!r}: {exc.reason}")
                )
            else:
                self.issues.append(
                    Issue(
                        file=str(path),
                        line=1,
                        column=1,
                        key="(file)",
                        message=f"cannot read: {exc.reason}",
                    )
                )
            return
        self.load_text(text, str(path), path.parent, (*chain, key), included_at=at)

    def load_text(
        self,
        text: str,
        file: str,
        base_dir: Path,
        chain: tuple[str, ...],
        included_at: YamlNode | None = None,
    ) -> None:
        root, issues = parse_yaml(text, file)
        if included_at is not None and not _is_workflow_file(root):
            # Not a workflow file (say /etc/shadow): say so without quoting a word of it.
            where = f" (line {issues[0].line}, column {issues[0].column})" if issues else ""
            self.issues.append(
                included_at.issue(
                    f"cannot include {file!r}: it is not a wfe workflow file (a YAML "
                    f"mapping with `workflow`, `workflows` or `include`){where}"
                )
            )
            return
        self.issues.extend(issues)
        if root is None:
            return
        if not root.is_map:
            self.issues.append(
                root.issue(
                    "expected a mapping with `workflow`, `workflows` or `include`, "
                    f"got {kind_of(root)}"
                )
            )
            return
        substitute_vars(root, self.config, self.issues)
        check_expressions(root, self.issues)
        check_keys(root, FILE_KEYS, self.issues)
        own: list[WorkflowSpec] = []
        single, many = root.get("workflow"), root.get("workflows")
        if single is not None and many is not None:
            self.issues.append(many.key_issue("use either `workflow` or `workflows`, not both"))
        if single is None and many is None and root.get("include") is None:
            self.issues.append(
                root.issue("a workflow file needs `workflow`, `workflows` or `include`")
            )
        nodes: list[YamlNode] = []
        if single is not None:
            nodes.append(single)
        if many is not None:
            if not many.is_seq or not many.value:
                self.issues.append(
                    many.issue(f"expected a non-empty list of workflows, got {kind_of(many)}")
                )
            else:
                nodes.extend(many.value)
        for node in nodes:
            spec = parse_workflow(node, file, base_dir, self.registry, self.issues)
            if spec is not None:
                own.append(spec)
        self.specs.extend(own)
        include = root.get("include")
        if include is not None:
            if not include.is_seq:
                self.issues.append(
                    include.issue(f"expected a list of file paths, got {kind_of(include)}")
                )
                return
            for item in include.value:
                if not isinstance(item.value, str) or not item.value.strip():
                    self.issues.append(item.issue(f"expected a file path, got {kind_of(item)}"))
                    continue
                target = Path(item.value).expanduser()
                if not target.is_absolute():
                    target = base_dir / target
                self.load_file(target, chain, item)

    def finish(self) -> list[CompiledWorkflow]:
        seen: dict[tuple[str, int], WorkflowSpec] = {}
        for spec in self.specs:
            key = (spec.id, spec.version)
            if spec.id and key in seen:
                first = seen[key]
                self.issues.append(
                    spec.node.issue(
                        f"workflow {spec.id!r} version {spec.version} is already defined at "
                        f"{first.file}:{first.node.line}:{first.node.column}"
                    )
                )
            seen.setdefault(key, spec)
        if self.check_scripts:
            errors, warnings = check_scripts(self.specs)
            self.issues.extend(errors)
            self.warnings.extend(warnings)
        if self.issues:
            raise YamlWorkflowError(self.issues)
        return [compile_workflow(spec) for spec in self.specs]


MAX_FILE_BYTES = 4 * 1024 * 1024
"""Largest workflow file (or included file) read: 4 MiB."""


class _Unreadable(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def read_workflow_file(path: Path) -> str:
    """The text of a workflow file: a regular file (never a FIFO, device or directory) of
    at most :data:`MAX_FILE_BYTES`, in UTF-8; :class:`_Unreadable` says why not."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; checked right after.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _Unreadable(exc.strerror or type(exc).__name__) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Unreadable("not a regular file (FIFOs, devices and directories are refused)")
        if info.st_size > MAX_FILE_BYTES:
            raise _Unreadable(
                f"{info.st_size:,} bytes, more than the {MAX_FILE_BYTES:,} a workflow file may have"
            )
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _Unreadable(exc.strerror or type(exc).__name__) from exc
    finally:
        os.close(fd)
    if len(raw) > MAX_FILE_BYTES:
        raise _Unreadable(f"more than the {MAX_FILE_BYTES:,} bytes a workflow file may have")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Unreadable(f"not UTF-8 text (byte {exc.start})") from exc


def _is_workflow_file(root: YamlNode | None) -> bool:
    return root is not None and root.is_map and any(k in root.value for k in FILE_KEYS)


def _loader(
    config: Mapping[str, Any] | None,
    step_types: Mapping[str, StepType] | None,
    check_scripts: bool = False,
) -> _Load:
    return _Load(dict(config or {}), StepTypeRegistry(step_types), check_scripts)


def load_workflows(
    path: str | os.PathLike[str],
    config: Mapping[str, Any] | None = None,
    *,
    step_types: Mapping[str, StepType] | None = None,
    check_scripts: bool = False,
) -> list[CompiledWorkflow]:
    """Every workflow of the file at ``path`` and of the files it includes (the file's own
    first). ``config`` fills ``${{ var.NAME }}``; ``step_types`` adds or overrides step
    types by name; ``check_scripts`` also checks Deno scripts' syntax (when Deno is
    installed). Raises :class:`YamlWorkflowError` listing every problem."""
    load = _loader(config, step_types, check_scripts)
    load.load_file(Path(path), (), None)
    return load.finish()


def load_workflow(
    path: str | os.PathLike[str],
    config: Mapping[str, Any] | None = None,
    *,
    step_types: Mapping[str, StepType] | None = None,
) -> CompiledWorkflow:
    """The (first) workflow defined in the file at ``path``, after validating the whole
    file and its includes (register included sub-workflows with :func:`load_workflows`)."""
    compiled = load_workflows(path, config, step_types=step_types)
    own = [c for c in compiled if Path(c.file) == Path(path)]
    if not own:
        raise YamlWorkflowError(
            [
                Issue(
                    file=str(path),
                    line=1,
                    column=1,
                    key="workflow",
                    message="the file defines no workflow of its own (only includes)",
                )
            ]
        )
    first = own[0]
    return attrs.evolve(first, companions=tuple(c for c in compiled if c is not first))


def load_workflow_from_str(
    text: str,
    config: Mapping[str, Any] | None = None,
    *,
    file: str = "<string>",
    base_dir: str | os.PathLike[str] | None = None,
    step_types: Mapping[str, StepType] | None = None,
) -> list[CompiledWorkflow]:
    """Every workflow of YAML ``text`` and its includes (resolved against ``base_dir``,
    default the current directory); ``file`` names the text in messages."""
    load = _loader(config, step_types)
    load.load_text(text, file, Path(base_dir) if base_dir is not None else Path.cwd(), (file,))
    return load.finish()


def validate(
    source: str | os.PathLike[str],
    config: Mapping[str, Any] | None = None,
    *,
    step_types: Mapping[str, StepType] | None = None,
    warnings: list[Issue] | None = None,
) -> list[Issue]:
    """Every problem of a workflow file (a path, or a string naming an existing file) or
    of YAML text (any other string); an empty list when it is valid. Never raises for
    bad input.

    Beyond what loading checks, Deno scripts are parsed (when the Deno runtime is
    installed; a syntax error is an issue at its line and column). Problems that do not
    make the file invalid — a Deno step without the Deno runtime — are appended to
    ``warnings`` when a list is given."""
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and "\n" not in source and _is_file(source)
    ):
        load = _loader(config, step_types, check_scripts=True)
        load.load_file(Path(source), (), None)
    else:
        load = _loader(config, step_types, check_scripts=True)
        text = str(source)
        load.load_text(text, "<string>", Path.cwd(), ("<string>",))
    try:
        load.finish()
    except YamlWorkflowError as exc:
        return exc.issues
    finally:
        if warnings is not None:
            warnings.extend(load.warnings)
    return []


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False
