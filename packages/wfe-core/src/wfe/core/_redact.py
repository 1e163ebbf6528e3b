"""Removing passwords from store URLs and from any text that may quote one."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

MASK = "***"

# scheme://user:password@host — the password runs to the last @ before the host part.
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*:)(?P<pw>[^\s/'\"]*)@")
# password=... in a query string or a libpq-style "key=value" connection string.
_SECRET_PARAM = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|pass|secret|token|access_token|api_key|apikey"
    r"|sslpassword|auth)\b\s*=\s*)(?:(?P<q>['\"])(?P<quoted>.*?)(?P=q)|(?P<bare>[^&\s'\";,]*))",
    re.IGNORECASE,
)


def redact_url(text: str, url: str | None = None) -> str:
    """``text`` with every password replaced by ``***``: the password of each
    ``scheme://user:password@host`` URL in it, and the value of ``password=`` (and
    ``token=``, ``secret=``, ...) parameters. With ``url`` (a store URL), its password
    is also removed wherever else ``text`` repeats it, raw or percent-decoded.

    ``redact_url("postgresql://app:s3cret@db/wfe")`` is
    ``"postgresql://app:***@db/wfe"``; use it on every URL and every provider error
    message before showing, logging or storing it.
    """
    secrets: list[str] = []
    if url:
        secrets.extend(_passwords_of(url))
    for m in _USERINFO.finditer(text):
        if m.group("pw"):
            secrets.append(m.group("pw"))
            secrets.append(unquote(m.group("pw")))
    for m in _SECRET_PARAM.finditer(text):
        if _value(m) and not _value(m).startswith(MASK):
            secrets.append(_value(m))
    out = _USERINFO.sub(lambda m: f"{m.group('head')}{MASK}@" if m.group("pw") else m.group(), text)
    out = _SECRET_PARAM.sub(_mask_param, out)
    # Longest first, so a secret containing a shorter one is replaced whole.
    for secret in sorted({s for s in secrets if len(s) >= 3 and s != MASK}, key=len, reverse=True):
        out = out.replace(secret, MASK)
    return out


def _value(m: re.Match[str]) -> str:
    return m.group("quoted") if m.group("q") else (m.group("bare") or "")


def _mask_param(m: re.Match[str]) -> str:
    value = _value(m)
    if not value or value.startswith(MASK):
        return m.group()  # nothing to hide, or already hidden
    quote = m.group("q") or ""
    return f"{m.group('key')}{quote}{MASK}{quote}"


def _passwords_of(url: str) -> list[str]:
    found: list[str] = []
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        password = None
    if password:
        found.extend((password, unquote(password)))
    for m in _SECRET_PARAM.finditer(url):
        if _value(m):
            found.extend((_value(m), unquote(_value(m))))
    userinfo = _USERINFO.search(url)
    if userinfo is not None and userinfo.group("pw"):
        found.extend((userinfo.group("pw"), unquote(userinfo.group("pw"))))
    return found


__all__ = ["MASK", "redact_url"]
