"""The batch scoring job as the file ``spark-submit`` runs: ``spark-submit … scoring/job.py ARGS``.

A thin entry point: the job is the ``hdfs-models score`` command
(:mod:`hdfs_models.cli._score`), and ``python -m scoring.job ARGS`` runs
the same. :func:`build_parser` and :func:`run` are there for callers that
drive the job from their own Spark session.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hdfs_models.cli import main as _command
from hdfs_models.cli._score import build_parser, parse_features, run

__all__ = ["build_parser", "main", "parse_features", "run"]


def main(argv: Sequence[str] | None = None) -> int:
    """``hdfs-models score`` with ``argv`` (default: this process's arguments); returns the exit code."""
    return _command(["score", *(sys.argv[1:] if argv is None else argv)], prog="scoring.job")


if __name__ == "__main__":
    sys.exit(main())
