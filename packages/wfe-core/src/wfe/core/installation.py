"""Install hints that work where the user is.

An error that says "install X" must name a command the user can run as is. The wfe
distributions may come from a package index, from a local wheelhouse or from a
checkout, and a plain ``pip install 'wfe[yaml]'`` only works in the first case: from a
checkout the siblings an extra names exist nowhere but in ``packages/``. So
:func:`install_command` looks at how wfe itself was installed:

- installed from a checkout (``pip install ./packages/...`` or the editable development
  environment; pip and uv record the directory in ``direct_url.json``): build the
  checkout's wheelhouse and install from it, which resolves extras against the local
  distributions — ``python3 tools/dev.py wheelhouse && pip install --find-links dist
  'wfe[yaml]'``;
- otherwise: ``pip install 'wfe[yaml]'``.

The installer is this interpreter's: ``pip`` when the ``pip`` on ``PATH`` belongs to it,
else ``python -m pip`` with its full path, else ``uv pip install --python ...`` when the
environment has no pip (as venvs made by uv have not).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import shlex
import shutil
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

__all__ = ["checkout_root", "install_command"]

# The distributions whose install record may name the checkout they were built from.
_DISTRIBUTIONS = (
    "wfe-core",
    "wfe",
    "wfe-yaml",
    "wfe-sqlite",
    "wfe-postgres",
    "wfe-valkey",
    "wfe-opensearch",
)


def checkout_root() -> Path | None:
    """The wfe checkout the installed distributions were installed from, if any.

    A checkout is a directory holding ``packages/<dist>`` and ``tools/dev.py``; the
    first installed wfe distribution whose ``direct_url.json`` names a local
    directory inside one decides.
    """
    for name in _DISTRIBUTIONS:
        try:
            record = importlib.metadata.distribution(name).read_text("direct_url.json")
        except importlib.metadata.PackageNotFoundError:
            continue
        if not record:
            continue
        try:
            data = json.loads(record)
        except ValueError:
            continue
        url = urlparse(str(data.get("url", "")))
        if url.scheme != "file" or "dir_info" not in data:
            continue
        source = Path(unquote(url.path))
        root = source.parent.parent
        if source.parent.name == "packages" and (root / "tools" / "dev.py").is_file():
            return root
    return None


def _installer() -> list[str]:
    """The command that installs into the running interpreter's environment."""
    bindir = Path(sys.executable).parent
    on_path = shutil.which("pip")
    if on_path is not None and Path(on_path).parent == bindir:
        return ["pip", "install"]
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip", "install"]
    return ["uv", "pip", "install", "--python", sys.executable]


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies inside it."""
    try:
        return str(path.relative_to(Path.cwd())) or "."
    except ValueError:
        return str(path)


def install_command(requirement: str) -> str:
    """A shell command that installs ``requirement`` (e.g. ``"wfe[yaml]"``) here."""
    installer = shlex.join(_installer())
    root = checkout_root()
    if root is None:
        return f"{installer} {shlex.quote(requirement)}"
    # dist/ is where `tools/dev.py wheelhouse` builds by default.
    build = shlex.join(["python3", _shown(root / "tools" / "dev.py"), "wheelhouse"])
    links = shlex.quote(_shown(root / "dist"))
    return f"{build} && {installer} --find-links {links} {shlex.quote(requirement)}"
