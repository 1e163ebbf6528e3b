"""Instructions the host executes for a shape, counted by valgrind's callgrind.

On a machine whose timings wander (a shared VM), wall and CPU times of the same run can
differ by tens of percent from one minute to the next; instruction counts repeat to
1-2 %. This runs one shape under ``valgrind --tool=callgrind`` with collection switched
off, switches it on (``callgrind_control -i on``) for the measured part only, off
again after it, and prints ``instructions_<shape> N count`` and the count per unit.

- ``long``: one workflow of ``--steps`` steps (after two ten-step warm-ups);
- ``idle``: ``--starts`` workflows started (50 callers) until each is parked in
  ``wait_for``.

It counts user-space work of this process only: not the kernel's (a file written page
by page costs a syscall per page and barely shows), nor a database server's. Needs
valgrind (``apt-get install valgrind``); Python runs ~50 times slower under it.

    python tools/bench/instructions.py [--store URL] [--shapes long,idle] [--steps N] [--starts N]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).parent))
import bench  # this folder's bench.py: its shapes' workflows

_INSIDE = "WFE_BENCH_UNDER_CALLGRIND"


def _collect(on: bool) -> None:
    subprocess.run(
        ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
        check=True,
        stdout=subprocess.DEVNULL,
    )


async def _long(store: bench.Store, steps: int) -> None:
    async with store.host(bench._chain("long", steps), bench._chain("warm", 10)) as host:
        for _ in range(2):
            await host.wait_for_workflow(await host.start_workflow("warm", 1, {}), 600)
        _collect(True)
        await host.wait_for_workflow(await host.start_workflow("long", 1, {}), 600)
        _collect(False)


async def _idle(store: bench.Store, starts: int) -> None:
    parked = bench.Parked(starts)
    async with store.host(bench._waiting("idle", parked.step)) as host:
        _collect(True)
        await bench._park(host, "idle", parked, 50)
        _collect(False)


def _measured(args: argparse.Namespace) -> None:
    """Inside valgrind: run the one shape asked."""
    store = bench.Store(args.store)
    if args.shapes == "long":
        trio.run(_long, store, args.steps)
    else:
        trio.run(_idle, store, args.starts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default=None, help="persistence URL (default: SQLite)")
    parser.add_argument("--shapes", default="long,idle")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--starts", type=int, default=300)
    args = parser.parse_args(argv)
    if os.environ.get(_INSIDE):
        _measured(args)
        return 0
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("instructions.py needs valgrind and callgrind_control", file=sys.stderr)
        return 2
    units = {"long": ("steps", args.steps), "idle": ("starts", args.starts)}
    for shape in args.shapes.split(","):
        if shape not in units:
            parser.error(f"unknown shape {shape!r}: long, idle")
        with tempfile.TemporaryDirectory() as tmp:
            command = [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={Path(tmp) / 'callgrind.out'}",
                sys.executable,
                __file__,
                "--shapes",
                shape,
                "--steps",
                str(args.steps),
                "--starts",
                str(args.starts),
                *(["--store", args.store] if args.store else []),
            ]
            done = subprocess.run(
                command, env={**os.environ, _INSIDE: "1"}, capture_output=True, text=True
            )
        found = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            print(done.stderr[-2000:], file=sys.stderr)
            return 1
        total = int(found.group(1))
        unit, n = units[shape]
        print(f"instructions_{shape} {total} count", flush=True)
        print(f"instructions_per_{unit[:-1]}_{shape} {total / n:.0f} count", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
