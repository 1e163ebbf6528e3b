"""``wfe`` stays a PEP 420 namespace shared by every distribution."""

from __future__ import annotations

from pathlib import Path

import pytest

import wfe
import wfe.core

REPO = Path(__file__).resolve().parents[3]


def test_wfe_is_a_namespace_package() -> None:
    assert getattr(wfe, "__file__", None) is None, "some distribution ships wfe/__init__.py"
    assert not hasattr(wfe, "__all__")
    assert type(wfe.__path__).__name__ == "_NamespacePath"


def test_wfe_spans_the_directories_of_several_distributions() -> None:
    paths = {Path(p).resolve() for p in wfe.__path__}
    if len(paths) < 2:
        pytest.skip("only wfe-core is installed here (a per-distribution nox session)")
    assert len(paths) >= 2, paths
    assert Path(wfe.core.__file__).resolve().parent.parent in paths


def test_no_distribution_in_the_repository_ships_wfe_init() -> None:
    packages = REPO / "packages"
    assert packages.is_dir(), packages
    strays = sorted(packages.glob("*/src/wfe/__init__.py"))
    assert strays == [], f"these hide every other wfe distribution: {strays}"
    assert len(list(packages.glob("*/src/wfe"))) >= 2
