"""The private channel a Deno step reports through, and line splitting of its output.

The prelude (``_deno_prelude.js``) writes JSON records, one a line, to a FIFO
that only it holds open for writing: ``ready``, ``out`` (an output), ``log``
(``Wfe.log``) and ``error`` (an uncaught exception). The script's stdout and
stderr are a separate path, so nothing printed there can forge an output.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from ._data import output_name_problem
from ._limits import OutputLimits

# Bytes a channel record adds around an output's JSON value (type, name, quoting).
_RECORD_OVERHEAD = 512
# Records longer than this are parsed off the event loop.
_PARSE_IN_THREAD = 64 * 1024
_MALFORMED = object()

#: Longest line passed to the log callback; longer runs are split (bounded memory).
MAX_LINE = 64 * 1024

LogFn = Callable[[str, str], None]


class LineSplitter:
    """Turns a byte stream into text lines, holding back an unfinished last line."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self._buffer = bytearray()
        self._limit = limit

    def feed(self, chunk: bytes | bytearray) -> list[str]:
        """Add ``chunk``; return the lines it completes (without their newline)."""
        # Search only the new bytes: a long line arriving in many chunks costs linear
        # time, not quadratic.
        searched = len(self._buffer)
        self._buffer += chunk
        lines: list[str] = []
        while True:
            newline = self._buffer.find(b"\n", searched)
            if newline < 0:
                break
            lines.append(self._decode(self._buffer[:newline]))
            del self._buffer[: newline + 1]
            searched = 0
        while len(self._buffer) >= self._limit:
            lines.append(self._decode(self._buffer[: self._limit]))
            del self._buffer[: self._limit]
        return lines

    @property
    def pending(self) -> int:
        """Bytes held back (an unfinished line)."""
        return len(self._buffer)

    def discard(self) -> None:
        """Drop the unfinished line."""
        self._buffer.clear()

    def flush(self) -> list[str]:
        """Return what is left as a final line (if anything)."""
        if not self._buffer:
            return []
        rest = self._decode(self._buffer)
        self._buffer.clear()
        return [rest]

    @staticmethod
    def _decode(raw: bytes | bytearray) -> str:
        return bytes(raw).decode("utf-8", errors="replace").removesuffix("\r")


class Channel:
    """Reader side of the FIFO: collects outputs, forwards logs, keeps the first error."""

    def __init__(self, path: Path, log: LogFn, limits: OutputLimits | None = None) -> None:
        self.path = path
        self.limits = limits or OutputLimits()
        self._budget = self.limits.per_step
        self.outputs: dict[str, Any] = {}
        self.error: dict[str, Any] | None = None
        #: Set when a line was not a channel record (a wfe bug); later lines are ignored.
        self.broken: str | None = None
        self.ready = trio.Event()
        self._log = log
        self._lines = LineSplitter(limit=1 << 62)  # records are never split
        os.mkfifo(path, 0o600)
        # O_RDWR: a FIFO opened this way never reads EOF while we hold it, so reading
        # can start before Deno opens its end; we drain without blocking after exit.
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)

    def unlink(self) -> None:
        """Remove the FIFO's name: from now on only already-open handles reach it."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def serve(self) -> None:
        """Read and handle records until cancelled."""
        fd = self._require_fd()
        while True:
            await trio.lowlevel.wait_readable(fd)
            for line in self._read_available(fd):
                await self._take(line)

    async def drain(self) -> None:
        """Handle whatever is still buffered in the FIFO (after the writer exited)."""
        if self._fd is not None:
            for line in self._read_available(self._fd):
                await self._take(line)
        for line in self._lines.flush():
            await self._take(line)

    async def _take(self, line: str) -> None:
        # Large records are parsed in a worker thread: the host's event loop keeps
        # renewing leases and running other workflows meanwhile.
        if _PARSE_IN_THREAD < len(line) <= self.limits.per_value + _RECORD_OVERHEAD:
            try:
                record = await trio.to_thread.run_sync(json.loads, line)
            except (ValueError, RecursionError):
                record = None
            self._handle(line, record if record is not None else _MALFORMED)
        else:
            self._handle(line)

    def close(self) -> None:
        """Close our end and remove the FIFO."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            trio.lowlevel.notify_closing(fd)
            os.close(fd)
        self.unlink()

    def _require_fd(self) -> int:
        if self._fd is None:
            raise RuntimeError("the Deno result channel is already closed")
        return self._fd

    def _read_available(self, fd: int) -> list[str]:
        lines: list[str] = []
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return lines
            if not chunk:
                return lines
            lines.extend(self._lines.feed(chunk))
            if self._lines.pending > self.limits.per_value + _RECORD_OVERHEAD:
                self._fail(
                    f"an output record exceeds {self.limits.per_value:,} bytes (max_output_size)"
                )
                self._lines.discard()

    def _fail(self, reason: str) -> None:
        if self.broken is None:
            self.broken = reason

    def _handle(self, line: str, parsed: Any = None) -> None:
        if self.broken is not None:
            return
        if len(line) > self.limits.per_value + _RECORD_OVERHEAD:
            self._fail(
                f"an output record exceeds {self.limits.per_value:,} bytes (max_output_size)"
            )
            return
        try:
            if parsed is _MALFORMED:
                raise ValueError("not JSON")
            record = json.loads(line) if parsed is None else parsed
            kind = record["t"] if isinstance(record, dict) else None
        except (ValueError, KeyError, TypeError, RecursionError):
            self._fail("a malformed record arrived (was the channel written by user code?)")
            return
        if kind == "ready":
            self.ready.set()
        elif kind == "out":
            name = record.get("name")
            problem = output_name_problem(name)
            if problem is not None or "value" not in record:
                self._fail(problem or "an output record without a value")
                return
            size = len(line)
            self._budget -= size
            if size > self.limits.per_value + _RECORD_OVERHEAD or self._budget < 0:
                self._fail(
                    f"output {name!r} makes the step's outputs larger than allowed "
                    f"({self.limits.per_value:,} bytes a value, {self.limits.per_step:,} a "
                    "step: max_output_size / max_outputs_size)"
                )
                return
            self.outputs[name] = record["value"]
        elif kind == "log":
            for text in str(record.get("text", "")).splitlines() or [""]:
                self._log("log", text)
        elif kind == "error":
            if self.error is None:
                self.error = record
        else:
            self._fail(f"a record of unknown type {kind!r} arrived")
