"""The ``hdfs-models`` command line.

Commands are registered by small modules (``_cli_store``, ``_cli_cache``,
``_cli_archive``), each exposing ``register(subparsers)``; every command
function takes the parsed arguments and returns a JSON-able result, which is
printed as JSON with ``--json`` or as text by the command's ``render``.

Exit codes: 0 ok, 1 error (one line naming the URL/path and the cause),
2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from typing import Any, Callable, Sequence, TextIO

from hdfs_models.errors import HdfsModelsError

_COMMAND_MODULES = (
    "hdfs_models._cli_store",
    "hdfs_models._cli_cache",
    "hdfs_models._cli_archive",
    "hdfs_models._cli_doctor",
)

Handler = Callable[[argparse.Namespace], Any]
Renderer = Callable[[Any], str]


def add_command(
    subparsers: Any,
    name: str,
    handler: Handler,
    render: Renderer,
    help: str,
    status: Callable[[Any], int] | None = None,
) -> argparse.ArgumentParser:
    """Add a subcommand whose handler returns a JSON-able result.

    ``render`` turns that result into the human-readable text printed
    without ``--json``; ``status``, when given, turns it into the exit status
    (a report that is printed whole yet says something failed, like ``doctor``).
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help, description=help)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(_handler=handler, _render=render, _status=status)
    return parser


class ProgressBar:
    """A terminal bar for one operation that moves bytes: done / total, rate and time left (tqdm).

    A :data:`~hdfs_models._progress.Progress` callback. The bar is drawn at
    the first call (when the total is known), redrawn at most five times a
    second, and closed when ``done`` reaches ``total`` or at :meth:`finish`
    (after a failure). ``done`` may go back (a file fetched again).
    """

    def __init__(self, stream: TextIO, label: str | None = None) -> None:
        self.stream, self.label = stream, label
        self._bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=self.label, unit="B", unit_scale=True, file=self.stream,
                             mininterval=0.2, dynamic_ncols=True, leave=True)
        self._bar.update(done - self._bar.n)
        if done >= total:
            self.finish()

    def finish(self) -> None:
        """Close the bar (its last state stays on screen); nothing happens when none is open."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def progress_bar(args: argparse.Namespace) -> ProgressBar | None:
    """A bar on stderr when it is a terminal and the output is not ``--json``; else ``None``."""
    if args.json or not sys.stderr.isatty():
        return None
    return ProgressBar(sys.stderr, label=args.command)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered command."""
    parser = argparse.ArgumentParser(
        prog="hdfs-models",
        description="Publish, list, fetch and verify SavedModel versions on HDFS or any fsspec store.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hdfs-models`` console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        result = args._handler(args)
    except HdfsModelsError as exc:
        return _fail(args, exc)
    except (OSError, ValueError, ImportError) as exc:
        return _fail(args, exc)
    except KeyboardInterrupt:
        print("hdfs-models: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result, sort_keys=True, default=str))
    else:
        text = args._render(result)
        if text:
            print(text)
    return args._status(result) if args._status is not None else 0


def _fail(args: argparse.Namespace, exc: BaseException) -> int:
    message = " ".join(str(exc).split()) or type(exc).__name__
    if getattr(args, "json", False):
        print(json.dumps({"error": type(exc).__name__, "message": message}), file=sys.stderr)
    else:
        print(f"hdfs-models {args.command}: error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
