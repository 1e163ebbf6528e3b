"""tools/bench/scale_out.py runs host processes on SQLite + Valkey and prints its figures."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import trio

BENCH = Path(__file__).resolve().parents[3] / "tools" / "bench" / "scale_out.py"

pytestmark = pytest.mark.slow


async def test_scale_out_bench_prints_every_figure(shared_server_url: str) -> None:
    if not BENCH.is_file():
        pytest.skip(f"no repository checkout: {BENCH} is missing")
    small = ["--hosts", "1,2", "--workflows", "6", "--steps", "2"]
    result = await trio.run_process(
        [sys.executable, str(BENCH), "--valkey", shared_server_url, *small],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    names = set()
    for line in result.stdout.decode().splitlines():
        assert re.fullmatch(r"\S+ \S+ \S+", line), f"not a 'name value unit' line: {line!r}"
        names.add(line.split()[0])
    for scenario in ("io", "trivial"):
        for n in (1, 2):
            for figure in ("steps_per_second", "connections", "wakeup_p50", "wakeup_p90"):
                assert f"{scenario}_hosts_{n}_{figure}" in names
        assert f"{scenario}_hosts_2_speedup" in names
    assert {"valkey_lock_cycle", "valkey_queue_cycle"} <= names
