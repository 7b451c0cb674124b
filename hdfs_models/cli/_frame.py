"""The frame every ``hdfs-models`` command uses: registration, one-line errors, the progress bar.

Each command module exposes ``register(subparsers)`` and calls
:func:`add_command`; its handler takes the parsed arguments and returns a
JSON-able result, printed as JSON with ``--json`` or as text by ``render``.
A handler reports a usage problem by raising :class:`UsageError` (exit 2);
any other exception becomes one line, :func:`one_line` (exit 1).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import Any, TextIO

from hdfs_models.errors import HdfsModelsError

__all__ = [
    "Handler",
    "ProgressBar",
    "Renderer",
    "UsageError",
    "add_command",
    "add_store_options",
    "one_line",
    "progress_bar",
    "storage_options",
]

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
    parser.add_argument(
        "-v", "--verbose", dest="command_verbose", action="count", default=0, help="log more (-vv for debug)"
    )
    parser.set_defaults(_handler=handler, _render=render, _status=status)
    return parser


class UsageError(ValueError):
    """A command's arguments cannot work together; the frame prints it on one line and exits 2."""


# Errors raised on Spark executors reach the driver as text inside a Py4J/PythonException;
# the last "SomeError: message" line of that traceback is the cause worth a line.
_CAUSE = re.compile(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception)): (.+)$")


def one_line(exc: BaseException) -> str:
    """The cause of ``exc`` as one line: our own errors as they are, the executor's error when Spark wrapped one."""
    if isinstance(exc, HdfsModelsError):
        return " ".join(str(exc).split())
    lines = [m for m in (_CAUSE.match(line) for line in str(exc).splitlines()) if m]
    own = [m for m in lines if not m.group(1).startswith(("Py4J", "Spark", "Python"))]
    chosen = own or lines
    if chosen:
        return f"{chosen[-1].group(1)}: {' '.join(chosen[-1].group(2).split())}"
    return " ".join(str(exc).split())[:500] or type(exc).__name__


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

            self._bar = tqdm(
                total=total,
                desc=self.label,
                unit="B",
                unit_scale=True,
                file=self.stream,
                mininterval=0.2,
                dynamic_ncols=True,
                leave=True,
            )
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


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """``-o/--storage-option KEY=VALUE`` (repeatable): fsspec storage options for the store."""
    parser.add_argument(
        "-o",
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fsspec storage option for the store (repeatable), e.g. user=alice",
    )


def storage_options(args: argparse.Namespace) -> dict[str, str]:
    """The ``-o`` options as a dict; ``ValueError`` naming the item that is not ``KEY=VALUE``."""
    out = {}
    for item in args.storage_option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--storage-option expects KEY=VALUE, got {item!r}")
        out[key] = value
    return out
