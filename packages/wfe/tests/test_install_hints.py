"""The host's install hints are commands that work where wfe was installed from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wfe.core import ConfigurationError
from wfe.core.installation import install_command
from wfe.host import asyncio as wfe_asyncio

PIPELINE = """\
workflow:
  id: hint
  version: 1
  steps:
    - name: hello
      config: {run: echo hello}
"""

# The wfe command in a fresh interpreter whose `import wfe.yaml` fails, as it does where
# the wfe-yaml distribution is not installed.
WITHOUT_WFE_YAML = (
    "import sys\n"
    "sys.modules['wfe.yaml'] = None\n"
    "from wfe.host._cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_wfe_run_without_wfe_yaml_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = tmp_path / "hint.yaml"
    pipeline.write_text(PIPELINE)
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_WFE_YAML, "run", str(pipeline)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    monkeypatch.chdir(tmp_path)  # the hint's paths are relative to where the user is
    hint = install_command("wfe[yaml]")
    assert f"YAML workflows need the wfe-yaml distribution: {hint}" in result.stderr
    # From this checkout the hint builds its wheelhouse: a bare 'wfe[yaml]' resolves nowhere.
    assert "tools/dev.py wheelhouse && " in hint


def test_asyncio_steps_without_trio_asyncio_name_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "trio_asyncio", None)  # makes the import fail
    with pytest.raises(ConfigurationError) as caught:
        wfe_asyncio.prepare()
    assert str(caught.value).endswith(install_command("wfe[asyncio]"))
