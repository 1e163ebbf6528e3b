"""What the ``wfe`` command needs before a host runs: arguments parsed into values, the
store, the definitions remembered next to it, and a host opened for control only."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from wfe.core import (
    ConfigurationError,
    DefinitionError,
    ProviderError,
    WfeError,
    WorkflowDefinition,
    redact_url,
)

from ._builder import WorkflowHostBuilder
from ._cli_codes import DEFAULT_STORE as DEFAULT_STORE
from ._cli_codes import EXIT_FAILED as EXIT_FAILED
from ._cli_codes import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from ._cli_codes import EXIT_OK as EXIT_OK
from ._cli_codes import EXIT_STORE as EXIT_STORE
from ._cli_codes import EXIT_USAGE as EXIT_USAGE
from ._host import WorkflowHost

DEFINITIONS_FILE = "definitions.json"


class CliError(WfeError):
    """An expected failure of the ``wfe`` command: printed without a traceback, and the
    process exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


# -- argument values -----------------------------------------------------------------


def parse_assignments(items: Iterable[str], option: str, *, typed: bool) -> dict[str, Any]:
    """``k=v`` pairs into a dict; with ``typed``, a value that parses as JSON is taken as
    that JSON value (``n=3`` is the integer 3, ``s=abc`` the string ``"abc"``)."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CliError(f"{option} {item!r}: expected NAME=VALUE")
        result[key] = parse_value(value) if typed else value
    return result


def coerce_inputs(target: Any, raw: Mapping[str, str]) -> dict[str, Any]:
    """``--input`` values typed by the workflow's declarations: a YAML workflow's
    declared input types (``version=1.10`` stays the string ``"1.10"`` for a ``string``
    input); a code-defined workflow's attrs fields annotated ``str`` keep the text;
    anything else is JSON if it parses, else the string."""
    declared: Mapping[str, Any] = getattr(target, "inputs", None) or {}
    text_fields: set[str] = set()
    data_type = getattr(target, "data_type", None)
    if data_type is not None and attrs.has(data_type):
        text_fields = {f.name for f in attrs.fields(data_type) if f.type in (str, "str")}
    out: dict[str, Any] = {}
    for name, text in raw.items():
        spec = declared.get(name)
        if spec is not None:
            out[name] = spec.type.from_text(text)
        elif name in text_fields:
            out[name] = text
        else:
            out[name] = parse_value(text)
    return out


def parse_value(text: str) -> Any:
    """``text`` as JSON if it parses, else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


# -- the store ----------------------------------------------------------------------


@attrs.frozen
class Store:
    """The store URL, its provider options, and where remembered definitions live."""

    url: str
    options: Mapping[str, Any]
    state_dir: Path
    is_default: bool

    @property
    def shown(self) -> str:
        """The URL as it may be printed: its password replaced by ``***``."""
        return redact_url(self.url)

    def hint(self) -> str:
        """The ``--store`` option to repeat in a suggested command (empty for the default;
        the password, if any, left as ``***`` to fill in)."""
        return "" if self.is_default else f" --store {self.shown}"


def _path_hint(url: str) -> str | None:
    """The ``sqlite:`` URL meant by a bare file path given as ``--store``, if it is one
    (a bare scheme such as ``memory`` is a valid spec, not a path)."""
    if "://" in url:
        return None
    looks_like_path = (
        "/" in url
        or url.startswith(("~", "."))
        or Path(url).suffix.lower() in (".db", ".sqlite", ".sqlite3")
    )
    if not looks_like_path:
        return None
    path = Path(url).expanduser()
    return f"sqlite:///{path}"


def sqlite_file(url: str) -> Path | None:
    """The file a ``sqlite:///PATH`` URL names (``None`` for other URLs and ``:memory:``)."""
    if not url.startswith("sqlite:///") or ":memory:" in url:
        return None
    return Path(url[len("sqlite:///") :].split("?", 1)[0])


def resolve_store(url: str | None, *, creates: bool = True) -> Store:
    """The store named by ``--store`` (default: ``sqlite:///.wfe/wfe.db``, its directory
    created on first use). Definitions run from files are remembered in the SQLite
    file's directory, or in ``.wfe/`` for other stores.

    ``creates``: the command may create the store (``run``, ``worker``, ``publish``).
    Without it (``list``, ``show``, ...) a missing SQLite file is an error (exit 3) and
    nothing is created. A ``--store`` file in a directory that does not exist is an
    error saying how to create it (a typo must not create directories)."""
    if url is None:
        url = DEFAULT_STORE
        is_default = True
    else:
        is_default = False
        if not url.strip():
            raise CliError("--store: empty URL")
        hint = _path_hint(url)
        if hint is not None:
            raise CliError(
                f"--store {url}: expected a store URL, not a path; "
                f"for a SQLite file write --store {hint}"
            )
    state_dir = Path(".wfe").absolute()
    options: dict[str, Any] = {}
    file = sqlite_file(url)
    if file is not None:
        state_dir = file.absolute().parent
        if not creates and not file.exists():
            where = "in this directory " if is_default else ""
            raise CliError(
                f"no store at {file} {where}(nothing has run here yet; "
                "'wfe run FILE.yaml' creates it, or pass --store URL)",
                EXIT_STORE,
            )
        if is_default:
            options["create_parents"] = True
        elif not state_dir.is_dir():
            raise CliError(
                f"store {url}: directory {state_dir} does not exist; "
                f"create it first (mkdir -p {state_dir})",
                EXIT_STORE,
            )
    return Store(url, options, state_dir, is_default)


STEP_LOG_LINES_ENV = "WFE_STEP_LOG_LINES"
"""Lines of each step attempt kept in a store with step logs (``0``: none)."""


def builder_for(store: Store) -> WorkflowHostBuilder:
    """A host builder on ``store`` (``$WFE_STEP_LOG_LINES`` bounds the stored logs)."""
    builder = WorkflowHostBuilder().persistence(store.url, **store.options)
    raw = os.environ.get(STEP_LOG_LINES_ENV)
    if raw is not None:
        try:
            lines = int(raw)
        except ValueError:
            lines = -1
        if lines < 0:
            raise CliError(f"${STEP_LOG_LINES_ENV} must be a whole number >= 0, got {raw!r}")
        builder.step_log_limits(max_lines=lines)
    return builder


# -- remembered definitions ----------------------------------------------------------


@attrs.frozen
class Source:
    """Where a definition came from: a YAML file (with its ``--set`` config) or a
    Python module (imported with ``directory`` on ``sys.path``)."""

    kind: str  # "yaml" or "python"
    path: str
    config: Mapping[str, Any] = attrs.field(factory=dict)
    module: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "path": self.path}
        if self.kind == "yaml":
            data["config"] = dict(self.config)
        else:
            data["module"] = self.module
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Source:
        return cls(
            kind=str(data["kind"]),
            path=str(data["path"]),
            config=dict(data.get("config") or {}),
            module=data.get("module"),
        )


def _definitions_path(store: Store) -> Path:
    return store.state_dir / DEFINITIONS_FILE


def read_sources(store: Store) -> dict[str, Source]:
    """The remembered sources, by ``id@version``; empty when none were remembered."""
    path = _definitions_path(store)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}", EXIT_STORE) from exc
    try:
        return {str(k): Source.from_json(v) for k, v in raw.items()}
    except (AttributeError, KeyError, TypeError) as exc:
        raise CliError(
            f"{path} is not a definitions file written by wfe ({exc}); remove it", EXIT_STORE
        ) from exc


def remember(store: Store, entries: Mapping[str, Source]) -> None:
    """Record where each ``id@version`` came from, so ``wfe resume`` and ``wfe worker``
    can load it again without arguments."""
    if not entries or store.url.startswith("memory"):
        return  # nothing outlives a memory store, so nothing is worth remembering
    path = _definitions_path(store)
    known = read_sources(store)
    known.update(entries)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        text = json.dumps({k: v.to_json() for k, v in sorted(known.items())}, indent=2)
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc}", EXIT_STORE) from exc


def key_of(definition: WorkflowDefinition) -> str:
    return f"{definition.id}@{definition.version}"


# -- loading definitions ---------------------------------------------------------------


@attrs.define
class Loaded:
    """Definitions to register, each with its source; ``own`` lists, per YAML file
    given, the workflows that file defines itself (not its includes)."""

    definitions: dict[str, Any] = attrs.field(factory=dict)
    sources: dict[str, Source] = attrs.field(factory=dict)
    own: dict[str, list[Any]] = attrs.field(factory=dict)
    warnings: list[str] = attrs.field(factory=list)

    def add(self, obj: Any, source: Source) -> None:
        definition = _definition_of(obj)
        key = key_of(definition)
        existing = self.definitions.get(key)
        if existing is not None and _definition_of(existing).fingerprint != (
            definition.fingerprint
        ):
            raise CliError(
                f"workflow {definition.id!r} version {definition.version} is defined twice "
                f"with different steps ({self.sources[key].path} and {source.path}); "
                "give one of them a new version"
            )
        self.definitions[key] = obj
        self.sources[key] = source

    def register_on(self, builder: WorkflowHostBuilder) -> None:
        for obj in self.definitions.values():
            builder.register(obj)

    def register_on_host(self, host: WorkflowHost) -> None:
        for obj in self.definitions.values():
            host.register(obj)


def _definition_of(obj: Any) -> WorkflowDefinition:
    return obj if isinstance(obj, WorkflowDefinition) else obj.definition


def yaml_module() -> Any:
    try:
        import wfe.yaml
    except ImportError as exc:  # pragma: no cover - depends on the installation
        from wfe.core.installation import install_command

        raise CliError(
            "YAML workflows need the wfe-yaml distribution: " + install_command("wfe[yaml]")
        ) from exc
    return wfe.yaml


def load_yaml(loaded: Loaded, file: str, config: Mapping[str, Any]) -> None:
    """Load every workflow of ``file`` (and its includes) into ``loaded``; raises
    :class:`CliError` listing every issue as ``file:line:col: key: message``."""
    yaml = yaml_module()
    path = Path(file)
    if not path.is_file():
        raise CliError(f"{file}: no such file")
    try:
        compiled = yaml.load_workflows(path, dict(config), check_scripts=True)
    except yaml.YamlWorkflowError as exc:
        raise CliError(f"{file} is not a valid workflow file:\n{exc}") from exc
    source = Source("yaml", str(path.absolute()), dict(config))
    loaded.own[file] = [c for c in compiled if Path(c.file) == path]
    for c in compiled:
        loaded.add(c, source)


def load_module(loaded: Loaded, spec: str, directory: str | None = None) -> None:
    """Import ``MODULE`` or ``MODULE:ATTR`` and add its definitions: ``ATTR`` (a
    definition, a compiled YAML workflow, or an iterable of them) or every definition
    at the module's top level."""
    module_name, _, attr = spec.partition(":")
    where = str(Path(directory or os.getcwd()).absolute())
    if where not in sys.path:
        sys.path.insert(0, where)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise CliError(f"--import {spec}: cannot import {module_name!r}: {exc}") from exc
    if attr:
        try:
            value: Any = getattr(module, attr)
        except AttributeError as exc:
            raise CliError(f"--import {spec}: module {module_name!r} has no {attr!r}") from exc
        if isinstance(value, dict):
            candidates = list(value.values())
        elif isinstance(value, list | tuple):
            candidates = list(value)
        else:
            candidates = [value]
    else:
        candidates = [v for v in vars(module).values() if _is_definition(v)]
    found = [c for c in candidates if _is_definition(c)]
    if not found or len(found) != len(candidates):
        raise CliError(
            f"--import {spec}: expected workflow definitions (WorkflowBuilder(...).build()) "
            f"or compiled YAML workflows, found {len(found)} among {len(candidates)} value(s)"
        )
    source = Source("python", where, module=spec)
    for obj in found:
        loaded.add(obj, source)


def _is_definition(value: Any) -> bool:
    return isinstance(value, WorkflowDefinition) or isinstance(
        getattr(value, "definition", None), WorkflowDefinition
    )


def load_remembered(loaded: Loaded, store: Store) -> None:
    """Load every remembered source again; a source that no longer loads is reported
    in ``loaded.warnings`` (its workflows cannot run until it loads)."""
    seen: set[tuple[str, str, str]] = set()
    for source in read_sources(store).values():
        ident = (source.kind, source.path, json.dumps(dict(source.config), sort_keys=True))
        if source.module is not None:
            ident = (source.kind, source.path, source.module)
        if ident in seen:
            continue
        seen.add(ident)
        try:
            if source.kind == "yaml":
                load_yaml(loaded, source.path, source.config)
            else:
                load_module(loaded, source.module or "", source.path)
        except CliError as exc:
            loaded.warnings.append(f"remembered definitions from {source.path}: {exc}")


# -- opening a host ------------------------------------------------------------------------


def store_error(exc: BaseException, store: Store) -> CliError | None:
    """A :class:`CliError` (exit 3) for a store that cannot be opened, else ``None``."""
    if isinstance(exc, ConfigurationError | ProviderError) and not isinstance(exc, DefinitionError):
        return CliError(f"store {store.shown}: {redact_url(str(exc), store.url)}", EXIT_STORE)
    return None


@contextlib.asynccontextmanager
async def open_control(store: Store) -> AsyncIterator[WorkflowHost]:
    """A host on ``store`` that runs no workflows: its providers are open, so reading,
    suspending, resuming, terminating and publishing work, but no queue is consumed
    and no workflow runs here (a workflow's definition need not be known)."""
    host = builder_for(store).run_workflows(False).build()
    try:
        await host.__aenter__()
    except WfeError as exc:
        err = store_error(exc, store)
        if err is None:
            raise
        raise err from exc
    try:
        yield host
    finally:
        await host.__aexit__(None, None, None)
