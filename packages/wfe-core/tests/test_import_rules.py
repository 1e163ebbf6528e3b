"""The import rules of DESIGN.md §1, checked on the sources of every distribution.

(a) No distribution imports another distribution's private module (``wfe.<x>._y`` or
    ``from wfe.<x> import _y``, at any depth) — what several need is public.
(b) ``wfe.core`` imports no other wfe distribution (not the host, YAML or any provider).
(c) A provider (and the neutral relational package ``wfe.sql``) imports no other provider;
    siblings share through ``wfe.sql``.

The checker reads ``packages/*/src/wfe/<module>/**/*.py`` with :mod:`ast` (no import
runs), so it sees imports inside functions, ``try`` and ``TYPE_CHECKING`` blocks, resolves
relative imports against the file's own package, and also reads
``importlib.import_module("…")`` / ``__import__("…")`` called with a literal name.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PACKAGES = REPO / "packages"

# Distributions that provide persistence, locks, queues or search. ``wfe.sql`` is not one:
# it is the neutral package the relational providers may share.
PROVIDERS = frozenset({"sqlite", "postgres", "valkey", "opensearch"})
SHARED_BY_PROVIDERS = frozenset({"sql"})

RULE_PRIVATE = "private"
RULE_CORE = "core-depends-on-nothing"
RULE_PROVIDER = "provider-imports-provider"

# Violations of rule (a) tolerated while a fix is under way, as (file relative to the
# repository, private module imported). Issue 10 emptied it; it may only shrink:
# test_every_allowed_violation_still_occurs fails once an entry is fixed. Never add one:
# make the needed name public instead.
ALLOWED_PRIVATE_IMPORTS: frozenset[tuple[str, str]] = frozenset()


@dataclasses.dataclass(frozen=True, order=True)
class Violation:
    """One import that breaks a rule, located by file and line."""

    path: str
    line: int
    rule: str
    imported: str
    statement: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.statement}  [{self.rule}: {self.imported}]"


class ImportRuleError(Exception):
    """A source file cannot be checked (syntax error, relative import beyond ``wfe``)."""


def _is_private(part: str) -> bool:
    # Dunder names (``__version__``) are conventional public attributes, not private modules.
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _resolve_relative(module: str | None, level: int, package: str, where: str) -> str:
    """The absolute name of ``from <level dots><module> import …`` inside ``package``."""
    parts = package.split(".")
    if level - 1 >= len(parts):
        raise ImportRuleError(f"{where}: relative import (level {level}) beyond {package!r}")
    base = parts[: len(parts) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _literal_import_target(node: ast.Call) -> str | None:
    """``importlib.import_module("x")`` / ``import_module("x")`` / ``__import__("x")``."""
    func = node.func
    if isinstance(func, ast.Attribute):
        name = func.attr
    elif isinstance(func, ast.Name):
        name = func.id
    else:
        return None
    if name not in {"import_module", "__import__"} or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        # A relative string needs the ``package`` argument: not a literal we can place.
        return None if first.value.startswith(".") else first.value
    return None


def imported_names(tree: ast.AST, package: str, where: str) -> Iterator[tuple[ast.AST, str]]:
    """Every (node, absolute dotted name) that ``tree`` imports, from anywhere in it.

    ``from m import a, b`` yields ``m.a`` and ``m.b`` (each may be a module or an
    attribute; both forms are checked the same way); ``from m import *`` yields ``m``.
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = (
                _resolve_relative(node.module, node.level, package, f"{where}:{node.lineno}")
                if node.level
                else node.module or ""
            )
            for alias in node.names:
                yield node, base if alias.name == "*" else f"{base}.{alias.name}"
        elif isinstance(node, ast.Call):
            target = _literal_import_target(node)
            if target is not None:
                yield node, target


def _rule_violations(own: str, name: str) -> Iterator[tuple[str, str]]:
    """(rule, what) pairs that importing ``name`` from distribution module ``own`` breaks."""
    parts = name.split(".")
    if parts[0] != "wfe" or len(parts) < 2:
        return
    other = parts[1]
    if other == own:
        return
    private_at = [i for i, part in enumerate(parts) if i >= 1 and _is_private(part)]
    if private_at:
        # Name the private module itself, not the attribute taken from it.
        yield RULE_PRIVATE, ".".join(parts[: private_at[-1] + 1])
    if own == "core":
        yield RULE_CORE, f"wfe.{other}"
    if (own in PROVIDERS or own in SHARED_BY_PROVIDERS) and other in PROVIDERS:
        yield RULE_PROVIDER, f"wfe.{other}"


def check_source(source: str, module: str, *, is_package: bool, path: str) -> list[Violation]:
    """The rule violations in one file's ``source``; ``module`` is its dotted name.

    ``is_package`` says whether the file is a package's ``__init__.py`` (relative imports
    then resolve against the module itself rather than its parent).
    """
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "wfe":
        raise ImportRuleError(f"{path}: {module!r} is not inside a wfe distribution")
    own = parts[1]
    package = module if is_package else ".".join(parts[:-1])
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        raise ImportRuleError(f"{path}:{exc.lineno}: cannot parse: {exc.msg}") from exc
    found: set[Violation] = set()
    for node, name in imported_names(tree, package, path):
        for rule, imported in _rule_violations(own, name):
            statement = ast.get_source_segment(source, node) or ast.unparse(node)
            line = getattr(node, "lineno", 0)
            found.add(Violation(path, line, rule, imported, " ".join(statement.split())))
    return sorted(found)


def source_files(root: Path) -> Iterator[tuple[Path, str, bool]]:
    """(file, dotted module name, is ``__init__``) for every file of
    ``root/packages/*/src/wfe/<module>/``."""
    for top in sorted(root.glob("packages/*/src/wfe/*/")):
        if not top.is_dir() or not top.name.isidentifier():
            continue
        for file in sorted(top.rglob("*.py")):
            relative = file.relative_to(top.parent).with_suffix("").parts
            is_package = relative[-1] == "__init__"
            names = relative[:-1] if is_package else relative
            yield file, ".".join(("wfe", *names)), is_package


def check_repository(root: Path) -> list[Violation]:
    """Every violation in the distributions of the repository at ``root``."""
    violations: list[Violation] = []
    for file, module, is_package in source_files(root):
        path = file.relative_to(root).as_posix()
        violations.extend(
            check_source(file.read_text(encoding="utf-8"), module, is_package=is_package, path=path)
        )
    return sorted(violations)


# ------------------------------------------------------------------ the repository itself


@pytest.fixture(scope="module")
def repository_violations() -> list[Violation]:
    if not (PACKAGES / "wfe-core" / "src" / "wfe" / "core").is_dir():
        pytest.skip(
            f"the distributions' sources are not at {PACKAGES} (wfe-core installed from a "
            "wheel?): the import rules are checked on a repository checkout"
        )
    return check_repository(REPO)


def test_the_checker_reads_every_distribution() -> None:
    """A wrong glob would make the rules pass vacuously."""
    if not PACKAGES.is_dir():
        pytest.skip(f"no repository checkout at {PACKAGES}")
    modules = {module.split(".")[1] for _, module, _ in source_files(REPO)}
    expected = {p.name for p in PACKAGES.glob("*/src/wfe/*") if p.is_dir()}
    assert "core" in modules
    assert modules == expected


def test_no_distribution_breaks_the_import_rules(repository_violations: list[Violation]) -> None:
    new = [
        v
        for v in repository_violations
        if not (v.rule == RULE_PRIVATE and (v.path, v.imported) in ALLOWED_PRIVATE_IMPORTS)
    ]
    assert not new, "imports that break DESIGN.md §1:\n" + "\n".join(map(str, new))


def test_every_allowed_violation_still_occurs(repository_violations: list[Violation]) -> None:
    """The allow-list only shrinks: a fixed entry must be deleted from it."""
    present = {(v.path, v.imported) for v in repository_violations if v.rule == RULE_PRIVATE}
    fixed = sorted(ALLOWED_PRIVATE_IMPORTS - present)
    assert not fixed, "fixed, delete from ALLOWED_PRIVATE_IMPORTS:\n" + "\n".join(
        f"{path}: {imported}" for path, imported in fixed
    )


# ------------------------------------------------------------------ the checker, on samples


def _check(source: str, module: str = "wfe.host._host", *, is_package: bool = False) -> set[str]:
    violations = check_source(source, module, is_package=is_package, path="x.py")
    return {f"{v.line}:{v.rule}:{v.imported}" for v in violations}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import wfe.core._executor\n", "1:private:wfe.core._executor"),
        ("import wfe.core._executor._outcomes as o\n", "1:private:wfe.core._executor._outcomes"),
        ("from wfe.core._models import WorkflowInstance\n", "1:private:wfe.core._models"),
        ("from wfe.core import _serialization\n", "1:private:wfe.core._serialization"),
        ("from wfe.core.testing import _samples\n", "1:private:wfe.core.testing._samples"),
        ("from wfe.core.testing._samples import x\n", "1:private:wfe.core.testing._samples"),
        ("from ..core import _telemetry\n", "1:private:wfe.core._telemetry"),
        ("from ...wfe.core._models import x\n", None),
        ("def f():\n    from wfe.core._errors import E\n", "2:private:wfe.core._errors"),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import wfe.sqlite._db\n",
            "3:private:wfe.sqlite._db",
        ),
        ("try:\n    import wfe.yaml._x\nexcept ImportError:\n    pass\n", "2:private:wfe.yaml._x"),
        ("import importlib\nimportlib.import_module('wfe.core._run')\n", "2:private:wfe.core._run"),
    ],
)
def test_private_imports_of_another_distribution_are_caught(
    source: str, expected: str | None
) -> None:
    if expected is None:
        with pytest.raises(ImportRuleError, match="beyond"):
            _check(source)
    else:
        assert _check(source) == {expected}


@pytest.mark.parametrize(
    "source",
    [
        "from wfe.core import WorkflowBuilder, serialization\n",
        "import wfe.core.serialization\n",
        "from wfe.core.testing import PersistenceContract\n",
        "from wfe.core import __version__\n",
        "from wfe import core\n",
        "import wfe\n",
        "from . import _cli\n",
        "from ._dispatch import Dispatcher\n",
        "import wfe.host._dispatch\n",
        "from wfe.host._registry import Registry\n",
        "import _thread\nfrom os import _exit\n",
        "importlib.import_module('.x', package='wfe.core')\n",
    ],
)
def test_public_and_own_private_imports_pass(source: str) -> None:
    assert _check(source) == set()


def test_relative_imports_resolve_against_the_file_or_its_package() -> None:
    # In a package's __init__, "." is the package itself; in a module, its parent.
    assert _check("from ._y import z\n", "wfe.core", is_package=True) == set()
    assert _check("from .._x import z\n", "wfe.host.sub", is_package=True) == set()
    assert _check("from .._x import z\n", "wfe.host.sub._m") == set()
    assert _check("from ...core._x import z\n", "wfe.host.sub._m") == {"1:private:wfe.core._x"}
    assert _check("from .. import core\n", "wfe.sqlite._store") == set()


@pytest.mark.parametrize(
    "source",
    [
        "import wfe.host\n",
        "from wfe.yaml import load_workflow\n",
        "from wfe import sqlite\n",
        "import wfe.postgres\n",
        "from wfe.valkey import ValkeyQueue\n",
        "import wfe.opensearch\n",
        "import wfe.sql\n",
        "def f():\n    from ... import host\n",
    ],
)
def test_core_importing_another_distribution_is_caught(source: str) -> None:
    found = _check(source, "wfe.core._executor._run")
    assert any(":core-depends-on-nothing:wfe." in f for f in found), found


def test_core_may_import_itself_and_third_parties() -> None:
    source = "import attrs\nimport trio\nfrom wfe.core import _models\nfrom .. import _step\n"
    assert _check(source, "wfe.core._executor._run") == set()


@pytest.mark.parametrize("own", sorted(PROVIDERS | SHARED_BY_PROVIDERS))
def test_a_provider_importing_another_provider_is_caught(own: str) -> None:
    other = next(p for p in sorted(PROVIDERS) if p != own)
    found = _check(f"from wfe.{other} import Store\n", f"wfe.{own}._store")
    assert found == {f"1:provider-imports-provider:wfe.{other}"}
    found = _check(f"from ...{other} import Store\n", f"wfe.{own}.sub._store")
    assert found == {f"1:provider-imports-provider:wfe.{other}"}


def test_providers_may_share_the_neutral_package_and_import_core() -> None:
    source = "from wfe.sql import schema\nfrom wfe.core import serialization\nimport wfe.sqlite\n"
    assert _check(source, "wfe.sqlite._persistence") == set()
    assert _check("from wfe.sqlite import SqliteStore\n", "wfe.host._registry") == set()


def test_one_statement_breaking_two_rules_is_reported_under_both() -> None:
    found = _check("from wfe.postgres._db import x\n", "wfe.sqlite._store")
    assert found == {"1:private:wfe.postgres._db", "1:provider-imports-provider:wfe.postgres"}


def test_a_violation_reports_file_line_and_statement() -> None:
    (violation,) = check_source(
        "import os\n\nfrom wfe.core._models import (\n    A,\n    B,\n)\n",
        "wfe.sqlite._store",
        is_package=False,
        path="packages/wfe-sqlite/src/wfe/sqlite/_store.py",
    )
    assert str(violation) == (
        "packages/wfe-sqlite/src/wfe/sqlite/_store.py:3: "
        "from wfe.core._models import ( A, B, )  [private: wfe.core._models]"
    )


def test_unparsable_source_names_the_file() -> None:
    with pytest.raises(ImportRuleError, match=r"bad\.py:1: cannot parse"):
        check_source("def (:\n", "wfe.core._x", is_package=False, path="bad.py")


def test_source_files_names_modules_and_packages(tmp_path: Path) -> None:
    pkg = tmp_path / "packages" / "wfe-demo" / "src" / "wfe" / "demo"
    (pkg / "sub").mkdir(parents=True)
    for rel in ("__init__.py", "_a.py", "sub/__init__.py", "sub/_b.py"):
        (pkg / rel).write_text("import wfe.core._models\n", encoding="utf-8")
    found = {(module, is_package) for _, module, is_package in source_files(tmp_path)}
    assert found == {
        ("wfe.demo", True),
        ("wfe.demo._a", False),
        ("wfe.demo.sub", True),
        ("wfe.demo.sub._b", False),
    }
    violations = check_repository(tmp_path)
    assert [v.path for v in violations] == [
        "packages/wfe-demo/src/wfe/demo/__init__.py",
        "packages/wfe-demo/src/wfe/demo/_a.py",
        "packages/wfe-demo/src/wfe/demo/sub/__init__.py",
        "packages/wfe-demo/src/wfe/demo/sub/_b.py",
    ]
