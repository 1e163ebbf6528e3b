"""`tools/dev.py wheelhouse` builds every sdist and wheel into one directory."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheelhouse_builds_every_distribution_and_drops_stale_builds(tmp_path: Path) -> None:
    out = tmp_path / "wheelhouse"
    out.mkdir()
    stale = out / "wfe_core-0.0.1-py3-none-any.whl"
    stale.write_bytes(b"an older build")
    unrelated = out / "attrs-23.2.0-py3-none-any.whl"
    unrelated.write_bytes(b"not ours")
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "dev.py"), "wheelhouse", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["wfe"]["release"][
        "version"
    ]
    names = [
        tomllib.loads(p.read_text())["project"]["name"].replace("-", "_")
        for p in (ROOT / "packages").glob("*/pyproject.toml")
    ]
    expected = {f"{n}-{version}-py3-none-any.whl" for n in names}
    expected |= {f"{n}-{version}.tar.gz" for n in names}
    # uv also leaves a .gitignore there, so a wheelhouse inside a checkout is never committed.
    assert {p.name for p in out.iterdir()} - {".gitignore"} == expected | {unrelated.name}
    # The command to run next, with the directory as given (relative to the cwd here).
    assert result.stdout.strip().splitlines()[-1] == (
        "pip install --find-links wheelhouse 'wfe[all]'"
    )
