"""Durations as YAML writes them: ``500ms``, ``30s``, ``5m``, ``1h30m``, ``2h``."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")

DURATION_HELP = "a duration like 500ms, 30s, 5m, 1h30m or 2h"


def parse_duration(text: object) -> timedelta | None:
    """The duration ``text`` denotes, or ``None`` if it is not one (units in order h, m, s, ms)."""
    if not isinstance(text, str):
        return None
    match = _DURATION.match(text.strip())
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds, millis = (int(g) if g else 0 for g in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds, milliseconds=millis)


def format_duration(value: timedelta) -> str:
    """``value`` written the way YAML takes it (``1s``, ``500ms``, ``1h30m``)."""
    millis = round(value.total_seconds() * 1000)
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n]
    if millis:
        parts.append(f"{millis}ms")
    return "".join(parts)
