"""The pipeline keys of a workflow file: ``needs``, ``matrix``, ``env``,
``continue_on_error`` and ``artifacts`` on steps; ``env``, ``timeout`` and ``secrets``
on workflows. Each parser appends positioned issues and returns what it could read.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any

import attrs

from ._checks import expect_duration, expect_string, expect_string_map, kind_of
from ._errors import Issue
from ._interpolation import EXPRESSION, parse_expression, to_text
from ._nodes import YamlNode

MATRIX_OPTIONS = ("include", "exclude", "max_parallel", "fail_fast")
MAX_COMBINATIONS = 256
"""Most instances one matrix step may expand to (a typo in a list must not start
thousands of processes)."""
SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
MATRIX_HELP = (
    "a matrix: {AXIS: [values], ..., include: [maps], exclude: [maps], "
    "max_parallel: N, fail_fast: true|false}"
)
Scalar = str | int | float | bool


@attrs.frozen(kw_only=True)
class MatrixSpec:
    """A step's matrix: its combinations (in order) and how they run."""

    combinations: tuple[Mapping[str, Scalar], ...]
    axes: frozenset[str]
    max_parallel: int | None
    fail_fast: bool


@attrs.frozen(kw_only=True)
class ArtifactSpec:
    """A path a step leaves behind (relative to its working directory), by name."""

    name: str
    path: str
    node: YamlNode


def parse_needs(node: YamlNode | None, issues: list[Issue]) -> tuple[tuple[str, YamlNode], ...]:
    """``needs: [a, b]`` (or ``needs: a``): the names with their positions."""
    if node is None:
        return ()
    items = [node] if isinstance(node.value, str) else node.value if node.is_seq else None
    if items is None:
        issues.append(node.issue(f"expected a list of step names, got {kind_of(node)}"))
        return ()
    out: list[tuple[str, YamlNode]] = []
    seen: set[str] = set()
    for item in items:
        if not expect_string(item, issues, what="a step name (string)"):
            continue
        if item.value in seen:
            issues.append(item.issue(f"{item.value!r} is listed twice in `needs`"))
            continue
        seen.add(item.value)
        out.append((item.value, item))
    return tuple(out)


def _scalar(node: YamlNode, issues: list[Issue], what: str) -> bool:
    if node.is_scalar and node.value is not None and isinstance(node.value, Scalar):
        return True
    issues.append(node.issue(f"expected {what} (a string, number or bool), got {kind_of(node)}"))
    return False


def _entries(node: YamlNode | None, issues: list[Issue], key: str) -> list[dict[str, Scalar]]:
    if node is None:
        return []
    if not node.is_seq:
        issues.append(node.issue(f"expected a list of maps for `{key}`, got {kind_of(node)}"))
        return []
    out = []
    for item in node.value:
        if not item.is_map or not item.value:
            issues.append(item.issue(f"expected a non-empty map in `{key}`, got {kind_of(item)}"))
            continue
        entry: dict[str, Scalar] = {}
        for k, v in item.items():
            if _scalar(v, issues, f"a value of {k!r}"):
                entry[k] = v.value
        out.append(entry)
    return out


def parse_matrix(node: YamlNode | None, issues: list[Issue]) -> MatrixSpec | None:
    """A ``matrix:`` map, expanded as GitHub Actions does: the product of the axes,
    minus each combination matching an ``exclude`` entry; then each ``include`` entry
    extends the combinations it matches (on the axes it names) with its other keys, or
    is added as a combination of its own when it matches none."""
    if node is None:
        return None
    if not node.is_map or not node.value:
        issues.append(node.issue(f"expected {MATRIX_HELP}, got {kind_of(node)}"))
        return None
    before = len(issues)
    axes: dict[str, list[Scalar]] = {}
    for key, child in node.items():
        if key in MATRIX_OPTIONS:
            continue
        if not ENV_NAME.match(key):
            issues.append(child.key_issue(f"{key!r} is not a valid matrix axis name"))
            continue
        if not child.is_seq or not child.value:
            issues.append(
                child.issue(
                    f"expected a non-empty list of values for axis {key!r}, got {kind_of(child)}"
                )
            )
            continue
        values = [v.value for v in child.value if _scalar(v, issues, f"a value of {key!r}")]
        axes[key] = list(dict.fromkeys(values))
    include = _entries(node.get("include"), issues, "include")
    exclude = _entries(node.get("exclude"), issues, "exclude")
    exclude_node = node.get("exclude")
    if exclude_node is not None and exclude_node.is_seq:
        for item in exclude_node.value:
            unknown = [k for k in item.items() if k[0] not in axes]
            if unknown:
                issues.append(
                    unknown[0][1].key_issue(
                        f"exclude names no axis {unknown[0][0]!r} "
                        f"(axes: {', '.join(axes) or 'none'})"
                    )
                )
    max_parallel: int | None = None
    mp = node.get("max_parallel")
    if mp is not None:
        if not isinstance(mp.value, int) or isinstance(mp.value, bool) or mp.value < 1:
            issues.append(mp.issue(f"expected a positive integer, got {kind_of(mp)}"))
        else:
            max_parallel = mp.value
    fail_fast = True
    ff = node.get("fail_fast")
    if ff is not None:
        if not isinstance(ff.value, bool):
            issues.append(ff.issue(f"expected true or false, got {kind_of(ff)}"))
        else:
            fail_fast = ff.value
    if not axes and not include and all(k in MATRIX_OPTIONS for k in node.value):
        issues.append(node.issue(f"a matrix needs at least one axis; expected {MATRIX_HELP}"))
        return None
    if len(issues) > before:
        return None
    total = 1
    for values in axes.values():
        total *= len(values)
    if total > MAX_COMBINATIONS * 4:
        issues.append(
            node.issue(
                f"the matrix has {total:,} combinations; at most {MAX_COMBINATIONS} are allowed"
            )
        )
        return None
    combos: list[dict[str, Scalar]] = []
    if axes:
        for picked in itertools.product(*axes.values()):
            combo = dict(zip(axes, picked, strict=True))
            if any(all(combo.get(k) == v for k, v in e.items()) for e in exclude):
                continue
            combos.append(combo)
    for entry in include:
        matched = False
        for combo in combos:
            shared = {k: v for k, v in entry.items() if k in axes}
            if all(combo.get(k) == v for k, v in shared.items()) and all(
                k in axes or k not in combo or combo[k] == v for k, v in entry.items()
            ):
                combo.update({k: v for k, v in entry.items() if k not in axes})
                matched = True
        if not matched:
            combos.append(dict(entry))
    unique: dict[str, dict[str, Scalar]] = {}
    for combo in combos:
        unique.setdefault(combination_label(combo), combo)
    if not unique:
        issues.append(node.issue("the matrix has no combination left after `exclude`"))
        return None
    if len(unique) > MAX_COMBINATIONS:
        issues.append(
            node.issue(
                f"the matrix has {len(unique):,} combinations; at most "
                f"{MAX_COMBINATIONS} are allowed"
            )
        )
        return None
    names = {k for c in unique.values() for k in c}
    return MatrixSpec(
        combinations=tuple(unique.values()),
        axes=frozenset(names),
        max_parallel=max_parallel,
        fail_fast=fail_fast,
    )


def combination_label(combo: Mapping[str, Scalar]) -> str:
    """How one combination reads in a step name: ``3.11, linux``."""
    return ", ".join(to_text(v) for v in combo.values())


def unit_name(step: str, combo: Mapping[str, Scalar] | None) -> str:
    """The name of one instance of a step: ``test (3.11, linux)``, or ``step`` itself."""
    return step if combo is None else f"{step} ({combination_label(combo)})"


def parse_env(node: YamlNode | None, issues: list[Issue]) -> dict[str, str]:
    """``env: {NAME: value}``: values may hold ``${{ }}`` expressions (rendered per run)."""
    if node is None or not expect_string_map(node, issues, "environment variables"):
        return {}
    out: dict[str, str] = {}
    for key, child in node.items():
        if not ENV_NAME.match(key):
            issues.append(
                child.key_issue(
                    f"{key!r} is not a valid environment variable name "
                    "(letters, digits and _, not starting with a digit)"
                )
            )
            continue
        out[key] = child.value if isinstance(child.value, str) else to_text(child.value)
    return out


def parse_bool(node: YamlNode | None, issues: list[Issue]) -> bool:
    if node is None:
        return False
    if not isinstance(node.value, bool):
        issues.append(node.issue(f"expected true or false, got {kind_of(node)}"))
        return False
    return node.value


def parse_timeout(node: YamlNode | None, issues: list[Issue]) -> timedelta | None:
    return expect_duration(node, issues)


def parse_secrets(node: YamlNode | None, issues: list[Issue]) -> tuple[str, ...]:
    """``secrets: [NAME, ...]``: names of environment-variable form."""
    if node is None:
        return ()
    if not node.is_seq:
        issues.append(node.issue(f"expected a list of secret names, got {kind_of(node)}"))
        return ()
    out: list[str] = []
    for item in node.value:
        if not isinstance(item.value, str) or not SECRET_NAME.match(item.value):
            issues.append(
                item.issue(
                    "expected a secret name (letters, digits and _, not "
                    f"starting with a digit), got {kind_of(item)}"
                )
            )
        elif item.value in out:
            issues.append(item.issue(f"secret {item.value!r} is listed twice"))
        else:
            out.append(item.value)
    return tuple(out)


def parse_artifacts(node: YamlNode | None, issues: list[Issue]) -> tuple[ArtifactSpec, ...]:
    """``artifacts: [path, {name: N, path: P}]``: relative paths inside the working
    directory (no ``..``, not absolute); a plain path is named by its last part."""
    if node is None:
        return ()
    if not node.is_seq or not node.value:
        issues.append(node.issue(f"expected a non-empty list of paths, got {kind_of(node)}"))
        return ()
    out: list[ArtifactSpec] = []
    names: set[str] = set()
    for item in node.value:
        if item.is_map:
            path_node, name_node = item.get("path"), item.get("name")
            extra = [k for k in item.value if k not in ("path", "name")]
            if extra:
                issues.append(
                    item.value[extra[0]].key_issue(
                        f"unknown key {extra[0]!r} (expected one of: name, path)"
                    )
                )
            if path_node is None:
                issues.append(item.issue("an artifact needs `path`"))
                continue
        else:
            path_node, name_node = item, None
        if not expect_string(path_node, issues, what="a relative path (string)"):
            continue
        problem = artifact_path_problem(path_node.value)
        if problem is not None:
            issues.append(path_node.issue(problem))
            continue
        name = PurePosixPath(path_node.value).name
        if name_node is not None:
            if not expect_string(name_node, issues, what="an artifact name"):
                continue
            name = name_node.value
        if not ARTIFACT_NAME.match(name):
            issues.append(
                (name_node or path_node).issue(
                    f"{name!r} is not a valid artifact name (letters, digits, _ . -)"
                )
            )
            continue
        if name in names:
            issues.append((name_node or path_node).issue(f"artifact name {name!r} is used twice"))
            continue
        names.add(name)
        out.append(ArtifactSpec(name=name, path=path_node.value, node=path_node))
    return tuple(out)


def artifact_path_problem(path: str) -> str | None:
    """Why ``path`` cannot name an artifact (``None`` when it can)."""
    if "\0" in path or "${{" in path:
        return "an artifact path is a fixed relative path (no expressions, no NUL)"
    pure = PurePosixPath(path)
    if pure.is_absolute() or path.startswith("~"):
        return f"artifact path {path!r} must be relative to the step's working directory"
    if ".." in pure.parts:
        return f"artifact path {path!r} must not leave the working directory (`..`)"
    if pure.name in ("", "."):
        return f"artifact path {path!r} names no file or directory"
    return None


def expressions_in(node: YamlNode) -> list[tuple[str, tuple[Any, ...], YamlNode]]:
    """Every run-time expression under ``node``: ``(namespace, parts, node)``."""
    found: list[tuple[str, tuple[Any, ...], YamlNode]] = []
    if node.is_map or node.is_seq:
        children = node.value.values() if node.is_map else node.value
        for child in children:
            found.extend(expressions_in(child))
    elif isinstance(node.value, str) and "${{" in node.value:
        for m in EXPRESSION.finditer(node.value):
            parsed = parse_expression(m.group(1))
            if parsed is not None and parsed[0] != "var":
                found.append((parsed[0], parsed[1], node))
    return found


def check_namespaces(
    node: YamlNode,
    *,
    matrix: MatrixSpec | None,
    secrets: Sequence[str],
    issues: list[Issue],
) -> list[tuple[str, str, YamlNode]]:
    """Issues for ``${{ matrix.x }}`` outside a matrix (or naming no axis) and for
    undeclared ``${{ secrets.X }}``; returns the ``artifacts`` references
    ``(step, name, node)`` for the caller to check against the steps."""
    refs: list[tuple[str, str, YamlNode]] = []
    for namespace, parts, where in expressions_in(node):
        if namespace == "matrix":
            axis = str(parts[0])
            if matrix is None:
                issues.append(where.issue(f"`${{{{ matrix.{axis} }}}}`: this step has no `matrix`"))
            elif axis not in matrix.axes:
                issues.append(
                    where.issue(
                        f"`${{{{ matrix.{axis} }}}}`: the matrix has no "
                        f"axis {axis!r} (axes: {', '.join(sorted(matrix.axes))})"
                    )
                )
        elif namespace == "secrets":
            name = str(parts[0])
            if name not in secrets:
                declared = ", ".join(secrets) or "none"
                issues.append(
                    where.issue(
                        f"`${{{{ secrets.{name} }}}}`: secret {name!r} is not "
                        f"declared in the workflow's `secrets:` "
                        f"(declared: {declared})"
                    )
                )
        elif namespace == "artifacts":
            refs.append((str(parts[0]), str(parts[1]), where))
    return refs


def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle of ``graph`` (name → needs) as a path ``[a, b, a]``, if any."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        color[n] = GREY
        stack.append(n)
        for m in graph.get(n, ()):
            if m not in color:
                continue
            if color[m] == GREY:
                return [*stack[stack.index(m) :], m]
            if color[m] == WHITE:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        color[n] = BLACK
        return None

    for n in graph:
        if color[n] == WHITE:
            found = visit(n)
            if found:
                return found
    return None
