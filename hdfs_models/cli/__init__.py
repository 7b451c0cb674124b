"""The ``hdfs-models`` command line (``hdfs-models …`` or ``python -m hdfs_models.cli …``): the applications.

Every application of the two packages is a command here, on one frame
(:mod:`._frame`): ``_store`` (publish, versions, verify, inspect),
``_cache`` (fetch, gc), ``_archive`` (pack, unpack), ``_doctor`` (doctor),
``_score`` (score: the batch job, with ``--watch``) and ``_precision``
(precision: float32 against bfloat16 on a sample). Each module exposes
``register(subparsers)``; every command function takes the parsed arguments
and returns a JSON-able result, which is printed as JSON with ``--json`` or
as text by the command's ``render``. ``scoring/job.py`` (what spark-submit
runs, and ``python -m scoring.job``) and ``python -m scoring.precision`` are
thin entry points to ``score`` and ``precision``.

Layers: the core (``hdfs_models`` without this package) never imports
:mod:`scoring`; the scorer library never imports an application; the
commands sit on top of both (``tests/test_layout.py``).

Exit codes: 0 ok, 1 error (one line naming the URL/path and the cause),
2 usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from hdfs_models.cli import _archive, _cache, _doctor, _precision, _score, _store
from hdfs_models.cli._frame import ProgressBar, UsageError, add_command, one_line, progress_bar

__all__ = ["ProgressBar", "add_command", "build_parser", "main", "progress_bar"]

_COMMAND_MODULES = (_store, _cache, _archive, _doctor, _score, _precision)

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered command."""
    parser = argparse.ArgumentParser(
        prog="hdfs-models",
        description="Publish, list, fetch and verify SavedModel versions on HDFS or any fsspec store; score with them.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module in _COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Entry point of the ``hdfs-models`` console script; returns the exit code.

    ``prog`` names the command in error lines instead of ``hdfs-models
    COMMAND`` (the thin entry points: ``scoring.job``, ``scoring.precision``).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    label = prog or f"hdfs-models {args.command}"
    verbosity = max(args.verbose, args.command_verbose)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbosity, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        result = args._handler(args)
    except KeyboardInterrupt:
        print(f"{label}: interrupted", file=sys.stderr)
        return 130
    except UsageError as exc:
        return _fail(args, label, exc, 2)
    except Exception as exc:  # every failure is one line; -vv logs the traceback
        log.debug("%s failed", label, exc_info=True)
        return _fail(args, label, exc, 1)
    if args.json:
        print(json.dumps(result, sort_keys=True, default=str))
    else:
        text = args._render(result)
        if text:
            print(text)
    return args._status(result) if args._status is not None else 0


def _fail(args: argparse.Namespace, label: str, exc: BaseException, code: int) -> int:
    message = one_line(exc)
    if getattr(args, "json", False):
        print(json.dumps({"error": type(exc).__name__, "message": message}), file=sys.stderr)
    else:
        print(f"{label}: error: {message}", file=sys.stderr)
    return code
