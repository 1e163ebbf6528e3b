"""Cold start of a Deno step: wall time of ``run_deno`` for a trivial script.

Every Deno step is a fresh ``deno run`` process, so this is the fixed cost a
YAML workflow pays per Deno step. Prints ``metric value unit`` lines:

- ``deno_step_cold_start_js_median`` / ``_ts_median``: ``run_deno`` on a trivial
  script (sets one output), engine cache (DENO_DIR) already in use;
- ``deno_step_first_run_empty_cache``: the very first step on an empty DENO_DIR;
- ``deno_bare_process_median``: ``deno run`` of an empty file with no wfe
  machinery, the floor the step cost is compared against.

Usage: python tools/bench/deno_cold_start.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from wfe.yaml._deno import DenoConfig, _deno_binary, run_deno

JS = "Wfe.setOutput('ok', Wfe.getData().n + 1);"
TS = (
    "const d = Wfe.getData() as { n: number };\nconst n: number = d.n + 1;\nWfe.setOutput('ok', n);"
)


def _ignore(kind: str, line: str) -> None:
    pass


async def _median_ms(runs: int, once: Callable[[], Awaitable[object]]) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await once()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="wfe-bench-deno-") as tmp:
        deno_dir = Path(tmp) / "deno-dir"
        js, ts = DenoConfig(script=JS, typescript=False), DenoConfig(script=TS)

        start = time.perf_counter()
        outputs = await run_deno(ts, {"n": 1}, _ignore, deno_dir=deno_dir)
        first = (time.perf_counter() - start) * 1000
        assert outputs == {"ok": 2}, outputs

        js_ms = await _median_ms(runs, lambda: run_deno(js, {"n": 1}, _ignore, deno_dir=deno_dir))
        ts_ms = await _median_ms(runs, lambda: run_deno(ts, {"n": 1}, _ignore, deno_dir=deno_dir))

        empty = Path(tmp) / "empty.js"
        empty.write_text("")
        bare = [_deno_binary(), "run", "--no-prompt", "--no-config", "--no-lock", str(empty)]
        env = {"DENO_DIR": str(deno_dir), "DENO_NO_UPDATE_CHECK": "1"}

        async def bare_run() -> None:
            await trio.run_process(bare, env=env, stdout=subprocess.DEVNULL)

        bare_ms = await _median_ms(runs, bare_run)

    print(f"deno_step_cold_start_js_median {js_ms:.1f} ms")
    print(f"deno_step_cold_start_ts_median {ts_ms:.1f} ms")
    print(f"deno_step_first_run_empty_cache {first:.1f} ms")
    print(f"deno_bare_process_median {bare_ms:.1f} ms")
    print(f"deno_step_runs {runs} count")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="samples per metric (median)")
    trio.run(main, parser.parse_args().runs)
