"""tools/bench/instructions.py counts, under valgrind, only the part of a shape it
measures, and prints a total and a per-unit figure for each shape."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "tools" / "bench" / "instructions.py"


def _counts(*args: str) -> dict[str, int]:
    result = subprocess.run(
        [sys.executable, str(BENCH), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found = {}
    for line in result.stdout.splitlines():
        match = re.fullmatch(r"(\S+) (\d+) count", line)
        assert match is not None, line
        found[match.group(1)] = int(match.group(2))
    return found


def test_instruction_bench_counts_the_measured_part_of_each_shape() -> None:
    if not BENCH.is_file():
        pytest.skip(f"no repository checkout: {BENCH} is missing")
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed (apt-get install valgrind)")
    short = _counts("--shapes", "long,idle", "--steps", "20", "--starts", "20")
    assert set(short) == {
        "instructions_long",
        "instructions_per_step_long",
        "instructions_idle",
        "instructions_per_start_idle",
    }
    assert short["instructions_per_step_long"] == round(short["instructions_long"] / 20)
    # Only the measured part: four times the steps, about four times the count (the
    # start-up and the warm-ups, outside it, would weigh as much as 20 steps).
    longer = _counts("--shapes", "long", "--steps", "80")
    assert 3 < longer["instructions_long"] / short["instructions_long"] < 5
