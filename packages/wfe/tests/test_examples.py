"""The examples run green (an example that does not run is a defect)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.parametrize("store", ["memory://", "sqlite"])
def test_pizza_example_completes(store: str, tmp_path: Path) -> None:
    """examples/pizza.py uses every builder verb and completes the order."""
    url = f"sqlite:///{tmp_path / 'pizza.db'}" if store == "sqlite" else store
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "pizza.py"), "--store", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("order-17 COMPLETE")
    assert "refunded 31.50" in result.stdout
    assert "never printed" not in result.stdout


def test_release_pipeline_example_runs_as_a_graph_with_its_secret(tmp_path: Path) -> None:
    """examples/release-pipeline.yaml: lint and a test matrix, build needing both (its
    artifact), publish with a secret that never shows nor is stored."""
    pytest.importorskip("wfe.yaml")
    token = "dev-token-9d2c41"
    env = {**os.environ, "PUBLISH_TOKEN": token}
    command = [sys.executable, "-m", "wfe.host._cli"]
    result = subprocess.run(
        [
            *command,
            "run",
            str(EXAMPLES / "release-pipeline.yaml"),
            "--secret",
            "PUBLISH_TOKEN",
            "--plain",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in (
        "source",
        "lint",
        "test (unit, 0)",
        "test (unit, 1)",
        "test (doctest, 0)",
        "build",
        "publish",
    ):
        assert f"[wfe] step {step} completed" in out
    assert "test (doctest, 1)" not in out  # excluded
    assert out.index("[wfe] step build started") > out.index("[wfe] step lint completed")
    assert "with token ***" in out
    assert token not in out + result.stderr
    wid = out.split("workflow ", 1)[1].split()[0]
    assert (tmp_path / "work" / "registry" / "greeter.tar.gz").is_file()
    shown = subprocess.run(
        [*command, "show", wid, "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    artifact = tmp_path / ".wfe" / "artifacts" / wid / "build" / "package"
    assert json.loads(shown)["artifacts"] == [
        {"step": "build", "name": "package", "path": str(artifact)}
    ]
    assert token not in shown
    text = subprocess.run(
        [*command, "show", wid],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "artifacts:" in text
    assert str(artifact) in text
    logs = subprocess.run(
        [*command, "logs", wid, "test"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "test (unit, 1) | suite unit with PYTHONOPTIMIZE=1" in logs
    stored = b"".join(p.read_bytes() for p in (tmp_path / ".wfe").glob("wfe.db*"))
    assert token.encode() not in stored
