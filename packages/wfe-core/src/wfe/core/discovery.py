"""Find providers by URL scheme through entry points; an explicit object always wins.

Each provider distribution registers factories under an entry-point group whose names
are URL schemes, for example ``[project.entry-points."wfe.persistence"] sqlite =
"wfe.sqlite:SqlitePersistenceProvider"``. A factory is any callable (a class, a
function) taking ``(url: str, **options)`` and returning the provider: ``url`` is the
whole URL as the user wrote it, ``options`` the keyword arguments given with it
(``WorkflowHostBuilder().persistence("sqlite:///wfe.db", create_parents=True)``); the
result must satisfy the group's protocol (:data:`EXPECTED_PROTOCOLS`). Third parties
extend wfe the same way: no list of backends is hard-coded here.
"""

from __future__ import annotations

import functools
import importlib.metadata
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from ._errors import ConfigurationError, ProviderNotFoundError, WfeError
from ._redact import redact_url
from .installation import install_command
from .protocols import DistributedLockProvider, PersistenceProvider, QueueProvider, SearchIndex

#: What each entry-point group must produce (groups not listed are not checked).
EXPECTED_PROTOCOLS: dict[str, type] = {
    "wfe.persistence": PersistenceProvider,
    "wfe.locks": DistributedLockProvider,
    "wfe.queues": QueueProvider,
    "wfe.search": SearchIndex,
}

#: The distribution that provides each well-known scheme.
DISTRIBUTIONS: dict[str, str] = {
    "memory": "wfe-core",
    "sqlite": "wfe-sqlite",
    "postgresql": "wfe-postgres",
    "postgres": "wfe-postgres",
    "valkey": "wfe-valkey",
    "redis": "wfe-valkey",
    "opensearch": "wfe-opensearch",
    "shell": "wfe-yaml",
    "deno": "wfe-yaml[deno]",
    "workflow": "wfe-yaml",
}


@functools.cache
def _group(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def clear_cache() -> None:
    """Forget cached entry points (after installing a distribution at run time)."""
    _group.cache_clear()


def installed_schemes(group: str) -> list[str]:
    """The names (URL schemes) registered under ``group``, sorted."""
    return sorted(_group(group))


def scheme_of(spec: str) -> str:
    """The scheme of a provider URL; a spec without ``://`` is the scheme itself."""
    scheme = spec.split("://", 1)[0] if "://" in spec else spec
    return scheme.strip().lower()


def _not_found(group: str, name: str, what: str) -> ProviderNotFoundError:
    installed = ", ".join(installed_schemes(group)) or "none"
    base = name.split("+", 1)[0]
    hint = ""
    dist = DISTRIBUTIONS.get(name) or DISTRIBUTIONS.get(base)
    if dist is not None:
        try:
            importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            hint = f"; install it with: {install_command(dist)}"
        else:
            hint = f"; {dist} is installed but has no {group} provider for it in this release"
    return ProviderNotFoundError(
        f"no {what} {name!r} in entry-point group {group!r} (installed: {installed}){hint}"
    )


def load_entry_point(group: str, name: str) -> Any:
    """The object the entry point ``name`` of ``group`` refers to.

    Raises :class:`ProviderNotFoundError` when nothing is registered under that name
    and :class:`ConfigurationError` when the registered object cannot be imported.
    """
    ep = _group(group).get(name)
    if ep is None:
        raise _not_found(group, name, "entry point")
    try:
        return ep.load()
    except Exception as exc:
        raise ConfigurationError(
            f"entry point {name!r} of group {group!r} ({ep.value}) failed to load: {exc}"
        ) from exc


def load_provider(group: str, spec: str | object, **options: Any) -> object:
    """The provider for ``spec``: the object itself if it is not a string, else the
    result of the factory registered in ``group`` under the URL's scheme, called as
    ``factory(url, **options)`` and checked against the group's protocol.
    """
    if not isinstance(spec, str):
        return spec
    if not spec.strip():
        raise ConfigurationError(f"empty provider URL for entry-point group {group!r}")
    scheme = scheme_of(spec)
    candidates = _group(group)
    name = scheme if scheme in candidates else scheme.split("+", 1)[0]
    if name not in candidates:
        raise _not_found(group, scheme, "provider for URL scheme")
    factory = load_entry_point(group, name)
    try:
        provider: object = factory(spec, **options)
    except WfeError as exc:
        # A provider's message may quote its URL: never with the password.
        exc.args = tuple(redact_url(a, spec) if isinstance(a, str) else a for a in exc.args)
        raise
    except Exception as exc:
        raise ConfigurationError(
            f"provider {name!r} of group {group!r} could not be created from "
            f"{redact_url(repr(spec), spec)}: {type(exc).__name__}: "
            f"{redact_url(str(exc), spec)}"
        ) from exc
    expected = EXPECTED_PROTOCOLS.get(group)
    if expected is not None and not isinstance(provider, expected):
        raise ConfigurationError(
            f"entry point {name!r} of group {group!r} returned "
            f"{type(provider).__qualname__}, which is not a {expected.__name__}"
        )
    return provider


__all__ = [
    "DISTRIBUTIONS",
    "EXPECTED_PROTOCOLS",
    "clear_cache",
    "installed_schemes",
    "load_entry_point",
    "load_provider",
    "scheme_of",
]
