"""The ``wfe`` command: run, validate, inspect and control workflows from a shell.

Exit codes: 0 success; 1 the workflow failed (suspended after an error, or
terminated) or, for ``validate``, a file has issues; 2 usage or validation error (bad
YAML, unknown workflow id, bad ``--set``); 3 the store cannot be opened or is
misconfigured; 130 interrupted (the workflow stays stored and resumable); 141 the
reader of the output went away (``wfe show ID | head``), as for other tools.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._cli_codes import (
    DEFAULT_STORE,
    EXIT_CLOSED_PIPE,
    EXIT_INTERRUPTED,
    EXIT_STORE,
    EXIT_USAGE,
)

# Only argparse at import time: ``wfe --help`` and usage errors stay fast. The engine,
# trio, rich and the providers are imported by the command that needs them.
if TYPE_CHECKING:
    from ._cli_setup import Loaded, Store


_EPILOG = (
    "Without --store the store is sqlite:///.wfe/wfe.db in the current directory; "
    "workflows run from files are remembered in .wfe/definitions.json, so "
    "'wfe resume ID' and 'wfe worker' need no arguments. Exit codes: 0 ok, 1 workflow "
    "failed, 2 usage/validation error, 3 store error, 130 interrupted."
)


def build_parser() -> argparse.ArgumentParser:
    """The ``wfe`` argument parser (one subcommand per action)."""
    parser = argparse.ArgumentParser(
        prog="wfe",
        description="Run and manage wfe workflows (YAML pipelines or code-defined).",
        epilog=_EPILOG,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def store_opt(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--store",
            metavar="URL",
            help="store URL (default: sqlite:///.wfe/wfe.db in the current directory)",
        )

    def sources(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--set",
            dest="sets",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="fill ${{ var.NAME }} in the YAML (a string); repeatable",
        )
        p.add_argument(
            "--import",
            dest="imports",
            action="append",
            default=[],
            metavar="MODULE[:ATTR]",
            help="also register code-defined workflows from a Python module; repeatable",
        )

    def secret_opt(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--secret",
            dest="secrets",
            action="append",
            default=[],
            metavar="NAME[=@FILE]",
            help="a secret the workflow declares: from the environment variable NAME, or "
            "from FILE; kept in memory only, masked in all output; repeatable",
        )

    def view_opt(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--plain", action="store_true", help="plain progress lines even on a terminal"
        )

    p = sub.add_parser("run", help="run a workflow to the end with live progress")
    p.add_argument("file", nargs="?", metavar="FILE.yaml", help="the workflow file")
    sources(p)
    p.add_argument(
        "--input",
        dest="inputs",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="workflow input, typed by its declaration (a string input takes the text "
        "as it is; others JSON, e.g. 3, true, [1,2]); repeatable",
    )
    p.add_argument("--workflow", metavar="ID", help="which workflow, when there are several")
    p.add_argument("--reference", metavar="TEXT", help="a reference stored with the workflow")
    p.add_argument(
        "--detach", action="store_true", help="only start it; a worker runs it (wfe worker)"
    )
    secret_opt(p)
    store_opt(p)
    view_opt(p)

    p = sub.add_parser("validate", help="check workflow files; print every issue")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE")

    p = sub.add_parser("list", help="list or search stored workflows, newest first")
    p.add_argument("--status", metavar="S", help="runnable, suspended, complete or terminated")
    p.add_argument(
        "--search", metavar="TERMS", help="words in reference, description, workflow or data"
    )
    p.add_argument("--definition", metavar="ID", help="only this workflow definition")
    p.add_argument("--reference", metavar="TEXT", help="only this exact reference")
    p.add_argument("--since", metavar="WHEN", help="created at or after (2026-11-30, 7d ago)")
    p.add_argument("--until", metavar="WHEN", help="created at or before (a date or 2h ago)")
    p.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="data field equals value (JSON if it parses: n=3 is a number); repeatable",
    )
    p.add_argument("--limit", type=int, default=100, metavar="N", help="at most N (100)")
    p.add_argument("--skip", type=int, default=0, metavar="N", help="skip the first N (paging)")
    p.add_argument("--json", action="store_true", help="JSON output")
    store_opt(p)

    p = sub.add_parser("purge", help="remove workflows that ended long enough ago")
    p.add_argument(
        "--older-than", required=True, metavar="AGE", help="ended more than AGE ago (30d, 12h)"
    )
    p.add_argument(
        "--status",
        default="COMPLETE,TERMINATED",
        metavar="S,S",
        help="which ended workflows (COMPLETE,TERMINATED; SUSPENDED too if named)",
    )
    p.add_argument("--dry-run", action="store_true", help="only count what would go")
    p.add_argument("--json", action="store_true", help="JSON output")
    store_opt(p)

    p = sub.add_parser(
        "show",
        help="a workflow's step timeline and errors, or (--graph) its definition graph",
    )
    p.add_argument("id", metavar="ID")
    p.add_argument(
        "files",
        nargs="*",
        metavar="FILE.yaml",
        help="with --graph: its workflow file, if not remembered",
    )
    p.add_argument(
        "--graph",
        action="store_true",
        help="print the definition graph (containers, branches, loops, parallel groups, "
        "compensation) with the steps' states, instead of the timeline",
    )
    p.add_argument(
        "--format",
        choices=("mermaid", "dot", "svg"),
        default=None,
        help="with --graph: Mermaid flowchart (default), Graphviz DOT, or standalone SVG",
    )
    p.add_argument("--json", action="store_true", help="JSON output (with --graph: nodes/edges)")
    sources(p)
    store_opt(p)

    p = sub.add_parser("logs", help="the output lines a workflow's steps wrote (stored)")
    p.add_argument("id", metavar="ID")
    p.add_argument("step", nargs="?", metavar="STEP", help="only this step's lines")
    p.add_argument(
        "--follow", "-f", action="store_true", help="keep printing until the workflow stops"
    )
    store_opt(p)

    p = sub.add_parser("resume", help="resume a workflow and run it here to the end")
    p.add_argument("id", metavar="ID")
    p.add_argument(
        "files", nargs="*", metavar="FILE.yaml", help="its workflow file, if not remembered"
    )
    sources(p)
    p.add_argument("--detach", action="store_true", help="only mark it runnable; a worker runs it")
    secret_opt(p)
    store_opt(p)
    view_opt(p)

    for name, text in (("suspend", "suspend a running workflow"), ("terminate", "end a workflow")):
        p = sub.add_parser(name, help=text)
        p.add_argument("id", metavar="ID")
        store_opt(p)

    p = sub.add_parser("publish", help="publish an event to waiting workflows")
    p.add_argument("name", metavar="NAME")
    p.add_argument("key", metavar="KEY")
    p.add_argument("data", nargs="?", metavar="DATA", help="JSON if it parses, else a string")
    store_opt(p)

    p = sub.add_parser("ui", help="serve the web dashboard (needs the wfe[ui] extra)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    p.add_argument("--port", type=int, default=8042, help="port (8042; 0 picks a free one)")
    p.add_argument(
        "--allow-actions",
        action="store_true",
        help="allow suspend, resume, terminate and publish (behind an access token)",
    )
    p.add_argument(
        "--token", help="the access token (default: $WFE_UI_TOKEN, else a new one printed)"
    )
    store_opt(p)

    p = sub.add_parser("worker", help="run the store's workflows until Ctrl-C/SIGTERM")
    p.add_argument("files", nargs="*", metavar="FILE.yaml", help="workflow files to register")
    sources(p)
    store_opt(p)
    return parser


def _load(files: Sequence[str], imports: Sequence[str], config: dict[str, Any]) -> Loaded:
    from ._cli_setup import Loaded, load_module, load_yaml

    loaded = Loaded()
    for file in files:
        load_yaml(loaded, file, config)
    for spec in imports:
        load_module(loaded, spec)
    return loaded


def _pick(args: argparse.Namespace, loaded: Loaded) -> Any:
    """The workflow ``wfe run`` starts."""
    from ._cli_run import definition_of
    from ._cli_setup import CliError

    if args.workflow:
        matches = [
            obj
            for key, obj in loaded.definitions.items()
            if key.split("@", 1)[0] == args.workflow or key == args.workflow
        ]
        if not matches:
            known = ", ".join(sorted(loaded.definitions)) or "none"
            raise CliError(f"--workflow {args.workflow!r}: no such workflow; defined: {known}")
        return max(matches, key=lambda o: definition_of(o).version)
    own = loaded.own.get(args.file, []) if args.file else list(loaded.definitions.values())
    if len(own) == 1:
        return own[0]
    if not own:
        raise CliError(f"{args.file}: defines no workflow of its own")
    ids = ", ".join(definition_of(o).id for o in own)
    raise CliError(
        f"{args.file or 'the imports'} define several workflows ({ids}); "
        "pick one with --workflow ID"
    )


def _known(args: argparse.Namespace, store: Store) -> Loaded:
    """The definitions remembered next to ``store``, and those of the files and
    ``--import`` modules given (which win); warnings about remembered sources that no
    longer load go to stderr."""
    from ._cli_setup import Loaded, load_remembered, parse_assignments

    config = parse_assignments(args.sets, "--set", typed=False)
    loaded = Loaded()
    load_remembered(loaded, store)
    given = _load(args.files, args.imports, config)
    for key, obj in given.definitions.items():
        loaded.definitions[key] = obj
        loaded.sources[key] = given.sources[key]
    for warning in loaded.warnings:
        print(f"wfe: warning: {warning}", file=sys.stderr)
    return loaded


def _default_store_exists() -> bool:
    return os.path.exists(DEFAULT_STORE[len("sqlite:///") :])


# Commands that may create the store; the others only read or change what exists.
_CREATES_STORE = frozenset({"run", "worker", "publish"})


def _dispatch(args: argparse.Namespace) -> int:
    import trio

    from . import _cli_commands as commands
    from . import _cli_find as finding
    from . import _cli_run as running
    from ._cli_setup import (
        CliError,
        coerce_inputs,
        parse_assignments,
        parse_value,
        resolve_store,
    )

    command = args.command
    if command == "validate":
        return commands.validate(args.files, parse_assignments(args.sets, "--set", typed=False))
    if command == "run" and not args.file and not args.imports:
        raise CliError("wfe run: give a FILE.yaml (or --import MODULE with --workflow)")
    if command in ("list", "purge") and args.store is None and not _default_store_exists():
        # Nothing ran here: nothing to list, and listing must not create a store.
        return commands.no_store_here(args.json)
    secrets: dict[str, str] = {}
    if getattr(args, "secrets", None):
        from ._cli_secrets import mask_output, parse_secrets

        secrets = parse_secrets(args.secrets)
        mask_output(secrets)
        if args.detach:
            raise CliError(
                "--secret with --detach: secrets are kept in this process's memory only, so "
                "a worker would not have them; run it here (without --detach)"
            )
    store = resolve_store(args.store, creates=command in _CREATES_STORE)
    if command == "run":
        config = parse_assignments(args.sets, "--set", typed=False)
        raw = parse_assignments(args.inputs, "--input", typed=False)
        loaded = _load([args.file] if args.file else [], args.imports, config)
        target = _pick(args, loaded)
        inputs = coerce_inputs(target, raw)
        from ._cli_secrets import check_secrets, declared_secrets

        check_secrets(running.definition_of(target).id, declared_secrets(target), secrets)
        return trio.run(
            lambda: running.run_new(
                store,
                loaded,
                target,
                inputs,
                plain=args.plain,
                detach=args.detach,
                reference=args.reference,
                secrets=secrets,
            )
        )
    if command in ("resume", "worker"):
        loaded = _known(args, store)
        if command == "worker":
            return trio.run(running.worker, store, loaded)
        return trio.run(
            lambda: running.resume(
                store, loaded, args.id, plain=args.plain, detach=args.detach, secrets=secrets
            )
        )
    if command == "ui":
        from ._cli_setup import Loaded, load_remembered
        from ._cli_ui import ui

        loaded = Loaded()
        load_remembered(loaded, store)
        for warning in loaded.warnings:
            print(f"wfe: warning: {warning}", file=sys.stderr)
        return trio.run(
            lambda: ui(
                store,
                loaded,
                bind_host=args.host,
                port=args.port,
                allow_actions=args.allow_actions,
                token=args.token,
            )
        )
    if command == "list":
        query = finding.ListQuery(
            status=args.status,
            search=args.search,
            definition=args.definition,
            reference=args.reference,
            since=args.since,
            until=args.until,
            data=args.data,
            skip=args.skip,
            take=args.limit,
        )
        return trio.run(finding.list_workflows, store, query, args.json)
    if command == "purge":
        return trio.run(finding.purge, store, args.older_than, args.status, args.dry_run, args.json)
    if command == "show" and args.graph:
        from ._cli_graph import show_graph

        fmt = args.format or "mermaid"
        return trio.run(show_graph, store, _known(args, store), args.id, fmt, args.json)
    if command == "show":
        extra = [
            name
            for name, given in (
                ("FILE", args.files),
                ("--import", args.imports),
                ("--set", args.sets),
                ("--format", args.format),
            )
            if given
        ]
        if extra:
            raise CliError(f"wfe show: {', '.join(extra)} only go with --graph")
        return trio.run(commands.show, store, args.id, args.json)
    if command == "logs":
        from ._cli_logs import logs

        return trio.run(logs, store, args.id, args.step, args.follow)
    if command in ("suspend", "terminate"):
        return trio.run(commands.control, store, command, args.id)
    if command == "publish":
        data = None if args.data is None else parse_value(args.data)
        return trio.run(commands.publish, store, args.name, args.key, data)
    raise CliError(f"unknown command {command!r}")  # pragma: no cover - argparse refuses


def _leaf(exc: BaseException) -> BaseException:
    """The one exception inside (nested) exception groups, else ``exc`` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wfe`` command; returns (and, as a script, exits with) the
    exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "show" and not any(e.startswith("-") for e in extra):
        # argparse takes positionals in one run, so the FILE in `wfe show ID --graph
        # FILE.yaml` comes back unparsed: it is one of the files.
        args.files = [*args.files, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from ._cli_safety import redacted_output  # after parsing: --help stays fast

    with redacted_output(getattr(args, "store", None)):
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        print("wfe: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BaseException as exc:
        leaf = _leaf(exc)
        if isinstance(leaf, BrokenPipeError):
            return _closed_pipe()
        if isinstance(leaf, KeyboardInterrupt):
            print("wfe: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        from wfe.core import ConfigurationError, ProviderError, WfeError

        from ._cli_setup import CliError

        if isinstance(leaf, CliError):
            print(f"wfe: {leaf}", file=sys.stderr)
            return leaf.code
        if isinstance(leaf, WfeError):
            print(f"wfe: {type(leaf).__name__}: {leaf}", file=sys.stderr)
            store_failure = isinstance(leaf, ProviderError | ConfigurationError)
            return EXIT_STORE if store_failure else EXIT_USAGE
        raise


def _closed_pipe() -> int:
    """The reader of stdout went away (``wfe show ID | head``): stop quietly, as other
    command-line tools do, and keep Python from complaining when it flushes stdout."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_CLOSED_PIPE


if __name__ == "__main__":
    sys.exit(main())
