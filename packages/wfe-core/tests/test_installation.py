"""Install hints name a command that works where wfe was installed from."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from wfe.core.installation import checkout_root, install_command

CHECKOUT = Path(__file__).resolve().parents[3]
DISTRIBUTIONS = ["wfe-core", "wfe", "wfe-yaml", "wfe-sqlite", "wfe-postgres", "wfe-valkey"]
DISTRIBUTIONS += ["wfe-opensearch"]


def hint_in(
    site: Path | None, *, cwd: Path, path: str | None = None, requirement: str = "wfe[yaml]"
) -> str:
    """install_command(requirement) in a fresh interpreter; ``site`` goes first on sys.path."""
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    if path is not None:
        env["PATH"] = path
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom wfe.core.installation import install_command\n"
            "print(install_command(sys.argv[1]))",
            requirement,
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def fake_site(tmp_path: Path, direct_url: dict[str, object] | None) -> Path:
    """A directory of dist-info records for every wfe distribution, found before the real
    ones: importlib.metadata reads these instead."""
    site = tmp_path / "site"
    for name in DISTRIBUTIONS:
        info = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.4\nName: {name}\nVersion: 0.1.0\n")
        if direct_url is not None:
            (info / "direct_url.json").write_text(json.dumps(direct_url))
    return site


def test_this_checkout_is_found_from_its_install_record() -> None:
    # The development environment and the nox sessions install from packages/.
    assert checkout_root() == CHECKOUT


def test_from_the_checkout_root_the_hint_is_relative(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CHECKOUT)
    command = install_command("wfe-yaml[deno]")
    build, install = command.split(" && ")
    assert build == "python3 tools/dev.py wheelhouse"
    assert install.endswith(" --find-links dist 'wfe-yaml[deno]'")


def test_elsewhere_the_hint_names_the_checkout(tmp_path: Path) -> None:
    command = hint_in(None, cwd=tmp_path)
    build, install = command.split(" && ")
    assert shlex.split(build) == ["python3", str(CHECKOUT / "tools" / "dev.py"), "wheelhouse"]
    assert shlex.split(install)[-3:] == ["--find-links", str(CHECKOUT / "dist"), "wfe[yaml]"]


def test_installed_from_a_wheelhouse_or_an_index_the_hint_is_plain(tmp_path: Path) -> None:
    # No direct_url.json: what pip and uv write for an install by name.
    command = hint_in(fake_site(tmp_path, None), cwd=tmp_path)
    assert "dev.py" not in command
    assert "--find-links" not in command
    words = shlex.split(command)
    assert "install" in words
    assert words[-1] == "wfe[yaml]", command


def test_a_directory_that_is_not_a_checkout_gives_the_plain_hint(tmp_path: Path) -> None:
    elsewhere = tmp_path / "src" / "wfe-core"
    elsewhere.mkdir(parents=True)
    record = {"url": elsewhere.as_uri(), "dir_info": {}}
    command = hint_in(fake_site(tmp_path, record), cwd=tmp_path)
    assert "dev.py" not in command


def test_another_checkout_is_named_with_its_own_wheelhouse(tmp_path: Path) -> None:
    other = tmp_path / "my clone"
    (other / "packages" / "wfe-core").mkdir(parents=True)
    (other / "tools").mkdir()
    (other / "tools" / "dev.py").write_text("")
    record = {"url": (other / "packages" / "wfe-core").as_uri(), "dir_info": {}}
    outside = tmp_path / "outside"
    outside.mkdir()
    command = hint_in(fake_site(tmp_path, record), cwd=outside)
    build, install = command.split(" && ")
    # Absolute from outside the checkout, and quoted for the shell: the path has a space.
    assert shlex.split(build)[1] == str(other / "tools" / "dev.py")
    assert shlex.split(install)[-2] == str(other / "dist")


def test_the_installer_is_this_interpreters(tmp_path: Path) -> None:
    bindir = Path(sys.executable).parent
    with_pip = (bindir / "pip").exists()
    on_path = hint_in(None, cwd=tmp_path, path=f"{bindir}{os.pathsep}/usr/bin:/bin")
    off_path = hint_in(None, cwd=tmp_path, path="/nonexistent")
    install_on, install_off = on_path.split(" && ")[1], off_path.split(" && ")[1]
    if with_pip:
        assert install_on.startswith("pip install ")
        # A pip on PATH that is not this interpreter's would install elsewhere.
        assert shlex.split(install_off)[:4] == [sys.executable, "-m", "pip", "install"]
    else:
        # A venv made by uv has no pip.
        assert shlex.split(install_on)[:5] == ["uv", "pip", "install", "--python", sys.executable]
