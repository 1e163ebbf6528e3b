"""Who may act, and the headers that keep the pages' content inert.

Reading needs nothing (the dashboard binds loopback by default). Actions need the
access token: either as ``Authorization: Bearer TOKEN`` (scripts; a browser never sends
that header across sites) or through the login form, which sets an ``HttpOnly``,
``SameSite=Strict`` session cookie. A request authenticated by the cookie must also
carry the session's CSRF token in ``X-CSRF-Token`` (the page reads it from
``/api/session``, which other origins cannot read), and its ``Origin``, when sent, must
be the dashboard's own.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from typing import Any

import attrs
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "wfe_session"
CSRF_HEADER = "x-csrf-token"
MAX_SESSIONS = 1000
"""Sessions kept (the oldest is forgotten first): a bound on memory, not a policy."""

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def new_token() -> str:
    """A fresh access token (printed by ``wfe ui --allow-actions`` at start-up)."""
    return secrets.token_urlsafe(24)


@attrs.define
class Sessions:
    """Logged-in browser sessions: session id → CSRF token, in this process only."""

    token: str | None
    _csrf: dict[str, str] = attrs.field(factory=dict)

    def check_token(self, given: str) -> bool:
        """Whether ``given`` is the access token (compared in constant time)."""
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def open(self) -> tuple[str, str]:
        """A new session: its id (the cookie) and its CSRF token."""
        while len(self._csrf) >= MAX_SESSIONS:
            self._csrf.pop(next(iter(self._csrf)))
        session, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self._csrf[session] = csrf
        return session, csrf

    def close(self, session: str | None) -> None:
        if session is not None:
            self._csrf.pop(session, None)

    def csrf_of(self, request: Request) -> str | None:
        """The CSRF token of the request's session, if it has a live one."""
        session = request.cookies.get(SESSION_COOKIE)
        return None if session is None else self._csrf.get(session)

    def authorise(self, request: Request) -> str | None:
        """``None`` when the request may act, else why not."""
        bearer = request.headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            return None if self.check_token(bearer[7:].strip()) else "wrong access token"
        csrf = self.csrf_of(request)
        if csrf is None:
            return "log in with the access token first"
        given = request.headers.get(CSRF_HEADER, "")
        if not given or not hmac.compare_digest(given.encode(), csrf.encode()):
            return "missing or wrong CSRF token"
        return None


def same_origin(request: Request) -> bool:
    """Whether a state-changing request came from the dashboard's own pages (a request
    without ``Origin`` is not from a cross-site page: browsers send it on every
    cross-origin POST)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


class SecurityHeaders:
    """Adds :data:`HEADERS` to every response and refuses requests whose ``Host`` is not
    one of ``allowed_hosts`` (so a DNS-rebinding page cannot read the dashboard)."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] | None) -> None:
        self.app = app
        self.allowed = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.allowed is not None:
            host = _host_of(scope)
            if host not in self.allowed:
                await _refuse(send, f"host {host!r} is not served here")
                return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def _host_of(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"host":
            text: str = value.decode("latin-1").lower()
            if text.startswith("["):
                return text.split("]", 1)[0] + "]"
            return text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    return ""


async def _refuse(send: Send, text: str) -> None:
    body = text.encode()
    headers: list[Any] = [(b"content-type", b"text/plain; charset=utf-8"), *HEADERS]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})
