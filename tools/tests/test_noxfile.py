"""noxfile.py: `nox -l` shows the whole matrix, and a missing Python is never silent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOX = Path(sys.executable).with_name("nox")
RELEASE = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["wfe"]["release"]
DISTS = sorted(p.parent.name for p in (ROOT / "packages").glob("*/pyproject.toml"))

pytestmark = pytest.mark.skipif(not NOX.exists(), reason=f"no nox next to {sys.executable}")


def nox(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NOX), "-f", str(ROOT / "noxfile.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_nox_lists_every_python_distribution_and_resolution() -> None:
    listed = nox("-l", "--json")
    assert listed.returncode == 0, listed.stderr
    sessions = json.loads(listed.stdout)
    tests = {
        (s["python"], s["call_spec"]["dist"], s["call_spec"]["resolution"])
        for s in sessions
        if s["name"] == "tests"
    }
    assert tests == {
        (python, dist, resolution)
        for python in RELEASE["pythons"]
        for dist in DISTS
        for resolution in ("lowest-direct", "highest")
    }
    assert {"lint", "typecheck", "dists"} <= {s["name"] for s in sessions}


def without_python(version: str, tmp_path: Path) -> dict[str, str]:
    """An environment in which no ``python<version>`` can be found."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join([str(NOX.parent), "/usr/bin", "/bin"])
    env["PYENV_ROOT"] = str(tmp_path / "no-pyenv")
    env["UV_PYTHON_DOWNLOADS"] = "never"
    # uv looks for managed interpreters here: an empty directory has none.
    env["UV_PYTHON_INSTALL_DIR"] = str(tmp_path / "no-uv-pythons")
    return env


def test_a_missing_python_is_skipped_with_a_message(tmp_path: Path) -> None:
    missing = RELEASE["pythons"][-1]
    if Path(f"/usr/bin/python{missing}").exists():
        pytest.skip(f"/usr/bin has python{missing}: nothing is missing")
    session = f"tests-{missing}(dist='wfe-core', resolution='highest')"
    result = nox("-s", session, env=without_python(missing, tmp_path))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"Python interpreter {missing} not found" in output
    assert "skipped" in output


def test_on_ci_a_missing_python_fails(tmp_path: Path) -> None:
    missing = RELEASE["pythons"][-1]
    if Path(f"/usr/bin/python{missing}").exists():
        pytest.skip(f"/usr/bin has python{missing}: nothing is missing")
    env = without_python(missing, tmp_path)
    env["CI"] = "true"
    result = nox("-s", f"tests-{missing}(dist='wfe-core', resolution='highest')", env=env)
    assert result.returncode == 1
    assert f"Python interpreter {missing} not found" in result.stdout + result.stderr
