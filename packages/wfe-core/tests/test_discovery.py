"""Provider discovery by URL scheme through entry points."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import EntryPoint
from typing import Any

import pytest

from wfe.core import ConfigurationError, ProviderNotFoundError, discovery
from wfe.core.discovery import installed_schemes, load_entry_point, load_provider, scheme_of
from wfe.core.installation import install_command
from wfe.core.memory import (
    MemoryLockProvider,
    MemoryPersistenceProvider,
    MemoryQueueProvider,
    MemorySearchIndex,
)

GROUP = "wfe.persistence"


@pytest.fixture
def fake_group(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[EntryPoint]]:
    """Entry points of the group ``wfe.persistence`` replaced by the list yielded."""
    registered: list[EntryPoint] = []

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        return [ep for ep in registered if ep.group == group]

    monkeypatch.setattr(discovery, "entry_points", fake_entry_points)
    discovery.clear_cache()
    yield registered
    discovery.clear_cache()


@pytest.mark.parametrize(
    ("group", "cls"),
    [
        ("wfe.persistence", MemoryPersistenceProvider),
        ("wfe.locks", MemoryLockProvider),
        ("wfe.queues", MemoryQueueProvider),
        ("wfe.search", MemorySearchIndex),
    ],
)
@pytest.mark.parametrize("spec", ["memory", "memory://", "MEMORY://anything"])
def test_memory_scheme_resolves_through_installed_entry_points(
    group: str, cls: type, spec: str
) -> None:
    assert isinstance(load_provider(group, spec), cls)
    assert "memory" in installed_schemes(group)


def test_options_are_passed_to_the_factory() -> None:
    queues = load_provider("wfe.queues", "memory://", visibility_timeout=2.5)
    assert isinstance(queues, MemoryQueueProvider)
    assert queues.visibility_timeout == 2.5


def test_explicit_object_wins_over_discovery() -> None:
    store = MemoryPersistenceProvider()
    assert load_provider("wfe.persistence", store) is store
    marker = object()
    assert load_provider("no.such.group", marker) is marker


@pytest.mark.parametrize(
    ("spec", "dist"),
    [
        ("postgresql://user@host/db", "wfe-postgres"),
        ("postgres://host/db", "wfe-postgres"),
        ("valkey://localhost:6379/0", "wfe-valkey"),
        ("redis://localhost", "wfe-valkey"),
        ("opensearch://localhost:9200", "wfe-opensearch"),
        ("sqlite:///wfe.db", "wfe-sqlite"),
    ],
)
def test_unknown_scheme_names_group_installed_schemes_and_distribution(
    fake_group: list[EntryPoint], spec: str, dist: str
) -> None:
    fake_group.append(
        EntryPoint(
            "memory", "wfe.core.memory:MemoryPersistenceProvider.from_url", "wfe.persistence"
        )
    )
    with pytest.raises(ProviderNotFoundError) as info:
        load_provider("wfe.persistence", spec)
    message = str(info.value)
    assert scheme_of(spec) in message
    assert "wfe.persistence" in message
    assert "installed: memory" in message
    # Either how to install the distribution, or that the installed one lacks it.
    assert (
        f"install it with: {install_command(dist)}" in message
        or f"{dist} is installed but has no" in message
    )


def test_unknown_scheme_without_a_known_distribution(fake_group: list[EntryPoint]) -> None:
    with pytest.raises(ProviderNotFoundError, match=r"'ftp'.*installed: none") as info:
        load_provider("wfe.locks", "ftp://x")
    assert "install it with" not in str(info.value)


def test_factory_returning_the_wrong_kind_of_object_is_a_configuration_error(
    fake_group: list[EntryPoint],
) -> None:
    fake_group.append(EntryPoint("bogus", "builtins:str", "wfe.persistence"))
    with pytest.raises(ConfigurationError, match=r"'bogus'.*str.*not a PersistenceProvider"):
        load_provider("wfe.persistence", "bogus://x")


def test_factory_failure_is_wrapped_with_the_url(fake_group: list[EntryPoint]) -> None:
    fake_group.append(EntryPoint("bogus", "builtins:int", "wfe.persistence"))
    with pytest.raises(ConfigurationError, match=r"bogus://x.*ValueError") as info:
        load_provider("wfe.persistence", "bogus://x")
    assert isinstance(info.value.__cause__, ValueError)


def test_entry_point_that_cannot_be_imported(fake_group: list[EntryPoint]) -> None:
    fake_group.append(EntryPoint("gone", "wfe_no_such_module:factory", "wfe.persistence"))
    with pytest.raises(ConfigurationError, match="failed to load"):
        load_provider("wfe.persistence", "gone://")


def test_driver_suffix_falls_back_to_the_base_scheme(fake_group: list[EntryPoint]) -> None:
    fake_group.append(
        EntryPoint("memory", "wfe.core.memory:MemoryLockProvider.from_url", "wfe.locks")
    )
    assert isinstance(load_provider("wfe.locks", "memory+fast://"), MemoryLockProvider)


def test_unchecked_groups_return_whatever_the_factory_builds(
    fake_group: list[EntryPoint],
) -> None:
    fake_group.append(EntryPoint("text", "builtins:str", "wfe.yaml.step_types"))
    assert load_provider("wfe.yaml.step_types", "text://a") == "text://a"
    assert load_entry_point("wfe.yaml.step_types", "text") is str
    assert installed_schemes("wfe.yaml.step_types") == ["text"]
    with pytest.raises(ProviderNotFoundError, match=r"'deno'.*wfe.yaml.step_types"):
        load_entry_point("wfe.yaml.step_types", "deno")


def test_empty_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="empty provider URL"):
        load_provider("wfe.persistence", "  ")


@pytest.mark.parametrize(
    ("spec", "scheme"),
    [("memory", "memory"), ("sqlite://:memory:", "sqlite"), ("Valkey://h:1/0", "valkey")],
)
def test_scheme_of(spec: str, scheme: str) -> None:
    assert scheme_of(spec) == scheme


def test_entry_point_lookups_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    from importlib.metadata import entry_points as real

    def counting(*, group: str) -> Any:
        calls.append(group)
        return real(group=group)

    discovery.clear_cache()
    monkeypatch.setattr(discovery, "entry_points", counting)
    try:
        load_provider("wfe.locks", "memory")
        load_provider("wfe.locks", "memory")
        installed_schemes("wfe.locks")
    finally:
        discovery.clear_cache()
    assert calls == ["wfe.locks"]
