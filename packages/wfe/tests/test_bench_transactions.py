"""tools/bench/transactions.py runs on the real host and SQLite, and prints what it claims."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "tools" / "bench" / "transactions.py"
FIGURES = [
    f"transactions_per_{figure}_{kind}"
    for figure in ("10_step_workflow", "event_workflow", "event")
    for kind in ("write", "read")
] + [f"writes_per_{figure}" for figure in ("10_step_workflow", "event_workflow", "event")]


def test_transaction_bench_prints_every_figure_and_counts_every_transaction() -> None:
    """Each figure is a ``metric N tx`` line; the BEGIN counts and the Database-call
    counts agree (no warning: one read transaction per read, at most one write
    transaction per write), and the breakdown adds up to the reads and writes."""
    if not BENCH.is_file():
        pytest.skip(f"no repository checkout: {BENCH} is missing")
    result = subprocess.run(
        [sys.executable, str(BENCH), "--runs", "1", "--breakdown"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    values: dict[str, int] = {}
    parts: dict[str, int] = {}
    for line in result.stdout.splitlines():
        if line == "store sqlite -":
            continue
        match = re.fullmatch(r"(\S+) (\d+) tx", line)
        assert match, f"not a 'metric value unit' line: {line!r}"
        name, value = match.group(1), int(match.group(2))
        if name.startswith("breakdown."):
            _, figure, kind, _caller = name.split(".", 3)
            key = f"{figure}_{kind}"
            parts[key] = parts.get(key, 0) + value
        else:
            values[name] = value
    assert sorted(values) == sorted(FIGURES)
    # A 10-step workflow writes at least one checkpoint per step.
    assert values["transactions_per_10_step_workflow_write"] >= 10
    assert values["writes_per_10_step_workflow"] >= 10
    assert values["transactions_per_event_write"] >= 1
    for figure in ("10_step_workflow", "event_workflow", "event"):
        writes = values[f"writes_per_{figure}"]
        # Group commit: never more write transactions than writes.
        assert 1 <= values[f"transactions_per_{figure}_write"] <= writes
        assert parts.get(f"transactions_per_{figure}_write", 0) == writes
        assert (
            parts.get(f"transactions_per_{figure}_read", 0)
            == (values[f"transactions_per_{figure}_read"])
        )
