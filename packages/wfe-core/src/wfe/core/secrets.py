"""Secrets given to a workflow when it starts: held in the host's memory only, keyed by
workflow id, never written to a store; and the masking of their values in text.

A host keeps a :class:`SecretVault`; ``start_workflow(..., secrets={...})`` and
``resume_workflow(id, secrets={...})`` put a workflow's secrets there, and the host
makes them the :func:`current_secrets` of every step of that workflow while it runs.
A process that was not given them (another worker, or this one after a restart) runs
the workflow's steps without them: a step that needs one stops with an error naming
it, and ``resume_workflow(id, secrets=...)`` gives them again.

Masking (:func:`mask`) replaces each secret value by ``***`` — and the forms a value
commonly takes when a step transforms it: its base64 (standard and URL-safe, with and
without padding), its JSON-escaped and percent-encoded forms, and each line of a
multi-line value. A secret embedded in a larger string before encoding (``base64 of
"user:secret"``) cannot be recognised and is not masked; nor is any other encoding.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import json
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

MASK = "***"
MIN_DERIVED = 4
"""Derived forms (and single lines) of secrets shorter than this are not masked: they
would match ordinary text."""

_NONE: Mapping[str, str] = MappingProxyType({})
_CURRENT: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "wfe_step_secrets", default=_NONE
)


class SecretVault:
    """Per-workflow secrets, in memory (see the module documentation)."""

    def __init__(self) -> None:
        self._by_workflow: dict[str, dict[str, str]] = {}

    def provide(self, workflow_id: str, secrets: Mapping[str, str]) -> None:
        """Add (or replace) secrets of ``workflow_id``."""
        for name, value in secrets.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError("secrets map names (str) to values (str)")
        if secrets:
            self._by_workflow.setdefault(workflow_id, {}).update(secrets)

    def get(self, workflow_id: str) -> Mapping[str, str]:
        """The secrets given for ``workflow_id`` (empty when none were given here)."""
        return dict(self._by_workflow.get(workflow_id, {}))

    def __bool__(self) -> bool:
        return bool(self._by_workflow)

    def forget(self, workflow_id: str) -> None:
        """Drop a finished workflow's secrets."""
        self._by_workflow.pop(workflow_id, None)


def current_secrets() -> Mapping[str, str]:
    """The secrets of the workflow whose step runs in this task (empty if none)."""
    return _CURRENT.get()


@contextlib.contextmanager
def using_secrets(secrets: Mapping[str, str]) -> Iterator[None]:
    """Make ``secrets`` the :func:`current_secrets` inside the ``with`` block."""
    token = _CURRENT.set(MappingProxyType(dict(secrets)))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def masked_forms(value: str) -> list[str]:
    """The strings :func:`mask` replaces for one secret value, longest first."""
    if not value:
        return []
    forms = {value}
    if len(value) >= MIN_DERIVED:
        raw = value.encode("utf-8", "surrogatepass")
        for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
            text = encoded.decode("ascii")
            forms.update((text, text.rstrip("=")))
        forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
        forms.add(json.dumps(value)[1:-1])
        forms.add(quote(value, safe=""))
        forms.update(line for line in value.splitlines() if len(line.strip()) >= MIN_DERIVED)
    return sorted((f for f in forms if f), key=len, reverse=True)


class Masker:
    """Replaces the values of some secrets (and their derived forms) by ``***``."""

    def __init__(self, secrets: Mapping[str, str] | Iterator[str] | list[str]) -> None:
        values = secrets.values() if isinstance(secrets, Mapping) else secrets
        forms: set[str] = set()
        for v in values:
            forms.update(masked_forms(v))
        self.forms = sorted(forms, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.forms)

    def text(self, text: str) -> str:
        """``text`` with every secret form replaced."""
        if not self.forms or not text:
            return text
        for form in self.forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def value(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string (keys too) masked."""
        if not self.forms:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.value(v) for v in value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        return value

    def in_place(self, data: Any) -> None:
        """Mask every string inside a dict or list, changing it in place."""
        if not self.forms:
            return
        if isinstance(data, dict):
            for key in list(data):
                new_key = self.text(key) if isinstance(key, str) else key
                item = data.pop(key) if new_key != key else data[key]
                if isinstance(item, dict | list):
                    self.in_place(item)
                elif isinstance(item, str):
                    item = self.text(item)
                data[new_key] = item
        elif isinstance(data, list):
            for i, item in enumerate(data):
                if isinstance(item, dict | list):
                    self.in_place(item)
                elif isinstance(item, str):
                    data[i] = self.text(item)


def mask(text: str, secrets: Mapping[str, str]) -> str:
    """``text`` with the values of ``secrets`` (and their derived forms) replaced."""
    return Masker(secrets).text(text)
