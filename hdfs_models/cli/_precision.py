"""``hdfs-models precision``: what bfloat16 costs a model, on a Parquet sample.

    hdfs-models precision MODEL --input-path sample.parquet --features features \\
        [--labels label] [--rows 5000] [--precision bfloat16] [--output-tensor probabilities] [--json]

Reads the first ``--rows`` rows of the Parquet file or directory (pyarrow, no
Spark), scores them in float32 and in ``--precision`` in this process, and
prints the class agreement, the largest output difference, the accuracy of
each when ``--labels`` names a label column, and each one's speed. MODEL is a
local SavedModel dir or a model URL (``hdfs://.../models/mnist``: its latest
version). ``python -m scoring.precision`` is a thin entry point to this
command. Exit codes: 0 ok, 1 error (one line), 2 usage.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from hdfs_models.cli._frame import UsageError, add_command
from hdfs_models.cli._score import parse_features
from scoring import PrecisionReport, compare_precision
from scoring._arrow import column_to_tensor
from scoring._plan import parse_signature
from scoring._source import model_source

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Register ``precision``."""
    p = add_command(subparsers, "precision", _precision, _render, help="float32 against bfloat16 on a Parquet sample")
    p.add_argument("model", help="SavedModel dir or model URL")
    p.add_argument("--input-path", required=True, help="Parquet file or directory holding the sample")
    p.add_argument("--features", required=True, help="feature column (or sig_input=col,... for several inputs)")
    p.add_argument("--labels", default=None, help="label column: also report each precision's accuracy")
    p.add_argument("--rows", type=int, default=5000, help="rows to compare (default 5000)")
    p.add_argument("--precision", default="bfloat16", choices=["bfloat16", "auto"])
    p.add_argument("--output-tensor", default=None, help="output tensor to compare (when the signature has several)")
    p.add_argument("--signature", default="serving_default")
    p.add_argument("--batch-size", type=int, default=1024)


def _sample(args: argparse.Namespace, spec_of: Any) -> tuple[dict[str, Any], Any]:
    import pyarrow.parquet as pq

    wanted = parse_features(args.features)
    columns = {wanted: wanted} if isinstance(wanted, str) else dict(wanted)
    table = pq.read_table(args.input_path, columns=[*columns.values(), *([args.labels] if args.labels else [])])
    table = table.slice(0, args.rows)
    if isinstance(wanted, str):
        columns = {spec_of(None).name: wanted}
    features = {name: column_to_tensor(table.column(col), spec_of(name), col) for name, col in columns.items()}
    labels = table.column(args.labels).to_numpy() if args.labels else None
    return features, labels


def run(args: argparse.Namespace) -> Any:
    """Compare and return the :class:`~scoring._faces.PrecisionReport`."""
    source = model_source(args.model)
    sig = parse_signature(source.signatures(), args.signature, source.describe())

    def spec_of(name: str | None) -> Any:
        if name is None:
            if len(sig.inputs) != 1:
                raise UsageError(f"{sig.name!r} has inputs {sig.input_names}: use --features input=column,...")
            return sig.inputs[0]
        return sig.input(name)

    features, labels = _sample(args, spec_of)
    return compare_precision(args.model, features, precision=args.precision, signature=args.signature,
                             output_tensor=args.output_tensor, labels=labels, batch_size=args.batch_size)  # fmt: skip


def _precision(args: argparse.Namespace) -> Any:
    if args.rows < 1 or args.batch_size < 1:
        raise UsageError("--rows and --batch-size must be at least 1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return run(args).as_dict()


def _render(report: dict[str, Any]) -> str:
    return str(PrecisionReport(**report))
