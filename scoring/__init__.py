"""scoring: a thin batched TensorFlow scorer for Spark that reads its
signature from the model.

Importing this package imports neither TensorFlow, pyspark nor pyarrow.
"""

from __future__ import annotations

from hdfs_models._signatures import format_signatures
from scoring._arrow import pack_tensors
from scoring._faces import PrecisionReport, compare_precision
from scoring._plan import Signature, TensorSpec
from scoring._scorer import Scorer
from scoring._source import inspect_signatures
from scoring.errors import (
    ColumnTypeError,
    GpuAssignmentError,
    JobIOError,
    ModelLoadError,
    NullValueError,
    PrecisionError,
    ScoringError,
    ShapeMismatchError,
    SignatureError,
    SignatureMismatchError,
)

__all__ = [
    "ColumnTypeError",
    "GpuAssignmentError",
    "JobIOError",
    "ModelLoadError",
    "NullValueError",
    "PrecisionError",
    "PrecisionReport",
    "Scorer",
    "ScoringError",
    "ShapeMismatchError",
    "Signature",
    "SignatureError",
    "SignatureMismatchError",
    "TensorSpec",
    "compare_precision",
    "format_signatures",
    "inspect_signatures",
    "pack_tensors",
]
