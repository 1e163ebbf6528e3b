"""``--secret NAME`` (the caller's environment variable NAME) and ``--secret NAME=@FILE``
(the file's content, one trailing newline removed): secrets for ``wfe run`` and
``wfe resume``. A value is never taken from the command line itself, where other users
of the machine can read it (``ps``). Every value given is masked in everything this
process prints, whatever prints it."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from wfe.core.secrets import Masker

from ._cli_safety import RedactingStream
from ._cli_setup import CliError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_SECRET_FILE = 1024 * 1024


def parse_secrets(items: Iterable[str]) -> dict[str, str]:
    """The secrets of ``--secret`` options, by name."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, source = item.partition("=")
        if not _NAME.match(name):
            raise CliError(
                f"--secret {name!r}: a secret name is letters, digits and _ (not starting "
                "with a digit); give --secret NAME (from $NAME) or --secret NAME=@FILE"
            )
        if sep and not source.startswith("@"):
            raise CliError(
                f"--secret {name}=...: a secret's value is never given on the command line "
                f"(other users can read it); export {name} and give --secret {name}, or "
                f"write it to a file and give --secret {name}=@FILE"
            )
        if sep:
            out[name] = _read_file(name, source[1:])
        else:
            value = os.environ.get(name)
            if value is None:
                raise CliError(
                    f"--secret {name}: the environment variable {name} is not set; export "
                    f"it, or give --secret {name}=@FILE"
                )
            out[name] = value
    return out


def _read_file(name: str, path: str) -> str:
    file = Path(path).expanduser()
    try:
        if file.stat().st_size > MAX_SECRET_FILE:
            raise CliError(f"--secret {name}=@{path}: the file is larger than 1 MiB")
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"--secret {name}=@{path}: cannot read it: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"--secret {name}=@{path}: the file is not UTF-8 text") from exc
    return text[:-1] if text.endswith("\n") else text


def declared_secrets(target: Any) -> tuple[str, ...]:
    """The secrets a (compiled YAML) workflow declares."""
    names = getattr(target, "secrets", ())
    return tuple(names) if isinstance(names, tuple) else ()


def check_secrets(workflow: str, declared: Iterable[str], given: Mapping[str, str]) -> None:
    """Every declared secret is given, and nothing else is."""
    declared = tuple(declared)
    missing = [n for n in declared if n not in given]
    if missing:
        flags = " ".join(f"--secret {n}" for n in missing)
        raise CliError(f"workflow {workflow!r} needs secret(s) {', '.join(missing)}: give {flags}")
    extra = [n for n in given if n not in declared]
    if extra:
        raise CliError(
            f"--secret {extra[0]}: workflow {workflow!r} does not declare it "
            f"(its secrets: {', '.join(declared) or 'none'}); add it to `secrets:`"
        )


def mask_output(secrets: Mapping[str, str]) -> None:
    """From now on, this process's stdout and stderr mask these values."""
    masker = Masker(secrets)
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, RedactingStream):
            stream.add_masker(masker)
