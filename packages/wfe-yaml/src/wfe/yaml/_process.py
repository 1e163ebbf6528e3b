"""Running a subprocess under trio: output streamed line by line, bounded tails, and a
timeout (or cancellation) that SIGKILLs the whole process group."""

from __future__ import annotations

import codecs
import contextlib
import math
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

import attrs
import trio

TAIL_BYTES = 64 * 1024
"""How much of each stream a step keeps (the last 64 KiB)."""

# After the main process exits, how long to keep reading pipes still held open by a
# background child before giving up on them.
_PIPE_GRACE = 1.0


class Tail:
    """The last ``limit`` characters of a stream."""

    def __init__(self, limit: int = TAIL_BYTES) -> None:
        self._limit = limit
        self._chunks: list[str] = []
        self._size = 0

    def add(self, text: str) -> None:
        self._chunks.append(text)
        self._size += len(text)
        if self._size > 2 * self._limit:
            self._compact()

    def _compact(self) -> None:
        joined = "".join(self._chunks)[-self._limit :]
        self._chunks = [joined]
        self._size = len(joined)

    @property
    def text(self) -> str:
        self._compact()
        return self._chunks[0] if self._chunks else ""


@attrs.frozen(kw_only=True)
class ProcessResult:
    exit_code: int | None
    timed_out: bool
    stdout: str
    stderr: str


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def _pump(
    stream: trio.abc.ReceiveStream,
    name: str,
    tail: Tail,
    on_line: Callable[[str, str], None],
    max_line: int,
) -> None:
    # A line longer than max_line is passed on in pieces of max_line characters, so a
    # stream without newlines costs bounded memory and linear time.
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    parts: list[str] = []
    size = 0
    while True:
        try:
            chunk = await stream.receive_some(65536)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            chunk = b""
        text = decoder.decode(chunk, final=not chunk)
        tail.add(text)
        pos = 0
        while pos < len(text):
            nl = text.find("\n", pos)
            end = len(text) if nl < 0 else nl
            piece = text[pos:end]
            while size + len(piece) > max_line:
                cut = max_line - size
                parts.append(piece[:cut])
                on_line(name, "".join(parts))
                parts, size, piece = [], 0, piece[cut:]
            parts.append(piece)
            size += len(piece)
            if nl < 0:
                break
            on_line(name, "".join(parts).removesuffix("\r"))
            parts, size = [], 0
            pos = nl + 1
        if not chunk:
            if size:
                on_line(name, "".join(parts))
            return


async def run_streaming(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | None,
    timeout: timedelta | None,
    on_line: Callable[[str, str], None],
    max_line: int = TAIL_BYTES,
) -> ProcessResult:
    """Run ``argv`` in a new session; ``on_line(stream, line)`` gets each output line live.

    On timeout or cancellation the process group is SIGKILLed (children included).
    Lines longer than ``max_line`` characters arrive in pieces of that length.
    """
    proc = await trio.lowlevel.open_process(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    out_tail, err_tail = Tail(), Tail()
    timed_out = False
    try:
        async with trio.open_nursery() as nursery:
            readers_done = trio.Event()

            async def read_both() -> None:
                assert proc.stdout is not None
                assert proc.stderr is not None
                async with trio.open_nursery() as inner:
                    inner.start_soon(_pump, proc.stdout, "stdout", out_tail, on_line, max_line)
                    inner.start_soon(_pump, proc.stderr, "stderr", err_tail, on_line, max_line)
                readers_done.set()

            nursery.start_soon(read_both)
            limit = timeout.total_seconds() if timeout is not None else math.inf
            with trio.move_on_after(limit) as scope:
                await proc.wait()
            if scope.cancelled_caught:
                timed_out = True
                _kill_group(proc.pid)
                await proc.wait()
            with trio.move_on_after(_PIPE_GRACE):
                await readers_done.wait()
            nursery.cancel_scope.cancel()
    finally:
        if proc.returncode is None or timed_out:
            _kill_group(proc.pid)
        if proc.returncode is None:
            with trio.CancelScope(shield=True):
                await proc.wait()
        for stream in (proc.stdout, proc.stderr):
            with contextlib.suppress(Exception):
                await trio.aclose_forcefully(stream)
    return ProcessResult(
        exit_code=proc.returncode,
        timed_out=timed_out,
        stdout=out_tail.text,
        stderr=err_tail.text,
    )
