"""tools/dists.py keeps the distributions in step with [tool.wfe.release]."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).with_name("uv")


def run_dists(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "tools" / "dists.py"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_checkout_is_in_step() -> None:
    result = run_dists(ROOT, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "distributions in step at" in result.stdout


def test_uv_lock_matches_the_pyproject_files() -> None:
    if not UV.exists():
        pytest.skip(f"no uv next to {sys.executable}")
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    result = subprocess.run(
        [str(UV), "lock", "--check", "--offline"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the files tools/dists.py reads and writes."""
    (tmp_path / "tools").mkdir()
    shutil.copy(ROOT / "tools" / "dists.py", tmp_path / "tools")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copy(ROOT / "LICENSE", tmp_path)
    for pyproject in (ROOT / "packages").glob("*/pyproject.toml"):
        target = tmp_path / "packages" / pyproject.parent.name
        target.mkdir(parents=True)
        shutil.copy(pyproject, target)
        shutil.copy(pyproject.parent / "LICENSE", target)
    return tmp_path


def set_release_version(root: Path, version: str) -> None:
    path = root / "pyproject.toml"
    text = path.read_text()
    current = tomllib.loads(text)["tool"]["wfe"]["release"]["version"]
    path.write_text(
        text.replace(f'version = "{current}"\npythons', f'version = "{version}"\npythons')
    )


def test_a_new_version_is_drift_until_synced(tree: Path) -> None:
    set_release_version(tree, "0.2.0")
    drifted = run_dists(tree, "check")
    assert drifted.returncode == 1
    assert "packages/wfe-core/pyproject.toml: project.version is '0.1.0', want '0.2.0'" in (
        drifted.stdout
    )
    assert "want 'wfe-yaml[deno]>=0.2.0,<0.3'" in drifted.stdout
    before = (tree / "packages" / "wfe" / "pyproject.toml").read_text()

    synced = run_dists(tree, "sync")
    assert synced.returncode == 0, synced.stderr
    assert run_dists(tree, "check").returncode == 0

    after = (tree / "packages" / "wfe" / "pyproject.toml").read_text()
    project = tomllib.loads(after)["project"]
    assert project["version"] == "0.2.0"
    assert project["dependencies"][0] == "wfe-core>=0.2.0,<0.3"
    assert project["optional-dependencies"]["all"][4] == "wfe-yaml[deno]>=0.2.0,<0.3"
    assert project["optional-dependencies"]["otel"] == ["opentelemetry-sdk>=1.20"]
    # Only the version and the sibling ranges changed: the layout is kept.
    changed = [
        (old, new)
        for old, new in zip(before.splitlines(), after.splitlines(), strict=True)
        if old != new
    ]
    assert all("0.2.0" in new for _, new in changed), changed


def test_after_1_0_siblings_stay_within_the_major(tree: Path) -> None:
    set_release_version(tree, "1.4.2")
    assert run_dists(tree, "sync").returncode == 0
    project = tomllib.loads((tree / "packages" / "wfe-sqlite" / "pyproject.toml").read_text())
    assert project["project"]["dependencies"][0] == "wfe-core>=1.4.2,<2"


def test_a_changed_python_list_reaches_classifiers_and_requires_python(tree: Path) -> None:
    path = tree / "pyproject.toml"
    path.write_text(path.read_text().replace('pythons = ["3.11", ', "pythons = ["))
    assert run_dists(tree, "sync").returncode == 0
    project = tomllib.loads((tree / "packages" / "wfe-yaml" / "pyproject.toml").read_text())
    assert project["project"]["requires-python"] == ">=3.12"
    assert "Programming Language :: Python :: 3.11" not in project["project"]["classifiers"]


def test_an_edited_licence_copy_is_drift(tree: Path) -> None:
    (tree / "packages" / "wfe-valkey" / "LICENSE").write_text("all rights reserved\n")
    drifted = run_dists(tree, "check")
    assert drifted.returncode == 1
    assert "packages/wfe-valkey/LICENSE: not a copy of the root LICENSE" in drifted.stdout
    assert run_dists(tree, "sync").returncode == 0
    assert (tree / "packages" / "wfe-valkey" / "LICENSE").read_bytes() == (
        tree / "LICENSE"
    ).read_bytes()


def test_a_bad_version_is_refused_with_where(tree: Path) -> None:
    set_release_version(tree, "one")
    result = run_dists(tree, "check")
    assert result.returncode == 1
    assert "pyproject.toml: [tool.wfe.release] version 'one' is not X.Y.Z" in result.stderr


def test_a_release_tag_must_name_the_version(tree: Path) -> None:
    set_release_version(tree, "0.3.1")
    assert run_dists(tree, "sync").returncode == 0
    assert run_dists(tree, "check", "--tag", "v0.3.1").returncode == 0
    wrong = run_dists(tree, "check", "--tag", "v0.3.2")
    assert wrong.returncode == 1
    assert "tag 'v0.3.2' does not name version '0.3.1'" in wrong.stdout


def test_a_release_from_another_repository_is_refused(tree: Path) -> None:
    repository = tomllib.loads((tree / "pyproject.toml").read_text())["tool"]["wfe"]["release"][
        "repository"
    ]
    assert run_dists(tree, "check", "--repository", repository + "/").returncode == 0
    fork = run_dists(tree, "check", "--repository", "https://github.com/someone/fork")
    assert fork.returncode == 1
    assert "but this is 'https://github.com/someone/fork'" in fork.stdout
