"""``wfe validate`` says ok only for what will not fail for a reason it could see:
unknown step references, Deno syntax errors, a Deno step without Deno; and hooks
written for WFE (one step, a mapping) load unchanged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .cli_support import wfe, write

pytest.importorskip("wfe.yaml")
pytest.importorskip("wfe.sqlite")

pytestmark = pytest.mark.timeout(120)

DENO_STEP = """\
workflow:
  id: scripted
  version: 1
  steps:
    - name: js
      type: deno
      config:
        script: |
          const a = 1;
          const b = {;
"""


def test_unknown_step_references_are_issues(tmp_path: Path) -> None:
    write(
        tmp_path,
        "typo.yaml",
        """\
        workflow:
          id: typo
          version: 1
          steps:
            - name: build
              config:
                run: echo built
            - name: report
              when: {field: .steps.biuld.exit_code, equals: 0}
              config:
                run: echo "${{ data.steps.biuld.stdout }}"
        """,
    )
    result = wfe(tmp_path, "validate", "typo.yaml")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(
        ln.startswith("typo.yaml:9:") and "step 'biuld'" in ln and "did you mean 'build'" in ln
        for ln in lines
    ), result.stdout
    assert any(ln.startswith("typo.yaml:11:") and "data.steps.biuld.stdout" in ln for ln in lines)
    assert "ok" not in result.stdout


def test_a_deno_syntax_error_is_placed_in_the_file(tmp_path: Path) -> None:
    """The error names the YAML file's line and column and the script's own."""
    pytest.importorskip("deno")
    write(tmp_path, "scripted.yaml", DENO_STEP)
    result = wfe(tmp_path, "validate", "scripted.yaml")
    assert result.returncode == 1, result.stdout
    # Script line 2 is file line 10; `;` is script column 12, file column 10 + 12.
    assert "scripted.yaml:10:22: workflow.steps[0].config.script:" in result.stdout
    assert "Deno syntax error at script line 2, column 12" in result.stdout
    write(tmp_path, "s.js", "let x = 1\nx = (;\n")
    write(
        tmp_path,
        "from_file.yaml",
        """\
        workflow:
          id: from-file
          steps:
            - name: js
              type: deno
              config: {file: s.js}
        """,
    )
    from_file = wfe(tmp_path, "validate", "from_file.yaml")
    assert from_file.returncode == 1
    assert from_file.stdout.startswith("s.js:2:6: workflow.steps[0].config.file: ")
    run = wfe(tmp_path, "run", "scripted.yaml")
    assert run.returncode == 2  # nothing runs until the file validates
    assert "Deno syntax error" in run.stderr


def test_a_deno_step_without_deno_is_a_warning(tmp_path: Path) -> None:
    """Without the Deno runtime (here: an installation without the ``deno``
    distribution), the file is valid but a warning names the install command."""
    write(tmp_path, "scripted.yaml", DENO_STEP.replace("{;", "{};"))
    without_deno = (
        "import sys; sys.modules['deno'] = None\n"
        "from wfe.host._cli import main\n"
        "sys.exit(main(['validate', 'scripted.yaml']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", without_deno],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "scripted.yaml:5:7: warning: the Deno runtime is not installed" in result.stdout
    # The hint is the command that works where wfe was installed from (from a checkout,
    # the wheelhouse form, with absolute paths when run elsewhere: test_install_hints).
    hint = result.stdout.split("install it with: ", 1)[1].splitlines()[0]
    assert "pip install" in hint, hint
    assert hint.endswith("'wfe-yaml[deno]'"), hint
    assert "scripted.yaml: ok (1 warning(s))" in result.stdout


def test_hooks_take_one_step_as_in_wfe(tmp_path: Path) -> None:
    """``on_failure``/``on_success``/``ensure`` given one step (a mapping) load and run."""
    write(
        tmp_path,
        "hooks.yaml",
        """\
        workflow:
          id: hooks
          version: 1
          steps:
            - name: deploy
              config:
                run: echo deploying; exit 1
              on_failure:
                name: rollback
                config:
                  run: echo rolling back
              ensure:
                name: notify
                config:
                  run: echo notified
        """,
    )
    assert wfe(tmp_path, "validate", "hooks.yaml").stdout.strip() == "hooks.yaml: ok"
    result = wfe(tmp_path, "run", "hooks.yaml")
    assert result.returncode == 1
    assert "  deploy | rolling back" in result.stdout
    assert "  deploy | notified" in result.stdout
