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
        self._buffer += chunk
        lines: list[str] = []
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                break
            lines.append(self._decode(self._buffer[:newline]))
            del self._buffer[: newline + 1]
        while len(self._buffer) >= self._limit:
            lines.append(self._decode(self._buffer[: self._limit]))
            del self._buffer[: self._limit]
        return lines

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

    def __init__(self, path: Path, log: LogFn) -> None:
        self.path = path
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
            self._read_available(fd)

    def drain(self) -> None:
        """Handle whatever is still buffered in the FIFO (after the writer exited)."""
        if self._fd is not None:
            self._read_available(self._fd)
        for line in self._lines.flush():
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

    def _read_available(self, fd: int) -> None:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                return
            for line in self._lines.feed(chunk):
                self._handle(line)

    def _handle(self, line: str) -> None:
        if self.broken is not None:
            return
        try:
            record = json.loads(line)
            kind = record["t"]
        except (ValueError, KeyError, TypeError):
            self.broken = f"malformed channel record {line[:200]!r}"
            return
        if kind == "ready":
            self.ready.set()
        elif kind == "out":
            self.outputs[record["name"]] = record["value"]
        elif kind == "log":
            for text in str(record["text"]).splitlines() or [""]:
                self._log("log", text)
        elif kind == "error":
            if self.error is None:
                self.error = record
        else:
            self.broken = f"unknown channel record type {kind!r}"
