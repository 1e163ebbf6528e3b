#!/usr/bin/env python3
"""Bootstrap and everyday commands for the wfe repository (stdlib only, Python 3.11+).

    python3 tools/dev.py demo        # set up .venv, run the example pipeline end to end
    python3 tools/dev.py test [ARGS] # set up .venv, run the whole test suite (ARGS go to pytest)
    python3 tools/dev.py lint        # ruff check + ruff format --check
    python3 tools/dev.py typecheck   # mypy --strict on every package

The first run creates ``.venv`` in the repository root, installs uv into it, and lets uv
install all seven workspace packages (editable) plus the development tools. Later runs
only re-sync, which takes well under a second when nothing changed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
PACKAGES = sorted(p.name for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists())


def log(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def run(cmd: list[str], env: dict[str, str] | None = None, check: bool = True) -> int:
    result = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
    if check and result.returncode != 0:
        log(f"failed ({result.returncode}): {' '.join(cmd)}")
        raise SystemExit(result.returncode)
    return result.returncode


def bootstrap() -> None:
    """Create .venv if needed and sync every workspace package into it."""
    if sys.version_info < (3, 11):
        raise SystemExit("wfe needs Python 3.11 or newer")
    if not PY.exists():
        log(f"creating {VENV.relative_to(ROOT)} with {sys.executable}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    uv = BIN / "uv"
    if not uv.exists():
        log("installing uv into the venv")
        run([str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "uv"])
    env = dict(os.environ)
    env.update(
        UV_PROJECT_ENVIRONMENT=str(VENV),
        UV_PYTHON_DOWNLOADS="never",
        UV_PYTHON=str(PY),
        VIRTUAL_ENV=str(VENV),
    )
    log("syncing the workspace (all packages editable + dev tools)")
    run([str(uv), "sync", "--quiet", "--all-packages"], env=env)


def demo() -> None:
    bootstrap()
    pipeline = ROOT / "examples" / "ci-pipeline.yaml"
    log(f"running {pipeline.relative_to(ROOT)} on the embedded SQLite store")
    raise SystemExit(run([str(BIN / "wfe"), "run", str(pipeline)], check=False))


def test(args: list[str]) -> None:
    bootstrap()
    log("running the whole test suite")
    code = run([str(BIN / "pytest"), "packages", *args], check=False)
    raise SystemExit(code)


def lint() -> None:
    bootstrap()
    run([str(BIN / "ruff"), "check", "."])
    run([str(BIN / "ruff"), "format", "--check", "."])


def typecheck() -> None:
    bootstrap()
    failed = 0
    for name in PACKAGES:
        src = ROOT / "packages" / name / "src"
        modules = sorted(p.name for p in (src / "wfe").iterdir() if p.is_dir())
        paths = os.pathsep.join(str(ROOT / "packages" / p / "src") for p in PACKAGES)
        env = dict(os.environ, MYPYPATH=paths)
        cmd = [str(BIN / "mypy"), "--strict"]
        for module in modules:
            cmd += ["-p", f"wfe.{module}"]
        log(f"mypy --strict {name}")
        failed |= run(cmd, env=env, check=False)
    raise SystemExit(failed)


def main() -> None:
    commands = {"demo", "test", "lint", "typecheck", "setup"}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        raise SystemExit(2)
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "demo":
        demo()
    elif command == "test":
        test(rest)
    elif command == "lint":
        lint()
    elif command == "typecheck":
        typecheck()
    else:
        bootstrap()


if __name__ == "__main__":
    main()
