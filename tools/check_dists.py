#!/usr/bin/env python3
"""Check the release artefacts as a user meets them: built, described, installed fresh.

    python3 tools/check_dists.py                    # build into a temporary wheelhouse
    python3 tools/check_dists.py --wheelhouse dist  # check files built already
    python3 tools/check_dists.py --python 3.13      # fresh venvs on another Python

What it proves, stopping at the first failure with what and where:

1. every distribution has an sdist and a wheel at the release version, and
   ``twine check --strict`` passes on all of them;
2. no artefact contains ``wfe/__init__.py`` (it would hide the other distributions),
   each wheel ships ``py.typed`` and its licence, and its metadata has a summary,
   ``Requires-Python``, a licence expression, classifiers and project URLs;
3. each wheel installs alone into a fresh venv from the wheelhouse (with uv), brings only
   the wfe siblings it declares, and imports; ``wfe`` stays a namespace package; installed
   so (by name, no checkout), the install hints are the plain ``... install 'wfe[yaml]'``;
4. the documented command, ``pip install --find-links WHEELHOUSE 'wfe[all]'``, works in a
   fresh venv made by ``python -m venv``: every distribution imports, the ``wfe`` command
   runs a YAML workflow on SQLite, and a Deno step runs;
5. the CLI's install hints work: with only wfe-core and wfe installed from this
   checkout's directories, ``wfe run`` names a command for wfe-yaml, for wfe-sqlite, then
   for Deno; running each verbatim makes the same ``wfe run`` succeed (each rebuilds
   ``dist/``).

Third-party dependencies come from the package index, so this needs the network (or a
warm cache). It takes about a minute, which is why it is a nox session (``nox -s dists``)
and a step of the release workflow rather than part of ``tools/dev.py test``.
"""

from __future__ import annotations

import argparse
import email.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import dev  # noqa: E402  (tools/ is not a package)


class CheckFailed(Exception):
    """A release artefact is not what users need; the message says which and why."""


def log(message: str) -> None:
    print(f"[check_dists] {message}", flush=True)


def tool(name: str) -> str:
    """A tool next to this Python (a venv's bin), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name) or shutil.which(name, path=str(dev.BIN))
    if found is None:
        raise CheckFailed(f"{name} is not installed next to {sys.executable} nor on PATH")
    return found


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    out["UV_PYTHON_DOWNLOADS"] = "never"
    return out


def call(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    """Run ``cmd``; return its stdout, or raise naming ``what`` with its output."""
    result = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=cwd, check=False)
    if result.returncode != 0:
        raise CheckFailed(
            f"{what} failed (exit {result.returncode}): {' '.join(cmd)}\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result.stdout


def projects() -> dict[str, dict[str, object]]:
    """Each distribution's ``[project]`` table, by name."""
    out = {}
    for path in sorted((ROOT / "packages").glob("*/pyproject.toml")):
        project = tomllib.loads(path.read_text())["project"]
        out[project["name"]] = project
    return out


def module_of(dist: str) -> str:
    """The module a distribution provides under the namespace: wfe-sqlite → wfe.sqlite."""
    return "wfe.host" if dist == "wfe" else "wfe." + dist.removeprefix("wfe-")


def declared_siblings(dist: str, all_projects: dict[str, dict[str, object]]) -> set[str]:
    """``dist`` and the wfe siblings its dependencies (not extras) name, transitively."""
    seen: set[str] = set()
    todo = [dist]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for req in all_projects[name].get("dependencies", []):  # type: ignore[attr-defined]
            sibling = requirement_name(str(req))
            if sibling in all_projects:
                todo.append(sibling)
    return seen


def requirement_name(requirement: str) -> str:
    for i, char in enumerate(requirement):
        if char in " [<>=!~;":
            return requirement[:i]
    return requirement


def check_artefacts(wheelhouse: Path, version: str) -> list[Path]:
    """Steps 1 and 2: the files exist, pass twine, and carry complete metadata."""
    found = []
    for dist in projects():
        stem = f"{dist.replace('-', '_')}-{version}"
        wheel = wheelhouse / f"{stem}-py3-none-any.whl"
        sdist = wheelhouse / f"{stem}.tar.gz"
        for path in (wheel, sdist):
            if not path.is_file():
                raise CheckFailed(f"{path}: missing from the wheelhouse")
        found += [wheel, sdist]
        check_wheel(dist, wheel)
        check_sdist(sdist)
    call([tool("twine"), "check", "--strict", *map(str, found)], "twine check")
    log(f"{len(found)} artefacts pass twine check --strict and carry complete metadata")
    return found


def check_wheel(dist: str, wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(info).decode())
    if "wfe/__init__.py" in names:
        raise CheckFailed(f"{wheel.name}: contains wfe/__init__.py, which hides the namespace")
    typed = module_of(dist).replace(".", "/") + "/py.typed"
    if typed not in names:
        raise CheckFailed(f"{wheel.name}: no {typed}, so type checkers ignore its annotations")
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        raise CheckFailed(f"{wheel.name}: no licence file")
    for field in ("Summary", "Requires-Python", "License-Expression", "Classifier"):
        if not metadata.get(field):
            raise CheckFailed(f"{wheel.name}: METADATA has no {field}")
    urls = metadata.get_all("Project-URL") or []
    if not any(u.startswith("Source, ") for u in urls):
        raise CheckFailed(f"{wheel.name}: METADATA has no Source project URL ({urls})")
    if metadata.get("Description-Content-Type") != "text/markdown":
        raise CheckFailed(f"{wheel.name}: the README is not declared as Markdown")


def check_sdist(sdist: Path) -> None:
    import tarfile

    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    top = names[0].split("/")[0]
    for wanted in ("pyproject.toml", "README.md", "LICENSE", "PKG-INFO"):
        if f"{top}/{wanted}" not in names:
            raise CheckFailed(f"{sdist.name}: no {wanted}")
    if f"{top}/src/wfe/__init__.py" in names:
        raise CheckFailed(f"{sdist.name}: contains src/wfe/__init__.py")


NAMESPACE_PROBE = textwrap.dedent(
    """
    import importlib, importlib.metadata as md, json, sys, wfe
    # A namespace package has no __file__ and a _NamespacePath, never a list.
    assert getattr(wfe, "__file__", None) is None, wfe.__file__
    assert type(wfe.__path__).__name__ == "_NamespacePath", type(wfe.__path__)
    for module in sys.argv[1:]:
        importlib.import_module(module)
    names = sorted(d.metadata["Name"] for d in md.distributions()
                   if d.metadata["Name"].startswith("wfe"))
    versions = {d.metadata["Name"]: d.version for d in md.distributions()}
    print(json.dumps({"wfe": names, "versions": versions}))
    """
)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / "python"


def check_alone(wheelhouse: Path, python: str, work: Path, version: str) -> None:
    """Step 3: each distribution alone in a fresh venv."""
    uv = tool("uv")
    all_projects = projects()
    for dist in all_projects:
        venv = work / f"alone-{dist}"
        call([uv, "venv", "--quiet", "--python", python, str(venv)], f"uv venv for {dist}")
        call(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(venv_python(venv)),
                "--find-links",
                str(wheelhouse),
                dist,
            ],
            f"installing {dist} alone from the wheelhouse",
        )
        out = call(
            [str(venv_python(venv)), "-c", NAMESPACE_PROBE, module_of(dist)],
            f"importing {module_of(dist)} from a fresh venv holding {dist}",
            cwd=work,
        )
        report = json.loads(out)
        expected = sorted(declared_siblings(dist, all_projects))
        if report["wfe"] != expected:
            raise CheckFailed(f"{dist} alone brought {report['wfe']}, it declares {expected}")
        stale = {n: report["versions"][n] for n in expected if report["versions"][n] != version}
        if stale:
            raise CheckFailed(f"{dist} alone installed other versions than {version}: {stale}")
        log(f"{dist} installs alone ({', '.join(expected)}) and imports {module_of(dist)}")
        if dist == "wfe-core":
            check_plain_hint(venv, work)


def check_plain_hint(venv: Path, work: Path) -> None:
    """Installed by name from a wheelhouse, wfe knows no checkout: hints are plain."""
    hint = call(
        [
            str(venv_python(venv)),
            "-c",
            "from wfe.core.installation import install_command as c; print(c('wfe[yaml]'))",
        ],
        "computing an install hint",
        cwd=work,
    ).strip()
    if "dev.py" in hint or not hint.endswith(" 'wfe[yaml]'"):
        raise CheckFailed(f"installed from a wheelhouse, the hint names a checkout: {hint}")
    log(f"installed by name, the install hint is plain: {hint}")


PIPELINE = textwrap.dedent(
    """
    workflow:
      id: smoke
      version: 1
      steps:
        - name: hello
          config:
            run: echo "##wfe[output greeting=hello]"
        - name: shout
          type: deno
          config:
            script: Wfe.setOutput("loud", "HELLO");
    """
)


def check_all(wheelhouse: Path, python: str, work: Path) -> None:
    """Step 4: the README's command, verbatim, with pip in a venv made by venv."""
    venv = work / "all"
    base = call(
        [python, "-c", "import sys; print(sys.executable)"], f"finding Python {python}"
    ).strip()
    call([base, "-m", "venv", str(venv)], "python -m venv")
    pip = venv_python(venv).with_name("pip")
    started = time.monotonic()
    call(
        [
            str(pip),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--find-links",
            str(wheelhouse),
            "wfe[all]",
        ],
        "pip install --find-links WHEELHOUSE 'wfe[all]'",
    )
    log(f"pip install --find-links WHEELHOUSE 'wfe[all]' took {time.monotonic() - started:.0f}s")
    modules = [module_of(d) for d in projects()]
    out = json.loads(
        call([str(venv_python(venv)), "-c", NAMESPACE_PROBE, *modules], "importing all", cwd=work)
    )
    if out["wfe"] != sorted(projects()):
        raise CheckFailed(f"wfe[all] installed {out['wfe']}, want {sorted(projects())}")
    pipeline = work / "smoke.yaml"
    pipeline.write_text(PIPELINE)
    wfe = venv_python(venv).with_name("wfe")
    run = call(
        [str(wfe), "run", str(pipeline), "--store", f"sqlite:///{work}/smoke.db"],
        "wfe run of a shell and a Deno step",
        cwd=work,
    )
    log(f"wfe[all] imports {len(modules)} modules and `wfe run` works:\n{run.strip()}")


# How the CLI introduces an install command: the YAML loader, a provider scheme, Deno.
HINTS = [
    re.compile(r"YAML workflows need the wfe-yaml distribution: (.+)$"),
    re.compile(r"; install it with: (.+)$"),
    re.compile(r"Deno steps need the Deno runtime, which is not available \(.*?\): (.+)$"),
]


def check_hint(python: str, work: Path) -> None:
    """Step 5: install from the checkout without wfe-yaml, then follow the CLI's hint."""
    venv = work / "hint"
    base = call([python, "-c", "import sys; print(sys.executable)"], "finding Python").strip()
    call([base, "-m", "venv", str(venv)], "python -m venv")
    pip = venv_python(venv).with_name("pip")
    packages = ROOT / "packages"
    call(
        [
            str(pip),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(packages / "wfe-core"),
            str(packages / "wfe"),
        ],
        "pip install ./packages/wfe-core ./packages/wfe",
    )
    pipeline = work / "smoke.yaml"
    pipeline.write_text(PIPELINE.replace("id: smoke", "id: hint"))
    wfe = str(venv_python(venv).with_name("wfe"))
    store = f"sqlite:///{work}/hint.db"
    followed: list[str] = []
    # Without wfe-yaml nor wfe-sqlite each run names what it lacks next: follow each hint.
    while True:
        result = subprocess.run(
            [wfe, "run", str(pipeline), "--store", store],
            capture_output=True,
            text=True,
            env=env(),
            cwd=work,
            check=False,
        )
        if result.returncode == 0:
            break
        hints = [
            match[1]
            for line in result.stderr.splitlines()
            for pattern in HINTS
            if (match := pattern.search(line))
        ]
        if not hints or len(followed) == len(HINTS) or hints[0] in followed:
            raise CheckFailed(
                f"wfe run failed with no new install hint after {followed}:\n{result.stderr}"
            )
        log(f"the CLI's hint: {hints[0]}")
        call(["sh", "-c", hints[0]], "the CLI's install hint, run verbatim", cwd=work)
        followed.append(hints[0])
    if len(followed) < len(HINTS):
        raise CheckFailed(f"expected hints for wfe-yaml, wfe-sqlite and Deno, got {followed}")
    log(f"after running its {len(followed)} hints verbatim, the same wfe run succeeds")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tools/check_dists.py",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--wheelhouse", type=Path, help="check these files instead of building")
    parser.add_argument("--python", default=sys.executable, help="Python of the fresh venvs")
    parser.add_argument("--skip-all", action="store_true", help="skip the wfe[all] pip install")
    parser.add_argument("--skip-hint", action="store_true", help="skip following the CLI hint")
    options = parser.parse_args(argv)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["wfe"]["release"][
        "version"
    ]
    try:
        with tempfile.TemporaryDirectory(prefix="wfe-dists-") as tmp:
            work = Path(tmp)
            wheelhouse = options.wheelhouse
            if wheelhouse is None:
                wheelhouse = work / "wheelhouse"
                dev.ensure_uv()
                dev.build_wheelhouse(wheelhouse)
            check_artefacts(wheelhouse.resolve(), version)
            check_alone(wheelhouse.resolve(), options.python, work, version)
            if not options.skip_all:
                check_all(wheelhouse.resolve(), options.python, work)
            if not options.skip_hint:
                check_hint(options.python, work)
    except (CheckFailed, dev.DevError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    log("every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
