"""``artifacts:``: files and directories a step leaves behind, copied after it succeeds
to ``.wfe/artifacts/<workflow id>/<step>/<name>`` under the current directory (or
``$WFE_ARTIFACTS_DIR``), recorded in ``data["steps"][step]["artifacts"]`` and readable
by later steps as ``${{ artifacts.step.name }}`` (the copy's absolute path).

Paths are relative to the step's working directory and may not leave it: no ``..``,
no absolute path (checked when the file loads), and no symbolic link anywhere — not
on the way to the path, not the path itself, not inside a copied directory — so a
step cannot make wfe copy a file from elsewhere (``ln -s ~/.ssh/id_rsa out``).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import trio

from wfe.core import StepError

from ._ci_keys import ArtifactSpec
from ._data import STEPS_KEY, record_step

ARTIFACTS_KEY = "artifacts"
MAX_ARTIFACT_FILES = 10_000
"""Most files one artifact directory may hold."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._()=, +-]")


def artifacts_root() -> Path:
    """Where artifacts are copied: ``$WFE_ARTIFACTS_DIR`` or ``./.wfe/artifacts``."""
    configured = os.environ.get("WFE_ARTIFACTS_DIR")
    return Path(configured) if configured else Path.cwd() / ".wfe" / "artifacts"


def safe_part(name: str) -> str:
    """``name`` as one path component (step names are free text)."""
    part = _UNSAFE.sub("_", name)[:200]
    return "_" if part in ("", ".", "..") else part


def artifact_scope(data: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """``${{ artifacts.STEP.NAME }}`` values: the recorded artifacts of earlier steps. A
    matrix instance's are also under its step's own name (the last one recorded)."""
    scope: dict[str, dict[str, str]] = {}
    steps = data.get(STEPS_KEY)
    if not isinstance(steps, Mapping):
        return scope
    for name, record in steps.items():
        found = record.get(ARTIFACTS_KEY) if isinstance(record, Mapping) else None
        if isinstance(found, Mapping):
            paths = {str(k): str(v) for k, v in found.items()}
            scope[str(name)] = paths
            base = str(record.get("step", "")) if isinstance(record, Mapping) else ""
            if base and base != name:
                scope.setdefault(base, {}).update(paths)
    return scope


def _check_source(workdir: Path, relative: str) -> Path:
    """The artifact's path, refusing symbolic links on the way and paths outside."""
    here = workdir
    for part in Path(relative).parts:
        if part in ("", "."):
            continue
        here = here / part
        try:
            mode = here.lstat().st_mode
        except FileNotFoundError:
            raise StepError(f"artifact {relative!r} does not exist (looked for {here})") from None
        if stat.S_ISLNK(mode):
            raise StepError(
                f"artifact {relative!r}: {here} is a symbolic link; artifacts are copied only "
                "from real files and directories inside the working directory"
            )
    root = workdir.resolve()
    if not here.resolve().is_relative_to(root):
        raise StepError(f"artifact {relative!r} is outside the working directory {root}")
    return here


def _copy(source: Path, dest: Path, relative: str) -> None:
    if dest.exists() or dest.is_symlink():
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        else:
            dest.unlink()
    mode = source.lstat().st_mode
    if stat.S_ISREG(mode):
        shutil.copy2(source, dest, follow_symlinks=False)
        return
    if not stat.S_ISDIR(mode):
        raise StepError(f"artifact {relative!r} is neither a regular file nor a directory")
    count = 0
    for current, dirs, files in os.walk(source, followlinks=False):
        for entry in (*dirs, *files):
            path = Path(current) / entry
            kind = path.lstat().st_mode
            if stat.S_ISLNK(kind):
                raise StepError(
                    f"artifact {relative!r} holds a symbolic link ({path}); artifacts are "
                    "copied only from real files and directories"
                )
            if not (stat.S_ISDIR(kind) or stat.S_ISREG(kind)):
                raise StepError(f"artifact {relative!r} holds {path}, not a regular file")
            count += 1
            if count > MAX_ARTIFACT_FILES:
                raise StepError(
                    f"artifact {relative!r} holds more than {MAX_ARTIFACT_FILES:,} entries"
                )
    shutil.copytree(source, dest, symlinks=True)


def _collect(
    specs: Sequence[ArtifactSpec], workdir: Path, workflow_id: str, step: str
) -> dict[str, str]:
    target = artifacts_root() / safe_part(workflow_id) / safe_part(step)
    target.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}
    for spec in specs:
        source = _check_source(workdir, spec.path)
        dest = target / spec.name
        _copy(source, dest, spec.path)
        out[spec.name] = str(dest.resolve())
    return out


async def collect_artifacts(
    specs: Sequence[ArtifactSpec],
    workdir: Path | None,
    workflow_id: str,
    step: str,
    data: dict[str, Any],
    base_step: str = "",
) -> None:
    """Copy the step's artifacts and record them with the step's record (``base_step``:
    the matrix step ``step`` is an instance of)."""
    base = workdir if workdir is not None else Path.cwd()
    found = await trio.to_thread.run_sync(_collect, specs, base, workflow_id, step)
    steps = data.get(STEPS_KEY)
    record = steps.get(step) if isinstance(steps, dict) else None
    record = dict(record) if isinstance(record, dict) else {}
    record[ARTIFACTS_KEY] = found
    if base_step and base_step != step:
        record["step"] = base_step
    record_step(data, step, record)
