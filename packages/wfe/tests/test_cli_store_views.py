"""``wfe list``/``show``/``terminate`` on any store, and the store options of a first
day: data classes that cannot be imported, paths given as URLs, directories that do
not exist, a directory where nothing ran, a closed output pipe."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .cli_support import show_json, wfe, wfe_cmd, write

pytest.importorskip("wfe.yaml")
pytest.importorskip("wfe.sqlite")

pytestmark = pytest.mark.timeout(120)

# The README's shape: a script whose data class lives in __main__, so no other process
# can import it.
MAIN_SCRIPT = """\
import attrs
from decimal import Decimal
from wfe.core import WorkflowBuilder
from wfe.host import BlockingWorkflowHost, WorkflowHostBuilder

@attrs.define
class Order:
    total: Decimal = Decimal("0")
    approved: bool = False

definition = (
    WorkflowBuilder(Order)
    .start_with(lambda ctx: None).name("Charge")
    .wait_for("approved", "k").name("Approve")
    .build("order", 1)
)

builder = WorkflowHostBuilder().persistence("sqlite:///.wfe/wfe.db", create_parents=True)
with BlockingWorkflowHost(builder.register(definition)) as host:
    wid = host.start_workflow("order", 1, Order(total=Decimal("12.50")))
    for event in host.lifecycle_events():
        if getattr(event, "step_name", None) == "Approve":
            break
    print(wid)
"""

HELLO = """\
workflow:
  id: hello
  version: 1
  steps:
    - name: greet
      config:
        run: echo hello
"""


def _main_class_workflow(tmp_path: Path) -> str:
    write(tmp_path, "app.py", MAIN_SCRIPT)
    made = subprocess.run(
        [sys.executable, "app.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def test_list_show_terminate_never_import_the_data_class(tmp_path: Path) -> None:
    """A workflow whose data is an attrs class from ``__main__`` is listed, shown (its
    stored JSON, saying the type cannot be imported) and terminated by id; other
    workflows of the store stay visible."""
    wid = _main_class_workflow(tmp_path)
    write(tmp_path, "hello.yaml", HELLO)
    assert wfe(tmp_path, "run", "hello.yaml").returncode == 0

    listed = wfe(tmp_path, "list")
    assert listed.returncode == 0, listed.stderr
    assert wid in listed.stdout
    assert "hello v1" in listed.stdout

    shown = wfe(tmp_path, "show", wid)
    assert shown.returncode == 0, shown.stderr
    assert '"total": "12.50"' in shown.stdout
    assert "__main__:Order" in shown.stdout
    assert "cannot be imported" in shown.stdout
    data = show_json(tmp_path, wid)
    assert data["data"] == {"total": "12.50", "approved": False}
    assert data["data_type"] == "__main__:Order"
    assert data["data_type_importable"] is False

    terminated = wfe(tmp_path, "terminate", wid)
    assert terminated.returncode == 0, terminated.stderr
    after = show_json(tmp_path, wid)
    assert after["status"] == "TERMINATED"
    assert after["data"] == {"total": "12.50", "approved": False}  # written back unchanged


def test_a_bare_path_as_store_suggests_the_sqlite_url(tmp_path: Path) -> None:
    result = wfe(tmp_path, "list", "--store", "/srv/x.db")
    assert result.returncode == 2
    assert "--store sqlite:////srv/x.db" in result.stderr
    relative = wfe(tmp_path, "list", "--store", "state/x.db")
    assert "--store sqlite:///state/x.db" in relative.stderr


def test_a_missing_store_directory_says_how_to_create_it(tmp_path: Path) -> None:
    """The provider's ``create_parents=True`` cannot be written on the command line: the
    error gives a command that can be followed, and a typo creates no directories."""
    write(tmp_path, "hello.yaml", HELLO)
    store = ["--store", "sqlite:///new/dir/x.db"]
    result = wfe(tmp_path, "run", "hello.yaml", *store)
    assert result.returncode == 3
    assert f"mkdir -p {tmp_path / 'new' / 'dir'}" in result.stderr
    assert "create_parents" not in result.stderr
    assert not (tmp_path / "new").exists()
    (tmp_path / "new" / "dir").mkdir(parents=True)
    assert wfe(tmp_path, "run", "hello.yaml", *store).returncode == 0
    assert "hello v1" in wfe(tmp_path, "list", *store).stdout


def test_reading_commands_create_nothing(tmp_path: Path) -> None:
    """``wfe list`` where nothing ran lists nothing and leaves no ``.wfe/``; ``show``
    of a missing store is a store error (exit 3) naming it."""
    listed = wfe(tmp_path, "list")
    assert listed.returncode == 0, listed.stderr
    assert wfe(tmp_path, "list", "--json").stdout.strip() == "[]"
    shown = wfe(tmp_path, "show", "abc")
    assert shown.returncode == 3
    assert "no store at .wfe/wfe.db" in shown.stderr
    missing = wfe(tmp_path, "list", "--store", "sqlite:///elsewhere.db")
    assert missing.returncode == 3
    assert not (tmp_path / ".wfe").exists()
    assert not (tmp_path / "elsewhere.db").exists()


def test_a_closed_output_pipe_ends_quietly(tmp_path: Path) -> None:
    """``wfe show ID | head``: when the reader goes away, no BrokenPipeError traceback."""
    write(tmp_path, "hello.yaml", HELLO)
    assert wfe(tmp_path, "run", "hello.yaml").returncode == 0
    proc = subprocess.Popen(
        wfe_cmd("list", "--json"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # before the command writes anything
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err


def test_help_loads_neither_the_engine_nor_trio(tmp_path: Path) -> None:
    """``wfe --help`` stays instant: importing the command loads no engine module."""
    probe = textwrap.dedent(
        """\
        import sys
        import wfe.host._cli as cli
        heavy = sorted(m for m in ("trio", "rich", "wfe.core", "attrs") if m in sys.modules)
        print(",".join(heavy))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
    helped = wfe(tmp_path, "--help")
    assert helped.returncode == 0
    assert "run" in helped.stdout
    assert "validate" in helped.stdout
