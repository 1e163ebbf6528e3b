"""Acceptance tests for DESIGN.md §7 (YAML workflows).

Validation errors: positions, completeness, nothing runs before validation.

Black-box: only the public names written in DESIGN.md §7 (``load_workflow``,
``load_workflow_from_str``, ``validate``, ``CompiledWorkflow.definition``) plus the
host of §5 are used, and behaviour is observed through workflow status, data,
recorded errors and files on disk.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from wfe.core import WfeError
from wfe.yaml import (
    load_workflow,
    validate,
)

# The helpers live in a sibling module so that they are importable by name
# (pytest's importlib mode does not put tests/ on sys.path).
sys.path.insert(0, str(Path(__file__).parent))
from yaml_acceptance_support import issues_text, one, write

# ------------------------------------------------------------------ validation


def test_validation_error_names_file_line_column_key_and_expectation(tmp_path: Path) -> None:
    path = write(
        tmp_path / "broken.yaml",
        """
        workflow:
          id: broken
          version: one
          steps:
            - name: a
              config: {run: "true"}
        """,
    )
    with pytest.raises(WfeError) as info:
        load_workflow(path, {})
    text = str(info.value)
    assert re.search(r"broken\.yaml:3:\d+", text), text
    assert "version" in text
    assert re.search(r"(?i)integer|number", text), text


def test_every_validation_error_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path / "many.yaml",
        """
        workflow:
          id: many
          steps:
            - name: a
              config: {run: "true"}
              frobnicate: 1
            - name: b
              type: shell
              config: {run: "true", timeout: soon}
            - name: c
              error_behavior: {type: explode}
              config: {run: "true"}
        """,
    )
    with pytest.raises(WfeError) as info:
        load_workflow(path, {})
    text = str(info.value)
    assert re.search(r"many\.yaml:6:\d+", text), text
    assert re.search(r"many\.yaml:9:\d+", text), text
    assert re.search(r"many\.yaml:11:\d+", text), text
    assert "frobnicate" in text
    assert "timeout" in text
    assert "explode" in text
    found = issues_text(validate(path))
    for line in (6, 9, 11):
        assert f"many.yaml:{line}:" in found


def test_yaml_syntax_error_names_position(tmp_path: Path) -> None:
    path = write(tmp_path / "syntax.yaml", "workflow:\n  id: x\n  steps: [\n")
    with pytest.raises(WfeError, match=r"syntax\.yaml:\d+:\d+"):
        load_workflow(path, {})


def test_nothing_runs_until_the_file_validates(tmp_path: Path) -> None:
    """A valid first step never runs when a later part of the file is invalid."""
    path = write(
        tmp_path / "partly.yaml",
        f"""
        workflow:
          id: partly
          steps:
            - name: good
              config: {{run: "touch {tmp_path}/ran"}}
            - name: bad
              type: no-such-type
              config: {{}}
        """,
    )
    with pytest.raises(WfeError, match="no-such-type"):
        load_workflow(path, {})
    assert not (tmp_path / "ran").exists()


def test_missing_required_keys_are_reported() -> None:
    with pytest.raises(WfeError) as info:
        one("""
            workflow:
              steps:
                - config: {run: "true"}
            """)
    text = str(info.value)
    assert "id" in text
    assert "name" in text
