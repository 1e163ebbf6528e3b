"""What code steps ``print()`` while ``wfe`` runs them: shown under the step that
printed it, like a shell step's output.

While a host runs, ``sys.stdout`` and ``sys.stderr`` are replaced by
:class:`StepStream` objects. Text written from inside a step body (the step middleware
marks the body's task with :func:`step_output`) goes, line by line, to that step's log
sink; anything else passes through to the real stream unchanged.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import attrs

Sink = Callable[[str, str], None]
"""``sink(stream, line)``: where a step's lines go."""


@attrs.define
class _StepLines:
    sink: Sink
    partial: dict[str, str] = attrs.field(factory=dict)

    def write(self, stream: str, text: str) -> None:
        lines = (self.partial.pop(stream, "") + text).split("\n")
        if lines[-1]:
            self.partial[stream] = lines[-1]
        for line in lines[:-1]:
            self.sink(stream, line)

    def flush(self) -> None:
        for stream, rest in sorted(self.partial.items()):
            self.sink(stream, rest)
        self.partial.clear()


# The step whose body the current task (or worker thread) is running, if any.
_current: contextvars.ContextVar[_StepLines | None] = contextvars.ContextVar(
    "wfe_cli_step_output", default=None
)


class StepStream:
    """A stand-in for ``sys.stdout``/``sys.stderr`` (see module docs)."""

    def __init__(self, real: TextIO, stream: str) -> None:
        self._real = real
        self._stream = stream

    def write(self, text: str) -> int:
        lines = _current.get()
        if lines is None:
            return self._real.write(text)
        lines.write(self._stream, text)
        return len(text)

    def flush(self) -> None:
        if _current.get() is None:
            self._real.flush()

    def __getattr__(self, name: str) -> Any:
        # isatty(), fileno(), encoding, ... are the real stream's.
        return getattr(self._real, name)


@contextlib.contextmanager
def step_output(sink: Sink) -> Iterator[None]:
    """Within this block (one step body's run), printed text goes to ``sink``."""
    lines = _StepLines(sink)
    token = _current.set(lines)
    try:
        yield
    finally:
        _current.reset(token)
        lines.flush()


@contextlib.contextmanager
def capture_step_prints() -> Iterator[None]:
    """Install :class:`StepStream` on ``sys.stdout`` and ``sys.stderr`` for the block."""
    saved = sys.stdout, sys.stderr
    sys.stdout = StepStream(saved[0], "stdout")
    sys.stderr = StepStream(saved[1], "stderr")
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
