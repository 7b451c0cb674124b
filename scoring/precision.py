"""``python -m scoring.precision``: a thin entry point to ``hdfs-models precision``.

The command (:mod:`hdfs_models.cli._precision`) scores a Parquet sample in
float32 and bfloat16 and reports what the reduced precision costs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hdfs_models.cli import main as _command

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """``hdfs-models precision`` with ``argv`` (default: this process's arguments); returns the exit code."""
    return _command(["precision", *(sys.argv[1:] if argv is None else argv)], prog="scoring.precision")


if __name__ == "__main__":
    sys.exit(main())
