"""A shell script with its ``${{ data.* }}`` expressions rewritten to quoted references to
environment variables carrying the values (see :mod:`wfe.yaml._scanner` for where
that is safe), and the limits of what such a variable can carry."""

from __future__ import annotations

import functools
from typing import Any

from ._interpolation import (
    ENV_PREFIX,
    InterpolationError,
    parse_expression,
    resolve_expression,
    to_text,
)
from ._scanner import COMMENT, DOUBLE, HEREDOC, SINGLE, Site, scan


def render_shell(script: str, data: Any, *, shell: str | None = None) -> tuple[str, dict[str, str]]:
    """``script`` with each data expression rewritten to a quoted variable reference,
    and the environment variables carrying the values.

    Bare (also inside ``$(...)`` or backticks) → ``"${V}"``, inside double quotes or an
    unquoted heredoc → ``${V}``, inside single quotes → ``'"${V}"'``; expressions in
    comments are left alone. Raises :class:`InterpolationError` for an expression where
    a value could become code (see :func:`scan`), for a name missing from ``data``, and
    for a value no environment variable can carry (a NUL byte, or too large).
    """
    env: dict[str, str] = {}
    out: list[str] = []
    last = 0
    for site in _sites(script, shell):
        if site.context == COMMENT:
            continue
        if site.problem is not None:
            raise InterpolationError(site.describe(script))
        parsed = parse_expression(site.text[3:-2])
        assert parsed is not None
        name = f"{ENV_PREFIX}{len(env) + 1}"
        env[name] = env_value(site.text, to_text(resolve_expression(parsed[0], parsed[1], data)))
        if site.context == SINGLE:
            ref = f"'\"${{{name}}}\"'"
        elif site.context in (DOUBLE, HEREDOC):
            ref = f"${{{name}}}"
        else:
            ref = f'"${{{name}}}"'
        out.append(script[last : site.start])
        out.append(ref)
        last = site.end
    out.append(script[last:])
    return "".join(out), env


@functools.lru_cache(maxsize=1024)
def _sites(script: str, shell: str | None) -> tuple[Site, ...]:
    """The expressions of ``script`` (a step's ``run:``, the same text at every run of
    the step): scanned once per process. The scan depends on the text and the shell
    only, not on the data, and a site is immutable."""
    if "${{" not in script:
        return ()  # nothing to rewrite (the scanner only records ``${{`` sites)
    return tuple(scan(script, shell))


MAX_ENV_VALUE = 100_000
"""Longest value passed in one environment variable (Linux refuses strings over 128 KiB)."""


def env_value(what: str, text: str) -> str:
    """``text`` if an environment variable can carry it; else an
    :class:`InterpolationError` naming ``what`` and the way out (``$WFE_DATA``)."""
    if "\0" in text:
        raise InterpolationError(
            f"{what}: the value holds a NUL byte, which no environment variable or "
            "argument can carry; read it from the JSON file named by $WFE_DATA"
        )
    if len(text) > MAX_ENV_VALUE:
        raise InterpolationError(
            f"{what}: the value has {len(text):,} characters, more than the "
            f"{MAX_ENV_VALUE:,} an environment variable may carry; read it from the JSON "
            "file named by $WFE_DATA"
        )
    return text
