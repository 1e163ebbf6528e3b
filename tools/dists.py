#!/usr/bin/env python3
"""Keep the distributions under packages/ in step from one source.

    python3 tools/dists.py check          # exit 1 and list every drift
    python3 tools/dists.py sync           # rewrite the packages' pyproject.toml files
    python3 tools/dists.py bump 0.2.0     # set the version, sync, then refresh uv.lock
    python3 tools/dists.py check --tag v0.1.0 --repository URL
                                          # also: the tag and the repository match

The source is ``[tool.wfe.release]`` in the root ``pyproject.toml``: the version every
distribution carries, the Python versions supported (``requires-python`` and the
classifiers come from them; noxfile.py tests each), and the repository URL (the project
URLs). From it each ``packages/*/pyproject.toml`` gets its version, licence, classifiers
and URLs, and every requirement naming a sibling distribution gets the computed range
``>=VERSION,<NEXT`` (NEXT is the next breaking release: the next minor before 1.0, the
next major after). Each distribution also carries a copy of the root LICENSE, since a
build only sees its own directory.

``check`` needs only the standard library; ``sync`` and ``bump`` edit TOML in place with
tomlkit (a dev dependency), so comments and layout survive.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "packages"
LICENSE = ROOT / "LICENSE"
VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)((?:a|b|rc)\d+)?$")
# A requirement: name, optional [extras], then the rest (specifiers, markers).
REQUIREMENT_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")
COMMON_CLASSIFIERS = [
    "Development Status :: 3 - Alpha",
    "Framework :: Trio",
    "Intended Audience :: Developers",
    "Operating System :: POSIX",
    "Programming Language :: Python :: 3 :: Only",
    "Topic :: Software Development :: Libraries",
    "Topic :: System :: Distributed Computing",
    "Typing :: Typed",
]


class DistsError(Exception):
    """The release source or a package file is unusable; the message says which."""


def release() -> dict[str, Any]:
    """The ``[tool.wfe.release]`` table of the root pyproject.toml, validated."""
    path = ROOT / "pyproject.toml"
    try:
        table = tomllib.loads(path.read_text())["tool"]["wfe"]["release"]
    except KeyError as exc:
        raise DistsError(f"{path}: no [tool.wfe.release] table") from exc
    version = table.get("version")
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise DistsError(f"{path}: [tool.wfe.release] version {version!r} is not X.Y.Z[aN|bN|rcN]")
    pythons = table.get("pythons")
    if (
        not isinstance(pythons, list)
        or not pythons
        or not all(isinstance(p, str) and re.fullmatch(r"3\.\d+", p) for p in pythons)
    ):
        raise DistsError(f"{path}: [tool.wfe.release] pythons must list versions like '3.11'")
    if not isinstance(table.get("repository"), str):
        raise DistsError(f"{path}: [tool.wfe.release] repository must be the project's URL")
    return dict(table)


def distributions() -> dict[str, Path]:
    """Every distribution name under packages/ and its pyproject.toml."""
    found = {}
    for path in sorted(PACKAGES.glob("*/pyproject.toml")):
        found[tomllib.loads(path.read_text())["project"]["name"]] = path
    return found


def sibling_range(version: str) -> str:
    """``>=VERSION,<NEXT``: the versions of a sibling released in step with this one."""
    match = VERSION_RE.match(version)
    if match is None:
        raise DistsError(f"version {version!r} is not X.Y.Z")
    major, minor = int(match[1]), int(match[2])
    upper = f"0.{minor + 1}" if major == 0 else f"{major + 1}"
    return f">={version},<{upper}"


def pinned(requirement: str, siblings: set[str], version: str) -> str:
    """``requirement`` with the computed range if it names a sibling, else unchanged."""
    match = REQUIREMENT_RE.match(requirement)
    if match is None or match[1] not in siblings:
        return requirement
    marker = match[3].split(";", 1)[1].strip() if ";" in match[3] else ""
    extras = match[2] or ""
    return f"{match[1]}{extras}{sibling_range(version)}" + (f"; {marker}" if marker else "")


def expected_fields(dist: str, rel: dict[str, Any]) -> dict[str, Any]:
    """The ``[project]`` fields of ``dist`` that come from the release source."""
    pythons = rel["pythons"]
    repo = rel["repository"].rstrip("/")
    folder = f"packages/{dist}"
    return {
        "version": rel["version"],
        "requires-python": f">={pythons[0]}",
        "license": "MIT",
        "license-files": ["LICENSE"],
        "classifiers": [
            *COMMON_CLASSIFIERS,
            *(f"Programming Language :: Python :: {p}" for p in pythons),
        ],
        "urls": {
            "Homepage": repo,
            "Documentation": f"{repo}/tree/main/{folder}#readme",
            "Source": f"{repo}/tree/main/{folder}",
            "Issues": f"{repo}/issues",
            "Changelog": f"{repo}/blob/main/CHANGELOG.md",
        },
    }


def requirement_lists(project: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """``(where, requirements)`` for the dependencies and each extra of ``project``."""
    yield "dependencies", list(project.get("dependencies", []))
    for extra, reqs in project.get("optional-dependencies", {}).items():
        yield f"optional-dependencies.{extra}", list(reqs)


def drift() -> list[str]:
    """Every way the packages differ from the release source, one line each."""
    rel = release()
    dists = distributions()
    problems = []
    for dist, path in dists.items():
        where = path.relative_to(ROOT)
        project = tomllib.loads(path.read_text())["project"]
        for key, want in expected_fields(dist, rel).items():
            if project.get(key) != want:
                problems.append(f"{where}: project.{key} is {project.get(key)!r}, want {want!r}")
        for field, reqs in requirement_lists(project):
            for req in reqs:
                want = pinned(req, set(dists), rel["version"])
                if req != want:
                    problems.append(f"{where}: {field} has {req!r}, want {want!r}")
        copy = path.parent / "LICENSE"
        if not copy.is_file() or copy.read_bytes() != LICENSE.read_bytes():
            problems.append(f"{copy.relative_to(ROOT)}: not a copy of the root LICENSE")
    return problems


def release_mismatch(tag: str | None, repository: str | None) -> list[str]:
    """Why a release from ``tag`` in ``repository`` would publish the wrong thing."""
    rel = release()
    problems = []
    if tag is not None and tag != f"v{rel['version']}":
        problems.append(
            f"tag {tag!r} does not name version {rel['version']!r} of [tool.wfe.release]"
            f" (want 'v{rel['version']}'; bump with: python3 tools/dists.py bump VERSION)"
        )
    if repository is not None and repository.rstrip("/") != rel["repository"].rstrip("/"):
        problems.append(
            f"[tool.wfe.release] repository is {rel['repository']!r}, but this is "
            f"{repository!r}: the project URLs would point elsewhere"
        )
    return problems


def sync() -> list[Path]:
    """Rewrite every package file that drifted; returns the files changed."""
    import tomlkit  # dev dependency: only writing needs it

    rel = release()
    dists = distributions()
    changed = []
    for dist, path in dists.items():
        before = path.read_text()
        doc = tomlkit.parse(before)
        project: Any = doc["project"]
        for key, want in expected_fields(dist, rel).items():
            if project.get(key) != want:
                _assign(tomlkit, project, key, want)
        for field, reqs in requirement_lists(project.unwrap()):
            table = project
            for part in field.split(".")[:-1]:
                table = table[part]
            array = table[field.split(".")[-1]]
            for index, req in enumerate(reqs):
                want = pinned(req, set(dists), rel["version"])
                if want != req:
                    array[index] = want  # in place: the array keeps its layout
        after = tomlkit.dumps(doc)
        if after != before:
            path.write_text(after)
            changed.append(path)
        copy = path.parent / "LICENSE"
        if not copy.is_file() or copy.read_bytes() != LICENSE.read_bytes():
            shutil.copyfile(LICENSE, copy)
            changed.append(copy)
    return changed


def _assign(tomlkit: Any, table: Any, key: str, value: Any) -> None:
    """Set ``table[key]`` to ``value``, updating an existing table key by key so a
    hand-written layout survives; new lists of several items get one item a line."""
    if isinstance(value, dict) and key in table:
        for name in [k for k in table[key] if k not in value]:
            del table[key][name]
        for name, item in value.items():
            table[key][name] = item
    elif isinstance(value, list):
        array = tomlkit.array()
        array.extend(value)
        table[key] = array.multiline(len(value) > 1)
    else:
        table[key] = value


def bump(version: str) -> None:
    """Set the release version, sync every package and refresh uv.lock."""
    if not VERSION_RE.match(version):
        raise DistsError(f"version {version!r} is not X.Y.Z[aN|bN|rcN]")
    import tomlkit

    path = ROOT / "pyproject.toml"
    doc = tomlkit.parse(path.read_text())
    doc["tool"]["wfe"]["release"]["version"] = version
    path.write_text(tomlkit.dumps(doc))
    sync()
    uv = shutil.which("uv") or str(ROOT / ".venv" / "bin" / "uv")
    subprocess.run([uv, "lock"], cwd=ROOT, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tools/dists.py", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check_parser = sub.add_parser("check", help="exit 1 if a package drifted from the source")
    check_parser.add_argument("--tag", help="a release tag, which must be v<version>")
    check_parser.add_argument("--repository", help="the URL of the repository releasing")
    sub.add_parser("sync", help="rewrite the packages from the release source")
    bump_parser = sub.add_parser("bump", help="set the version, sync, refresh uv.lock")
    bump_parser.add_argument("version")
    options = parser.parse_args(argv)
    try:
        if options.command == "check":
            problems = drift() + release_mismatch(options.tag, options.repository)
            for line in problems:
                print(line)
            if problems:
                print("run: python3 tools/dists.py sync", file=sys.stderr)
                return 1
            print(f"{len(distributions())} distributions in step at {release()['version']}")
        elif options.command == "sync":
            for changed in sync():
                print(f"wrote {changed.relative_to(ROOT)}")
        else:
            bump(options.version)
    except DistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
