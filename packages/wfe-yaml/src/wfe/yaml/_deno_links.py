"""Deno checks a path against its ``--allow-read``/``--allow-write`` lists as written,
without resolving symbolic links: a link inside a granted directory would open
everything it points to. Before a step runs, every link under its grants is resolved;
each one leading outside all grants of its kind is denied to the script by name
(``--deny-read``/``--deny-write``, which win over the grants), so the rest of the
granted tree stays usable."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ._deno_errors import DenoStepError

MAX_ENTRIES = 100_000
"""Most directory entries checked under one step's grants."""


def resolved_grants(paths: Iterable[str], cwd: Path) -> list[str]:
    """Each granted path as written and, when it differs, its real path (so a grant
    that is itself a link covers what it names, and nothing more)."""
    out: list[str] = []
    for path in paths:
        out.append(path)
        real = os.path.realpath(cwd / Path(path).expanduser())
        if real != path:
            out.append(real)
    return list(dict.fromkeys(out))


def _inside(target: str, roots: list[str]) -> bool:
    return any(target == root or target.startswith(root.rstrip("/") + "/") for root in roots)


def escaping_links(kind: str, paths: Iterable[str], cwd: Path) -> list[str]:
    """The symbolic links under the ``kind`` grants ``paths`` that lead outside every one
    of them (to deny by name). A permission :class:`DenoStepError` when there are too
    many entries to check, or a link whose name Deno cannot take (a comma)."""
    roots = [os.path.realpath(cwd / Path(p).expanduser()) for p in paths]
    if not roots or "/" in roots:
        return []
    found: list[str] = []
    seen = 0
    for root in roots:
        if not os.path.isdir(root):
            continue
        for here, dirs, files in os.walk(root, followlinks=False):
            for name in (*dirs, *files):
                seen += 1
                if seen > MAX_ENTRIES:
                    raise DenoStepError(
                        f"permissions.{kind}: the granted paths hold more than "
                        f"{MAX_ENTRIES:,} entries to check for symbolic links; grant "
                        "narrower directories",
                        kind="permission",
                    )
                entry = os.path.join(here, name)
                if not os.path.islink(entry):
                    continue
                target = os.path.realpath(entry)
                if _inside(target, roots):
                    continue
                if "," in entry:
                    raise DenoStepError(
                        f"permissions.{kind}: {entry} is a symbolic link to {target}, "
                        "outside the granted paths, and its name has a comma, so Deno "
                        "cannot be told to deny it; rename or remove the link",
                        kind="permission",
                    )
                found.append(entry)
    return found
