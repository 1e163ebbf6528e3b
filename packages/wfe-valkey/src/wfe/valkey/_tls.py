"""TLS options of a ``valkeys://`` / ``rediss://`` URL, checked before any connection, and
the hints that turn a failed handshake into an error saying what to change.

The client is valkey-py's ``SSLConnection``. Two defaults differ from valkey-py's: the
server's certificate must match the URL's host (``ssl_check_hostname`` is on whenever
certificates are required), and a file named by an option must exist when the provider
is built, so a typo in a path is reported naming the option, not as a failed connection.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wfe.core import ConfigurationError

TLS_OPTIONS = (
    "ssl_ca_certs",
    "ssl_ca_path",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_cert_reqs",
    "ssl_check_hostname",
)
_CERT_REQS = ("none", "optional", "required")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def read_bool(value: object, what: str, label: str) -> bool:
    """``value`` (a bool, or a URL parameter's text) as a bool, or an error naming ``what``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE
    raise ConfigurationError(f"{what} for {label} must be true or false, got {value!r}")


def tls_options(
    chosen: Mapping[str, object], *, tls: bool, label: str
) -> tuple[tuple[str, Any], ...]:
    """The ``SSLConnection`` keywords for the options in ``chosen`` (URL parameters and
    keywords, keywords already winning), validated; empty without TLS."""
    given = {k: v for k, v in chosen.items() if v is not None}
    if not tls:
        if given:
            raise ConfigurationError(
                f"{', '.join(sorted(given))} for {label} only apply to TLS: "
                "use a valkeys:// or rediss:// URL"
            )
        return ()
    out: dict[str, Any] = {}
    for name, kind in (
        ("ssl_ca_certs", "file"),
        ("ssl_ca_path", "directory"),
        ("ssl_certfile", "file"),
        ("ssl_keyfile", "file"),
    ):
        if name in given:
            out[name] = _existing(given[name], name, kind, label)
    if "ssl_keyfile" in out and "ssl_certfile" not in out:
        raise ConfigurationError(
            f"ssl_keyfile for {label} needs ssl_certfile (the client certificate it belongs to)"
        )
    reqs = given.get("ssl_cert_reqs", "required")
    if not isinstance(reqs, str) or reqs.lower() not in _CERT_REQS:
        raise ConfigurationError(
            f"ssl_cert_reqs for {label} must be one of {', '.join(_CERT_REQS)}, got {reqs!r}"
        )
    out["ssl_cert_reqs"] = reqs.lower()
    required = out["ssl_cert_reqs"] == "required"
    check = read_bool(given.get("ssl_check_hostname", required), "ssl_check_hostname", label)
    if check and not required:
        raise ConfigurationError(
            f"ssl_check_hostname for {label} needs ssl_cert_reqs=required "
            "(a certificate that is not verified cannot vouch for a host name)"
        )
    out["ssl_check_hostname"] = check
    return tuple(sorted(out.items()))


def _existing(value: object, name: str, kind: str, label: str) -> str:
    if not isinstance(value, str | Path) or not str(value):
        raise ConfigurationError(f"{name} for {label} must be a path, got {value!r}")
    path = Path(value).expanduser()
    if not (path.is_dir() if kind == "directory" else path.is_file()):
        raise ConfigurationError(f"{name} for {label} names no readable {kind}: {str(path)!r}")
    return str(path)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the errors behind it (valkey-py wraps the socket's error as context;
    its cluster client wraps that once more)."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 6:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def ssl_error_of(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind a driver's connection error, if any."""
    return next((e for e in _chain(exc) if isinstance(e, ssl.SSLError)), None)


def tls_hint(exc: BaseException, *, tls: bool) -> str:
    """What to change when a connection failed for a TLS reason ("" if none is apparent)."""
    error = ssl_error_of(exc)
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            "; the server's certificate was not accepted: set ssl_ca_certs to the CA that "
            "signed it, and connect by a host name the certificate names "
            "(or ssl_check_hostname=false)"
        )
    if error is not None and "CERTIFICATE_REQUIRED" in str(error):
        return "; the server asks for a client certificate: set ssl_certfile and ssl_keyfile"
    if isinstance(error, ssl.SSLEOFError) or (tls and "EOF occurred in violation" in str(exc)):
        # What a server requiring client certificates looks like when it hangs up
        # before its alert is read.
        return (
            "; the server ended the TLS session at once: if it requires client "
            "certificates, set ssl_certfile and ssl_keyfile"
        )
    if error is not None and "WRONG_VERSION_NUMBER" in str(error):
        return "; the server does not speak TLS on this port: use valkey:// or redis://"
    text = str(exc)
    if not tls and (
        any(isinstance(e, ConnectionResetError) for e in _chain(exc)) or "closed by server" in text
    ):
        return (
            "; a server that accepts only TLS drops plain connections like this: "
            "if it uses TLS, use valkeys:// or rediss://"
        )
    if tls and "Timeout" in text:
        return "; if the server does not speak TLS on this port, use valkey:// or redis://"
    return ""
