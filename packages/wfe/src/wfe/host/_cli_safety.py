"""What keeps the ``wfe`` command's output safe to show: passwords of store URLs never
printed (every line written goes through :func:`wfe.core.redact_url`), and control
characters of step output escaped so a step cannot move the cursor, retitle the
terminal or draw fake status lines."""

from __future__ import annotations

import contextlib
import io
import re
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from wfe.core import redact_url
from wfe.core.secrets import Masker

# C0 controls but tab, DEL, C1 controls, and the bidirectional overrides that reorder
# what a terminal shows.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """``text`` with each control character shown as an escape (``\\x1b``, ``\\r``)."""

    def sub(m: re.Match[str]) -> str:
        c = m.group()
        if c == "\r":
            return "\\r"
        if c == "\n":
            return "\\n"
        return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"

    return _CONTROL.sub(sub, text)


class RedactingStream(io.TextIOBase):
    """A text stream that writes to ``target`` with every password removed."""

    def __init__(self, target: TextIO, url: str | None) -> None:
        self._target = target
        self._url = url
        self._maskers: list[Masker] = []

    def add_masker(self, masker: Masker) -> None:
        """Also replace these secrets (``wfe run --secret``) in everything written."""
        self._maskers.append(masker)

    def write(self, s: str) -> int:
        text = redact_url(s, self._url)
        for masker in self._maskers:
            text = masker.text(text)
        self._target.write(text)
        return len(s)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return self._target.isatty()

    def fileno(self) -> int:
        return self._target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", "utf-8") or "utf-8"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


@contextlib.contextmanager
def redacted_output(url: str | None) -> Iterator[None]:
    """While inside, ``sys.stdout`` and ``sys.stderr`` drop passwords (of ``url`` and of
    any URL written), whatever prints: views, messages, warnings, tracebacks."""
    out, err = sys.stdout, sys.stderr
    sys.stdout = RedactingStream(out, url)
    sys.stderr = RedactingStream(err, url)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err
