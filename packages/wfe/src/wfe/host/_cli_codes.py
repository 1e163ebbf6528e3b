"""Exit codes and defaults of the ``wfe`` command, in a module light enough for
``wfe --help`` (it imports nothing)."""

from __future__ import annotations

DEFAULT_STORE = "sqlite:///.wfe/wfe.db"
"""The store used without ``--store``: a SQLite file under ``.wfe/`` in the current directory."""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STORE = 3
EXIT_INTERRUPTED = 130
EXIT_CLOSED_PIPE = 141
"""128 + SIGPIPE: what a shell reports for a command whose output pipe was closed."""
