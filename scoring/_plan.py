"""Pure planning: which column feeds which signature input, and what comes out.

Works on :class:`ColumnType` descriptions so the same checks run on a Spark
schema (on the driver, before any job) and on an Arrow schema. Everything the
schema already shows is checked here: a signature input without a column, a
non-numeric column, a scalar or too deeply nested column for the input's
shape, a fixed-size list whose size contradicts it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scoring._signature import NUMERIC_DTYPES, Signature, TensorSpec
from scoring.errors import ColumnTypeError, ShapeMismatchError, SignatureError, SignatureMismatchError

__all__ = [
    "RETURNS",
    "ColumnType",
    "OutputColumn",
    "Plan",
    "Request",
    "describe_arrow_field",
    "describe_spark_field",
    "make_plan",
    "map_inputs",
    "not_numeric",
    "select_output",
]

RETURNS = ("class", "probabilities", "all")


@dataclass(frozen=True)
class ColumnType:
    """A column's type as planning sees it: leaf kind, list depth, fixed sizes per level."""

    column: str
    text: str
    leaf: str  # "numeric", "binary" or "other"
    depth: int = 0
    fixed: tuple[int | None, ...] = ()


@dataclass(frozen=True)
class OutputColumn:
    """One output column: ``kind`` "class", "values" (array) or "scalar"; ``dtype`` TF name."""

    name: str
    source: str
    kind: str
    dtype: str


@dataclass(frozen=True)
class Plan:
    """Inputs as (signature input, column) pairs and the output columns, in order."""

    inputs: tuple[tuple[TensorSpec, str], ...]
    outputs: tuple[OutputColumn, ...]
    keep_cols: tuple[str, ...]
    version_col: str | None


@dataclass(frozen=True)
class Request:
    """What the caller asked for, before the data's columns are known.

    ``returns`` is "class", "probabilities" or "all"; ``outputs`` the output
    columns :func:`select_output` chose for it.
    """

    signature: Signature
    input_cols: str | Mapping[str, str] | None
    returns: str
    outputs: tuple[OutputColumn, ...]
    keep_cols: tuple[str, ...] = ()
    version_col: str | None = None

    def plan(self, columns: Sequence[ColumnType]) -> Plan:
        """Validate ``columns`` against the signature; ScoringError subclasses otherwise."""
        return make_plan(self.signature, columns, self.input_cols, self.outputs, self.keep_cols, self.version_col)

    def needed_columns(self, available: Sequence[str]) -> list[str]:
        """The columns of ``available`` a plan reads: keep_cols, then each input's column."""
        inputs = map_inputs(self.signature, available, self.input_cols, self.keep_cols)
        return list(dict.fromkeys([*self.keep_cols, *(column for _, column in inputs)]))

    def positional(self, labels: Sequence[str]) -> Plan:
        """A plan feeding the inputs, in signature order, from columns labelled ``labels``."""
        return Plan(tuple(zip(self.signature.inputs, labels)), self.outputs, (), None)


def make_plan(
    signature: Signature,
    columns: Sequence[ColumnType],
    input_cols: str | Mapping[str, str] | None,
    outputs: tuple[OutputColumn, ...],
    keep_cols: Sequence[str] = (),
    version_col: str | None = None,
) -> Plan:
    """Map inputs to columns and validate them; raises ScoringError subclasses."""
    by_name = {c.column: c for c in columns}
    mapping = map_inputs(signature, list(by_name), input_cols, keep_cols)
    for spec, column in mapping:
        check_column(spec, by_name[column])
    for column in keep_cols:
        if column not in by_name:
            raise SignatureMismatchError(
                f"keep column {column!r} is not in the data; columns: {sorted(by_name)}",
                column=column,
                reason="no such column",
            )
    names = [*keep_cols, *(o.name for o in outputs), *([version_col] if version_col else [])]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SignatureMismatchError(
            f"output columns {dupes} appear twice (keep_cols, outputs and version_col must differ)",
            column=dupes[0],
            reason="duplicate column",
        )
    return Plan(tuple(mapping), outputs, tuple(keep_cols), version_col)


def map_inputs(
    signature: Signature,
    columns: Sequence[str],
    input_cols: str | Mapping[str, str] | None,
    keep_cols: Sequence[str] = (),
) -> list[tuple[TensorSpec, str]]:
    """Each signature input with its column: explicit mapping, a single name, or by name.

    Without ``input_cols``, a single-input signature whose input has no column
    of its name takes the one column outside ``keep_cols`` (a Keras export's
    ``keras_tensor`` fed from ``feature``); several such columns are an error
    naming them.
    """
    if input_cols is None and len(signature.inputs) == 1:
        input_cols = _only_candidate(signature.inputs[0], columns, keep_cols)
    if isinstance(input_cols, str):
        if len(signature.inputs) != 1:
            raise SignatureMismatchError(
                f"input_cols={input_cols!r} names one column but signature {signature.name!r} "
                f"has inputs {signature.input_names}: pass a mapping {{input: column}}",
                column=input_cols,
                reason="ambiguous input",
            )
        input_cols = {signature.inputs[0].name: input_cols}
    mapping = dict(input_cols or {})
    unknown = sorted(set(mapping) - set(signature.input_names))
    if unknown:
        raise SignatureError(
            f"input_cols maps {unknown}, which signature {signature.name!r} does not have; "
            f"inputs: {signature.input_names}",
            reason="no such input",
        )
    pairs = []
    for spec in signature.inputs:
        column = mapping.get(spec.name, spec.name)
        if column not in columns:
            what = f"has no matching column {column!r}; columns: {sorted(columns)}; map it with input_cols"
            raise _unfed(spec, column, what, "no matching column")
        pairs.append((spec, column))
    return pairs


def _only_candidate(spec: TensorSpec, columns: Sequence[str], keep_cols: Sequence[str]) -> str | None:
    """The column feeding a lone input: its namesake, else the only column outside keep_cols."""
    if spec.name in columns:
        return None
    candidates = [c for c in columns if c not in keep_cols]
    if len(candidates) > 1:
        what = (
            f"has no column of its name and {len(candidates)} columns could feed it: {sorted(candidates)}; "
            f"pick one with input_cols or list the others in keep_cols"
        )
        raise _unfed(spec, spec.name, what, "ambiguous column")
    return candidates[0] if candidates else None


def _unfed(spec: TensorSpec, column: str, what: str, reason: str) -> SignatureMismatchError:
    """An input no column feeds: ``signature input 'x' (float32[-1, 12]) <what>``."""
    return SignatureMismatchError(
        f"signature input {spec.name!r} ({spec.describe()}) {what}",
        column=column,
        reason=reason,
        expected=spec.describe(),
    )


def not_numeric(column: str, type_text: str, spec: TensorSpec) -> ColumnTypeError:
    """The error for a column that holds neither numbers, arrays of numbers nor tensor bytes."""
    return ColumnTypeError(
        f"column {column!r} has type {type_text}, expected numbers, arrays of numbers "
        f"or binary tensor bytes for input {spec.name!r} {spec.describe()}",
        column=column,
        reason="not numeric",
        expected=spec.describe(),
    )


def check_column(spec: TensorSpec, col: ColumnType) -> None:
    """What the schema alone shows: type, nesting and fixed sizes against ``spec``."""
    expected = spec.describe()
    if spec.dtype not in NUMERIC_DTYPES:
        raise ColumnTypeError(
            f"signature input {spec.name!r} has dtype {spec.dtype}, which the scorer cannot "
            f"feed from column {col.column!r} ({col.text})",
            column=col.column,
            reason="unsupported input dtype",
            expected=expected,
        )
    if col.leaf == "other":
        raise not_numeric(col.column, col.text, spec)
    size, dims = spec.row_size, spec.row_shape
    if col.leaf == "binary" or dims is None:
        return
    if col.depth == 0 and size is not None and size != 1:
        _shape_error(col, spec, f"holds one value per row, expected {size}")
    if col.depth > max(1, len(dims)):
        _shape_error(col, spec, f"is nested {col.depth} deep, expected at most {max(1, len(dims))}")
    if col.fixed and all(f is not None for f in col.fixed):
        total = math.prod(f for f in col.fixed if f is not None)
        if size is not None and total != size:
            _shape_error(col, spec, f"holds {total} values per row, expected {size}")
        if col.depth == len(dims) > 1:
            for level, (got, want) in enumerate(zip(col.fixed, dims)):
                if want >= 0 and got != want:
                    _shape_error(col, spec, f"has {got} values at nesting level {level}, expected {want}")


def _shape_error(col: ColumnType, spec: TensorSpec, what: str) -> None:
    raise ShapeMismatchError(
        f"column {col.column!r} ({col.text}) {what} for input {spec.name!r} {spec.describe()}",
        column=col.column,
        reason="wrong shape",
        expected=spec.describe(),
    )


def select_output(
    signature: Signature, returns: str, output_tensor: str | None, prediction_col: str
) -> tuple[OutputColumn, ...]:
    """The output columns for ``returns`` ("class", "probabilities" or "all")."""
    if returns not in RETURNS:
        raise ValueError(f"returns must be one of {RETURNS}, not {returns!r}")
    if returns == "all":
        return tuple(
            OutputColumn(s.name, s.name, "scalar" if s.shape is not None and len(s.shape) <= 1 else "values", s.dtype)
            for s in signature.outputs
        )
    if output_tensor is not None:
        spec = signature.output(output_tensor)
    elif len(signature.outputs) == 1:
        spec = signature.outputs[0]
    else:
        raise SignatureError(
            f"signature {signature.name!r} has outputs {signature.output_names}: choose one with output_tensor=",
            reason="ambiguous output",
        )
    if returns == "probabilities":
        return (OutputColumn(prediction_col, spec.name, "values", spec.dtype),)
    one_per_row = spec.shape is not None and len(spec.shape) <= 1
    if one_per_row and not spec.dtype.startswith(("int", "uint")):
        raise SignatureError(
            f"output {spec.name!r} {spec.describe()} holds one {spec.dtype} per row, not class "
            f"scores: use returns='probabilities' or 'all'",
            reason="not class scores",
            signature=signature.name,
        )
    return (OutputColumn(prediction_col, spec.name, "class", "int32"),)


def describe_arrow_field(field: Any) -> ColumnType:
    """ColumnType of a pyarrow Field."""
    import pyarrow as pa

    kind, depth, fixed = field.type, 0, []
    t = pa.types
    while t.is_list(kind) or t.is_large_list(kind) or t.is_fixed_size_list(kind):
        fixed.append(kind.list_size if t.is_fixed_size_list(kind) else None)
        depth, kind = depth + 1, kind.value_type
    if t.is_integer(kind) or t.is_floating(kind) or t.is_boolean(kind):
        leaf = "numeric"
    elif depth == 0 and (t.is_binary(kind) or t.is_large_binary(kind)):
        leaf = "binary"
    else:
        leaf = "other"
    return ColumnType(field.name, str(field.type), leaf, depth, tuple(fixed))


def describe_spark_field(field: Any) -> ColumnType:
    """ColumnType of a pyspark StructField (Spark arrays have no fixed size)."""
    from pyspark.sql import types as T

    kind, depth = field.dataType, 0
    while isinstance(kind, T.ArrayType):
        depth, kind = depth + 1, kind.elementType
    numeric = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.BooleanType)
    if isinstance(kind, numeric):
        leaf = "numeric"
    elif depth == 0 and isinstance(kind, T.BinaryType):
        leaf = "binary"
    else:
        leaf = "other"
    return ColumnType(field.name, field.dataType.simpleString(), leaf, depth, (None,) * depth)
