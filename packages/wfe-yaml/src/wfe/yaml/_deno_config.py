"""What a Deno step runs and what it may touch, and how that becomes Deno's flags."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import attrs

from wfe.core import DefinitionError

from ._limits import OutputLimits

_TS_SUFFIXES = frozenset({".ts", ".mts", ".cts", ".tsx"})
_JS_SUFFIXES = frozenset({".js", ".mjs", ".cjs", ".jsx"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        # A bare string would otherwise become a tuple of its characters.
        raise DefinitionError(f"expected a list of strings, got the single string {value!r}")
    return tuple(value)


def _no_commas(what: str) -> Any:
    # Deno splits flag values on commas and cannot escape them.
    def check(_instance: object, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
        for item in value:
            if not isinstance(item, str) or not item:
                raise DefinitionError(
                    f"permissions.{attribute.name}: expected non-empty {what} strings, got {item!r}"
                )
            if "," in item:
                raise DefinitionError(
                    f"permissions.{attribute.name}: {item!r} contains a comma, which Deno "
                    f"cannot accept in a permission list"
                )

    return check


def _check_hosts(instance: object, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    _no_commas("host")(instance, attribute, value)
    for host in value:
        if "/" in host or any(c.isspace() for c in host):
            raise DefinitionError(
                f"permissions.net: {host!r} is not a host; write `host` or `host:port` "
                f"(no scheme, no path)"
            )


def _check_env_names(
    instance: object, attribute: attrs.Attribute[Any], value: tuple[str, ...]
) -> None:
    _no_commas("variable name")(instance, attribute, value)
    for name in value:
        if "=" in name:
            raise DefinitionError(f"permissions.env: {name!r} is not a variable name")


def _check_bool(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise DefinitionError(
            f"permissions.{attribute.name}: expected true or false, got {value!r}"
        )


@attrs.frozen(kw_only=True)
class DenoPermissions:
    """What a Deno step may do; everything not listed is denied.

    ``net``: hosts (``host`` or ``host:port``) the script may connect to;
    ``read``/``write``: paths; ``env``: environment variable names;
    ``run``: may start subprocesses (which are outside the sandbox);
    ``dynamic_import``: may import code at run time from the ``net`` hosts.
    """

    net: tuple[str, ...] = attrs.field(default=(), converter=_strings, validator=_check_hosts)
    read: tuple[str, ...] = attrs.field(
        default=(), converter=_strings, validator=_no_commas("path")
    )
    write: tuple[str, ...] = attrs.field(
        default=(), converter=_strings, validator=_no_commas("path")
    )
    env: tuple[str, ...] = attrs.field(default=(), converter=_strings, validator=_check_env_names)
    run: bool = attrs.field(default=False, validator=_check_bool)
    dynamic_import: bool = attrs.field(default=False, validator=_check_bool)

    def allows_url(self, url: str) -> bool:
        """Whether ``url``'s host (with or without its port) is listed in ``net``."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"  # IPv6 literals are written bracketed in Deno's lists
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
        return host in self.net or f"{host}:{port}" in self.net


def _frozen_env(value: Mapping[str, str]) -> Mapping[str, str]:
    env = dict(value)
    for name, text in env.items():
        if not isinstance(name, str) or not name or "=" in name or "\0" in name:
            raise DefinitionError(f"env: {name!r} is not a valid environment variable name")
        if not isinstance(text, str):
            raise DefinitionError(f"env: the value of {name!r} must be a string, got {text!r}")
    return MappingProxyType(env)


def _check_timeout(_instance: object, _attribute: object, value: timedelta | None) -> None:
    if value is not None and (not isinstance(value, timedelta) or value <= timedelta(0)):
        raise DefinitionError(f"timeout: expected a positive duration, got {value!r}")


def is_remote(module: str) -> bool:
    """Whether a ``modules`` entry is fetched over the network."""
    return module.startswith(("http://", "https://"))


@attrs.frozen(kw_only=True)
class DenoConfig:
    """One Deno step: the code to run (``script`` inline or ``file``) and its sandbox.

    ``modules`` (local paths or URLs) are imported, in order, before the script.
    ``env`` sets environment variables for the process; their names are readable
    by the script without listing them in ``permissions.env``. Relative paths
    (``file``, local ``modules``) are resolved against ``working_dir``.
    ``typescript``: ``None`` infers it from ``file``'s suffix (an inline script is
    TypeScript, which also accepts plain JavaScript); ``False`` runs an inline
    script as JavaScript.
    """

    script: str | None = None
    file: str | None = None
    permissions: DenoPermissions = attrs.field(factory=DenoPermissions)
    modules: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    timeout: timedelta | None = attrs.field(default=None, validator=_check_timeout)
    env: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_env, hash=False)
    working_dir: str | None = None
    typescript: bool | None = None
    limits: OutputLimits = attrs.field(factory=OutputLimits)
    """How large one output and all outputs of the step may be."""

    def __attrs_post_init__(self) -> None:
        if (self.script is None) == (self.file is None):
            raise DefinitionError("a Deno step needs exactly one of `script` or `file`")
        if self.file is not None and self.typescript is not None:
            suffix = Path(self.file).suffix.lower()
            if (self.typescript and suffix in _JS_SUFFIXES) or (
                not self.typescript and suffix in _TS_SUFFIXES
            ):
                language = "TypeScript" if self.typescript else "JavaScript"
                raise DefinitionError(
                    f"file {self.file!r}: `typescript: {str(self.typescript).lower()}` asks for "
                    f"{language}, but Deno picks the language from the suffix {suffix!r}; "
                    f"rename the file or drop `typescript`"
                )
        for module in self.modules:
            if not isinstance(module, str) or not module:
                raise DefinitionError(f"modules: expected paths or URLs, got {module!r}")
            if module.startswith(("npm:", "jsr:", "node:")):
                raise DefinitionError(
                    f"modules: {module!r} is not supported; list a local file or an "
                    f"http(s) URL whose host is in permissions.net"
                )

    @property
    def script_suffix(self) -> str:
        """Suffix to give an inline script so Deno parses it in the right language."""
        return ".js" if self.typescript is False else ".ts"

    def import_hosts(self) -> tuple[str, ...]:
        """Hosts Deno may import code from: remote ``modules`` plus, with
        ``dynamic_import``, every ``net`` host."""
        hosts: list[str] = []
        for module in self.modules:
            if is_remote(module):
                parts = urlsplit(module)
                port = parts.port or _DEFAULT_PORTS[parts.scheme]
                hosts.append(f"{parts.hostname}:{port}")
        if self.permissions.dynamic_import:
            hosts.extend(self.permissions.net)
        return tuple(dict.fromkeys(hosts))

    def permission_flags(self, channel: str) -> list[str]:
        """Deno's permission flags for this step (nothing granted unless listed).

        ``channel`` is the result FIFO, the one path wfe itself must be able to write.
        """
        perms = self.permissions
        flags: list[str] = []
        if perms.net:
            flags.append("--allow-net=" + ",".join(perms.net))
        if perms.read:
            flags.append("--allow-read=" + ",".join(perms.read))
        flags.append("--allow-write=" + ",".join((*perms.write, channel)))
        env_names = tuple(dict.fromkeys((*perms.env, *self.env)))
        if env_names:
            flags.append("--allow-env=" + ",".join(env_names))
        if perms.run:
            flags.append("--allow-run")
        import_hosts = self.import_hosts()
        if import_hosts:
            flags.append("--allow-import=" + ",".join(import_hosts))
        else:
            # No remote code at all: not even Deno's default import allow-list or
            # modules some earlier step left in the shared cache.
            flags.extend(["--no-remote", "--cached-only"])
        return flags
