#!/usr/bin/env python3
"""Bootstrap a development environment and run the demo, the tests or the linters.

    python3 tools/dev.py demo        # set up .venv, then run the example workflow
    python3 tools/dev.py test [ARGS] # set up .venv, then run every package's tests
    python3 tools/dev.py lint        # ruff check + ruff format --check
    python3 tools/dev.py typecheck   # mypy --strict on each package's sources
    python3 tools/dev.py wheelhouse [DIR] [--check]
                                     # build every sdist and wheel into DIR (dist/)

Install any combination from a checkout, extras resolved against the local builds:

    python3 tools/dev.py wheelhouse
    pip install --find-links dist 'wfe[all]'

Standard library only, so it runs with any Python 3.11+ before anything is installed.
The environment is ``.venv`` at the repository root: created with ``python -m venv`` if
missing, given ``uv`` with pip, then ``uv sync`` installs all seven workspace
distributions editable plus the dev tools. Re-running is quick: an existing venv is
reused and a warm ``uv sync`` takes well under a second.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
EXE = ".exe" if os.name == "nt" else ""
PYTHON = BIN / f"python{EXE}"
UV = BIN / f"uv{EXE}"
YAML_EXAMPLE = ROOT / "examples" / "ci-pipeline.yaml"
PY_EXAMPLE = ROOT / "examples" / "hello.py"
# Where `wheelhouse` builds by default (ignored by git).
DIST = ROOT / "dist"

# pytest's exit code when it collected no test at all.
NO_TESTS_COLLECTED = 5


class DevError(Exception):
    """A bootstrap step failed; the message says which and what to do."""


def log(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def run(cmd: Sequence[str | Path], *, env: dict[str, str] | None = None) -> int:
    """Run a command from the repository root and return its exit code."""
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)


def check(cmd: Sequence[str | Path], what: str, *, env: dict[str, str] | None = None) -> None:
    code = run(cmd, env=env)
    if code != 0:
        raise DevError(f"{what} failed (exit code {code}): {' '.join(str(c) for c in cmd)}")


def venv_env() -> dict[str, str]:
    """The environment for tools inside .venv: uv targets it, and never downloads Pythons."""
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = str(VENV)
    env["UV_PROJECT_ENVIRONMENT"] = str(VENV)
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONHOME", None)
    return env


def ensure_uv() -> None:
    """Create .venv if missing and make sure it holds uv (nothing else is installed)."""
    if not PYTHON.exists():
        log(f"creating {VENV.relative_to(ROOT)} with {sys.executable}")
        check([sys.executable, "-m", "venv", VENV], "creating the virtual environment")
    if not UV.exists():
        # A venv made by uv itself has no pip: give it one first.
        if run([PYTHON, "-m", "pip", "--version"]) != 0:
            check([PYTHON, "-m", "ensurepip", "--upgrade"], "installing pip into .venv")
        log("installing uv into .venv")
        check([PYTHON, "-m", "pip", "install", "--quiet", "uv"], "pip install uv")


def bootstrap() -> None:
    """Create or update .venv so every workspace distribution and dev tool is installed."""
    started = time.monotonic()
    ensure_uv()
    # --inexact keeps pip and uv themselves, which the lock file does not list.
    check(
        [UV, "sync", "--inexact", "--python", PYTHON],
        "uv sync (installing the workspace)",
        env=venv_env(),
    )
    log(f"environment ready in {time.monotonic() - started:.1f}s")


def cli_ready() -> bool:
    """Whether the ``wfe`` command and the YAML loader are installed and import."""
    if not (BIN / f"wfe{EXE}").exists():
        return False
    probe = (
        "import importlib.metadata as m, wfe.yaml\n"
        "eps = m.entry_points(group='console_scripts', name='wfe')\n"
        "assert eps, 'no wfe command'\n"
        "for ep in eps: ep.load()\n"
    )
    result = subprocess.run(
        [str(PYTHON), "-c", probe], cwd=ROOT, env=venv_env(), capture_output=True, check=False
    )
    return result.returncode == 0


def cmd_demo(extra: list[str]) -> int:
    bootstrap()
    if YAML_EXAMPLE.exists() and cli_ready():
        log(f"running wfe run {YAML_EXAMPLE.relative_to(ROOT)}")
        cmd: list[str | Path] = [
            BIN / f"wfe{EXE}",
            "run",
            YAML_EXAMPLE.relative_to(ROOT),
            "--set",
            "branch=main",
            *extra,
        ]
    else:
        log(f"running {PY_EXAMPLE.relative_to(ROOT)}")
        cmd = [PYTHON, PY_EXAMPLE.relative_to(ROOT), *extra]
    return run(cmd, env=venv_env())


def test_dirs() -> list[Path]:
    """Every package's tests, then the tests of the tools under tools/."""
    packages = sorted(p for p in (ROOT / "packages").glob("*/tests") if p.is_dir())
    return [*packages, ROOT / "tools" / "tests"]


def names_a_path(args: list[str]) -> bool:
    """Whether the extra pytest arguments already name what to collect."""
    return any(not a.startswith("-") and (ROOT / a.split("::")[0]).exists() for a in args)


def junit_counts(report: Path) -> tuple[int, int, int] | None:
    """(passed, failed, skipped) from a pytest JUnit XML report; failed counts errors."""
    try:
        root = ET.parse(report).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = failed = skipped = 0
    for suite in suites:
        total += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    return total - failed - skipped, failed, skipped


def cmd_test(extra: list[str]) -> int:
    bootstrap()
    targets = [] if names_a_path(extra) else [d.relative_to(ROOT) for d in test_dirs()]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wfe-dev-") as tmp:
        report = Path(tmp) / "junit.xml"
        # One pytest over every package: --import-mode=importlib (root pyproject) keeps
        # same-named test files and conftests of different packages apart.
        env = venv_env()
        # The suite starts hundreds of Python processes (the CLI, crash and campaign
        # workers): without cached bytecode each compiles every module it imports
        # again (~2 s apiece on a slow machine). Environments that forbid writing it
        # would make the suite minutes slower, so its processes may write it.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        code = run([PYTHON, "-m", "pytest", f"--junitxml={report}", *targets, *extra], env=env)
        counts = junit_counts(report)
    elapsed = time.monotonic() - started
    if counts is None:
        print(f"pytest exited with code {code} and wrote no report", flush=True)
        return code or 1
    passed, failed, skipped = counts
    log(f"tests took {elapsed:.1f}s (pytest exit code {code})")
    print(f"{passed} passed, {failed} failed, {skipped} skipped", flush=True)
    if code == NO_TESTS_COLLECTED or passed + failed == 0:
        print("error: no test ran", file=sys.stderr)
        return 1
    if code == 0 and failed:
        return 1
    return code


def cmd_lint(extra: list[str]) -> int:
    bootstrap()
    checked = run([BIN / f"ruff{EXE}", "check", ".", *extra], env=venv_env())
    # Markdown code blocks keep DESIGN.md's indented builder chains: format Python files only.
    formatted = run(
        [BIN / f"ruff{EXE}", "format", "--check", "--extend-exclude", "*.md", ".", *extra],
        env=venv_env(),
    )
    return checked or formatted


def cmd_typecheck(extra: list[str]) -> int:
    bootstrap()
    sources = sorted((ROOT / "packages").glob("*/src"))
    env = venv_env()
    # Every source root on MYPYPATH: the namespace package spans them (explicit_package_bases).
    env["MYPYPATH"] = os.pathsep.join(str(src) for src in sources)
    failures = []
    for src in sources:
        modules = sorted(p.name for p in (src / "wfe").iterdir() if p.is_dir())
        log(f"mypy --strict {src.parent.name}")
        args = [arg for module in modules for arg in ("-p", f"wfe.{module}")]
        if run([BIN / f"mypy{EXE}", "--strict", *args, *extra], env=env):
            failures.append(src.parent.name)
    if failures:
        print(f"mypy found errors in: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


def cmd_wheelhouse(extra: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tools/dev.py wheelhouse")
    parser.add_argument("dir", nargs="?", default=str(DIST), help="output directory (dist/)")
    parser.add_argument("--check", action="store_true", help="then run twine check --strict")
    options = parser.parse_args(extra)
    out = Path(options.dir).resolve()
    # --check needs twine from the dev tools; building alone needs only uv.
    if options.check:
        bootstrap()
    else:
        ensure_uv()
    built = build_wheelhouse(out)
    if options.check:
        check([BIN / f"twine{EXE}", "check", "--strict", *built], "twine check", env=venv_env())
    shown = os.path.relpath(out) if out.is_relative_to(Path.cwd()) else str(out)
    log(f"{len(built)} files in {shown}; install any combination with, for example:")
    print(f"pip install --find-links {shlex.quote(shown)} 'wfe[all]'", flush=True)
    return 0


def distribution_names() -> list[str]:
    """The project names of the distributions under packages/."""
    import tomllib  # here: the module must import on old Pythons to say it needs 3.11

    return sorted(
        tomllib.loads(p.read_text())["project"]["name"]
        for p in (ROOT / "packages").glob("*/pyproject.toml")
    )


def build_wheelhouse(out: Path) -> list[Path]:
    """Build every distribution's sdist and wheel into ``out``; returns the files.

    Earlier builds of these distributions in ``out`` are removed first, so the
    directory never offers a stale version next to the fresh one.
    """
    out.mkdir(parents=True, exist_ok=True)
    prefixes = tuple(f"{name.replace('-', '_')}-" for name in distribution_names())
    for old in out.iterdir():
        if old.name.startswith(prefixes) and old.name.endswith((".whl", ".tar.gz")):
            old.unlink()
    check(
        [UV, "build", "--all-packages", "--no-build-logs", "--out-dir", out],
        "uv build (every distribution)",
        env=venv_env(),
    )
    return sorted(p for p in out.iterdir() if p.name.startswith(prefixes))


COMMANDS = {
    "demo": cmd_demo,
    "test": cmd_test,
    "lint": cmd_lint,
    "typecheck": cmd_typecheck,
    "wheelhouse": cmd_wheelhouse,
}


def main(argv: list[str] | None = None) -> int:
    # This script may be started by an older python3 than the project supports.
    if sys.version_info < (3, 11):  # noqa: UP036
        print("wfe needs Python 3.11 or newer; run this script with it", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(
        prog="tools/dev.py", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="passed on to the tool")
    options = parser.parse_args(argv)
    try:
        return COMMANDS[options.command](list(options.args))
    except DevError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
