"""Errors of Deno steps, and their messages built from what the prelude reported."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

from wfe.core import StepError

DenoErrorKind = Literal["exception", "permission", "timeout", "missing", "crash"]

# Which `permissions:` key grants what Deno's "--allow-<name>" flag would.
_GRANT_HINTS = {
    "read": "list the path under the step's `permissions.read`",
    "write": "list the path under the step's `permissions.write`",
    "net": "list the host under the step's `permissions.net`",
    "env": "list the variable under the step's `permissions.env`",
    "run": "set the step's `permissions.run: true`",
    "import": "list the host under `permissions.net` and set `permissions.dynamic_import: true`",
}
_RUN_AGAIN = re.compile(r",? run again with the --allow-(\w+) flag\.?")
_REQUIRES = re.compile(r"Requires (\w+) access to")
_NAMED_ERROR = re.compile(r"^\w*Error: ")
# Refusals Deno phrases as load errors rather than NotCapable; they are sandbox denials.
_NO_REMOTE = re.compile(
    r'A remote specifier was requested: "([^"]+)", but --no-remote is specified\.?'
)
_NO_NPM = re.compile(r"npm specifiers were requested; but --no-npm is specified")


class DenoStepError(StepError):
    """A Deno step failed; ``kind`` says how.

    ``"exception"``: the script threw (``line``/``column`` locate it in the script);
    ``"permission"``: the sandbox denied something the script tried;
    ``"timeout"``: the step ran past its timeout and was killed;
    ``"missing"``: the ``deno`` distribution is not installed;
    ``"crash"``: Deno exited abnormally without reporting an exception.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: DenoErrorKind,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: DenoErrorKind = kind
        self.line = line
        self.column = column


def _sandbox_refusal(message: str) -> str | None:
    """Rewrite a load error that is really a sandbox denial; None if it is not one."""
    remote = _NO_REMOTE.search(message)
    if remote is not None:
        return (
            f"importing remote code from {remote.group(1)} is not allowed ("
            f"{_GRANT_HINTS['import']})"
        )
    if _NO_NPM.search(message):
        return "npm packages are not available to Deno steps (vendor the code as a local module)"
    return None


def _permission_hint(message: str) -> str:
    match = _RUN_AGAIN.search(message)
    if match is None:
        return message
    flag = match.group(1)
    hint = _GRANT_HINTS.get(flag, f"wfe does not grant Deno's --allow-{flag}")
    return _RUN_AGAIN.sub("", message).rstrip() + f" ({hint})"


def _locate(texts: Iterable[str], script_url: str) -> tuple[int | None, int | None]:
    pattern = re.compile(re.escape(script_url) + r":(\d+):(\d+)")
    for text in texts:
        match = pattern.search(text)
        if match is not None:
            return int(match.group(1)), int(match.group(2))
    return None, None


def error_from_record(record: dict[str, Any], *, script_url: str, display: str) -> DenoStepError:
    """Build the step error for an ``error`` record sent by the prelude."""
    name = str(record.get("name") or "")
    message = str(record.get("message") or "").replace(script_url, display)
    stack = str(record.get("stack") or "")
    line, column = _locate((stack, str(record.get("message") or "")), script_url)
    where = f" ({display} line {line}, column {column})" if line is not None else ""
    refusal = _sandbox_refusal(message)
    if refusal is not None or record.get("permission") or _REQUIRES.search(message):
        return DenoStepError(
            f"Deno step denied by its sandbox: {refusal or _permission_hint(message)}{where}",
            kind="permission",
            line=line,
            column=column,
        )
    # Deno wraps load errors ("TypeError: SyntaxError: ..."): show the inner name only.
    nested = _NAMED_ERROR.match(message) is not None
    label = f"{name}: {message}" if name and not nested else message
    return DenoStepError(
        f"Deno step raised {label}{where}", kind="exception", line=line, column=column
    )


def crash_error(returncode: int, stderr_tail: Iterable[str]) -> DenoStepError:
    """Build the step error for Deno exiting badly without an exception report."""
    if returncode < 0:
        how = f"was killed by signal {-returncode}"
    else:
        how = f"exited with code {returncode}"
    tail = "\n".join(stderr_tail)
    detail = f"; stderr ends with:\n{tail}" if tail else ""
    return DenoStepError(f"Deno step {how} without reporting an exception{detail}", kind="crash")


def deno_install_hint() -> str:
    """How to install the Deno runtime, as a command that works where wfe was installed
    from; the one place every message takes it from."""
    from wfe.core.installation import install_command

    return install_command("wfe-yaml[deno]")


def missing_error(reason: str) -> DenoStepError:
    """Build the step error for a missing Deno runtime."""
    return DenoStepError(
        f"Deno steps need the Deno runtime, which is not available ({reason}): "
        + deno_install_hint(),
        kind="missing",
    )
