"""The ``hdfs-models`` command line (``hdfs-models …`` or ``python -m hdfs_models.cli …``).

Commands are registered by small modules (``_store``: publish, versions,
verify, inspect; ``_cache``: fetch, gc; ``_archive``: pack, unpack;
``_doctor``: doctor), each exposing ``register(subparsers)`` on the frame
in :mod:`._frame`; every command function takes the parsed arguments and
returns a JSON-able result, which is printed as JSON with ``--json`` or as
text by the command's ``render``.

Exit codes: 0 ok, 1 error (one line naming the URL/path and the cause),
2 usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from hdfs_models.cli import _archive, _cache, _doctor, _store
from hdfs_models.cli._frame import ProgressBar, add_command, progress_bar
from hdfs_models.errors import HdfsModelsError

__all__ = ["ProgressBar", "add_command", "build_parser", "main", "progress_bar"]

_COMMAND_MODULES = (_store, _cache, _archive, _doctor)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered command."""
    parser = argparse.ArgumentParser(
        prog="hdfs-models",
        description="Publish, list, fetch and verify SavedModel versions on HDFS or any fsspec store.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module in _COMMAND_MODULES:
        module.register(subparsers)
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
