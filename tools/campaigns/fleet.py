"""Host processes of a campaign: start, SIGKILL and restart them, sample their memory.

The "up" files are written by the host processes: polling them is the point.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import trio
from stores import Store, rss_bytes

HOST = Path(__file__).parent / "chaos_host.py"


class Fleet:
    """``count`` host processes on ``store``; each kill is recorded (pid -> wall time)."""

    def __init__(self, store: Store, count: int, tmp: Path) -> None:
        self.store = store
        self.tmp = tmp
        self.log = tmp / "steps.log"
        self.procs: list[trio.Process] = []
        self.kills: dict[int, float] = {}
        self.pauses: dict[int, list[tuple[float, float]]] = {}  # pid -> [(stop, cont)]
        self.rss_max: dict[int, int] = {}  # slot -> the largest RSS seen in that slot
        self.count = count
        self._spawned = 0

    async def _spawn(self, *, wait_up: bool = True) -> trio.Process:
        self._spawned += 1
        up = self.tmp / f"up-{self._spawned}"
        command = [sys.executable, str(HOST), *self.store.argv(), str(self.log), str(up)]
        with (self.tmp / f"host-{self._spawned}.err").open("wb") as err:
            proc = await trio.lowlevel.open_process(command, stdout=subprocess.DEVNULL, stderr=err)
        if not wait_up:
            return proc
        with trio.fail_after(120):
            while not up.exists():
                if proc.poll() is not None:
                    raise RuntimeError(f"host process exited with {proc.returncode} on start")
                await trio.sleep(0.05)
        return proc

    async def start(self) -> None:
        self.procs = [await self._spawn() for _ in range(self.count)]

    async def kill(self, slot: int) -> None:
        """SIGKILL the host in ``slot`` and start a new one there, without waiting for
        it to serve: the next kill may come first (a host dying while it starts)."""
        proc = self.procs[slot]
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        self.kills[proc.pid] = time.time()
        self.procs[slot] = await self._spawn(wait_up=False)

    async def pause(self, slot: int, seconds: float) -> None:
        """SIGSTOP the host in ``slot`` for ``seconds`` (past its lease: it is fenced
        out), then SIGCONT it."""
        proc = self.procs[slot]
        stopped = time.time()
        proc.send_signal(signal.SIGSTOP)
        try:
            await trio.sleep(seconds)
        finally:
            proc.send_signal(signal.SIGCONT)
        self.pauses.setdefault(proc.pid, []).append((stopped, time.time()))

    def died(self) -> list[tuple[int, int | None]]:
        """Hosts that ended by themselves (pid, exit code): a host must never die."""
        return [(p.pid, p.returncode) for p in self.procs if p.poll() is not None]

    def sample(self) -> list[int]:
        """Every host's RSS now (bytes, by slot), also kept as each slot's maximum."""
        now = [rss_bytes(p.pid) for p in self.procs]
        for slot, rss in enumerate(now):
            self.rss_max[slot] = max(self.rss_max.get(slot, 0), rss)
        return now

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            await proc.wait()

    def unexpected(self) -> list[str]:
        """Lines the hosts wrote to stderr other than the soak's failing steps' errors
        (store errors, lost leases, tracebacks...)."""
        lines = self.errors().splitlines()
        return [line for line in lines if line.strip() and "on purpose" not in line]

    def errors(self) -> str:
        """The hosts' stderr, for the report of a failed run."""
        return "".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("host-*.err")))

    def report_hosts(self, problems: list[str], name: str) -> None:
        """Add a host's traceback to ``problems``; print the count of unexpected stderr
        lines as ``name`` and the first few."""
        unexpected = self.unexpected()
        if any("Traceback" in line for line in unexpected):
            problems.append("a host printed a traceback: " + " | ".join(unexpected[:20]))
        print(f"{name} {len(unexpected)} lines")
        for line in unexpected[:5]:
            print("# host: " + line)

    def verdict(self, problems: list[str], name: str) -> int:
        """Print ``problems`` as ``name`` (and the hosts' stderr when there are any),
        then ``ok`` or ``FAILED``; the exit status."""
        print(f"{name} {len(problems)} problems")
        for problem in problems[:50]:
            print("  " + problem)
        if problems:
            print(self.errors()[-4000:])
        print("ok" if not problems else "FAILED")
        return 1 if problems else 0
