"""Exceptions raised by :mod:`scoring`.

Every error names the column, signature or path involved and the reason, and
pickles (errors raised on executors reach the driver)::

    ScoringError(hdfs_models.HdfsModelsError)   one error tree: ``except HdfsModelsError`` catches both
    ├── SignatureError(LookupError)           signature / input / output not found in the model
    ├── SignatureMismatchError(ValueError)    DataFrame columns do not fit the signature
    │   ├── ShapeMismatchError                 a row has the wrong number of values
    │   ├── NullValueError                     a row or element is null
    │   └── ColumnTypeError(TypeError)         a column is not numeric / not an array
    ├── ModelLoadError(RuntimeError)          TensorFlow failed to load the model
    ├── GpuAssignmentError(ValueError)        a task's GPU address names no device the executor sees
    ├── PrecisionError(ValueError)            the precision asked for cannot run on this machine
    └── JobIOError(ValueError)                the job's input is missing or its output cannot be written
        └── InputFileError                     a directly read file disagrees with the others (schema, partitions)
"""

from __future__ import annotations

from typing import Any

from hdfs_models.errors import HdfsModelsError

__all__ = [
    "ColumnTypeError",
    "GpuAssignmentError",
    "InputFileError",
    "JobIOError",
    "ModelLoadError",
    "NullValueError",
    "PrecisionError",
    "ScoringError",
    "ShapeMismatchError",
    "SignatureError",
    "SignatureMismatchError",
]


class ScoringError(HdfsModelsError):
    """Base class of every error raised by :mod:`scoring`.

    An :class:`hdfs_models.HdfsModelsError`. Attributes (``None`` when they do
    not apply): ``message``, ``column``, ``url`` (a model URL), ``path``
    (model path or URL, or the job's table or path), ``reason`` (a
    short cause), ``signature`` (signature name), ``row`` (position counted
    from the start of the partition or batch), ``expected`` and ``got`` (what
    the signature wants and what the data holds), and ``details`` (any further
    keyword arguments).
    """

    _fields = ("url", "path", "reason", "column", "signature", "row", "expected", "got")
    column: str | None
    signature: str | None
    row: int | None
    expected: int | str | None
    got: int | None

    def __init__(
        self,
        message: str,
        *,
        column: str | None = None,
        url: str | None = None,
        path: str | None = None,
        reason: str | None = None,
        signature: str | None = None,
        row: int | None = None,
        expected: int | str | None = None,
        got: int | None = None,
        **details: Any,
    ) -> None:
        super().__init__(
            message, url=url, path=path, reason=reason, column=column, signature=signature, row=row,
            expected=expected, got=got, **details,
        )  # fmt: skip


class SignatureError(ScoringError, LookupError):
    """The requested signature, input or output does not exist in the model."""


class SignatureMismatchError(ScoringError, ValueError):
    """The data does not fit the model's signature."""


class ShapeMismatchError(SignatureMismatchError):
    """A row holds the wrong number of values for the signature's shape."""


class NullValueError(SignatureMismatchError):
    """A row, or an element of a row, is null."""


class ColumnTypeError(SignatureMismatchError, TypeError):
    """A column is not numeric, not an array of numbers, nor binary tensor bytes."""


class ModelLoadError(ScoringError, RuntimeError):
    """TensorFlow could not load the model."""


class PrecisionError(ScoringError, ValueError):
    """The requested precision cannot run here (e.g. bfloat16 on a CPU without it)."""


class GpuAssignmentError(ScoringError, ValueError):
    """A task's GPU address does not name a device the executor can see."""


class JobIOError(ScoringError, ValueError):
    """The job's input is missing, or its output exists or cannot be replaced."""


class InputFileError(JobIOError):
    """A file of a direct read (:meth:`scoring.Scorer.transform_files`) cannot be scored as the others are.

    ``path`` names the file, ``column`` the column, ``reason``: ``schema``
    (its columns disagree with the first file's), ``type`` (a column does not
    convert to Spark's type) or ``partition`` (no ``key=value`` directory for
    a partition column). A file that is gone, corrupt or refused raises the
    store's errors (``MissingFileError``, ``CorruptFileError``,
    ``StorePermissionError``), which name it too.
    """
