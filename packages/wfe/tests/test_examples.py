"""The examples run green (an example that does not run is a defect)."""

from __future__ import annotations

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
