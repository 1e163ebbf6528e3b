"""DenoConfig/DenoPermissions: validation of bad input and the Deno flags they grant."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from wfe.core import DefinitionError
from wfe.yaml._deno import DenoConfig, DenoPermissions


def test_nothing_is_granted_by_default() -> None:
    flags = DenoConfig(script="1").permission_flags("/tmp/chan")
    assert flags == ["--allow-write=/tmp/chan", "--no-remote", "--cached-only"]


def test_permissions_map_onto_deno_flags() -> None:
    config = DenoConfig(
        script="1",
        permissions=DenoPermissions(
            net=["api.example.test", "127.0.0.1:8080"],
            read=("/data",),
            write=("/out",),
            env=("HOME",),
            run=True,
        ),
        env={"TOKEN": "t"},
    )
    assert config.permission_flags("/chan") == [
        "--allow-net=api.example.test,127.0.0.1:8080",
        "--allow-read=/data",
        "--allow-write=/out,/chan",
        "--allow-env=HOME,TOKEN",
        "--allow-run",
        "--no-remote",
        "--cached-only",
    ]


def test_dynamic_import_allows_importing_only_from_net_hosts() -> None:
    perms = DenoPermissions(net=("cdn.example.test",), dynamic_import=True)
    flags = DenoConfig(script="1", permissions=perms).permission_flags("/c")
    assert "--allow-import=cdn.example.test" in flags
    assert "--no-remote" not in flags


def test_dynamic_import_without_net_hosts_allows_no_remote_code() -> None:
    flags = DenoConfig(
        script="1", permissions=DenoPermissions(dynamic_import=True)
    ).permission_flags("/c")
    assert "--no-remote" in flags
    assert not any(f.startswith("--allow-import") for f in flags)


def test_remote_module_host_is_the_only_import_grant() -> None:
    config = DenoConfig(
        script="1",
        modules=("https://cdn.example.test/lib.js",),
        permissions=DenoPermissions(net=("cdn.example.test", "other.test")),
    )
    assert "--allow-import=cdn.example.test:443" in config.permission_flags("/c")


def test_allows_url_matches_host_with_or_without_port() -> None:
    perms = DenoPermissions(net=("a.test", "b.test:8443", "[::1]:9000"))
    assert perms.allows_url("https://a.test/x.js")
    assert perms.allows_url("https://b.test:8443/x.js")
    assert not perms.allows_url("https://b.test/x.js")
    assert perms.allows_url("http://[::1]:9000/x.js")
    assert not perms.allows_url("https://c.test/x.js")


def test_config_is_frozen_and_keyword_only() -> None:
    config = DenoConfig(script="1", env={"A": "b"})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.script = "2"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.env["A"] = "c"  # type: ignore[index]
    with pytest.raises(TypeError):
        DenoConfig("1")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "exactly one of `script` or `file`"),
        ({"script": "1", "file": "a.ts"}, "exactly one of `script` or `file`"),
        ({"file": "a.js", "typescript": True}, "rename the file"),
        ({"file": "a.ts", "typescript": False}, "rename the file"),
        ({"script": "1", "timeout": timedelta(0)}, "positive duration"),
        ({"script": "1", "modules": ("npm:left-pad",)}, "is not supported"),
        ({"script": "1", "modules": "helpers.js"}, "single string"),
        ({"script": "1", "env": {"A=B": "x"}}, "not a valid environment variable name"),
        ({"script": "1", "env": {"A": 1}}, "must be a string"),
    ],
)
def test_bad_config_is_rejected_with_a_clear_error(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(DefinitionError, match=message):
        DenoConfig(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"net": "example.test"}, "single string"),
        ({"net": ("https://example.test/",)}, "not a host"),
        ({"read": ("/a,b",)}, "contains a comma"),
        ({"write": ("",)}, "non-empty"),
        ({"env": ("A=B",)}, "not a variable name"),
        ({"run": "yes"}, "permissions.run: expected true or false"),
        ({"dynamic_import": 1}, "permissions.dynamic_import"),
    ],
)
def test_bad_permissions_are_rejected_with_a_clear_error(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(DefinitionError, match=message):
        DenoPermissions(**options)  # type: ignore[arg-type]


def test_inline_script_language() -> None:
    assert DenoConfig(script="1").script_suffix == ".ts"
    assert DenoConfig(script="1", typescript=True).script_suffix == ".ts"
    assert DenoConfig(script="1", typescript=False).script_suffix == ".js"
