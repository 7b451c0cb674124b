"""Pure planning: the model's signatures parsed into typed specs, which column feeds which
signature input, and what comes out; no I/O here.

The signatures input is the ``MANIFEST.json`` format (``docs/api.md``), as
:func:`scoring.inspect_signatures` returns it (reading is in :mod:`scoring._source`).
:class:`Signature` / :class:`TensorSpec` are the typed form the scorer plans with.
Planning works on :class:`ColumnType` descriptions (made in :mod:`scoring._arrow`) so the
same checks run on a Spark schema (on the driver, before any job) and on an Arrow schema.
Everything the schema already shows is checked here: a signature input without a column, a
non-numeric column, a scalar or too deeply nested column for the input's shape, a
fixed-size list whose size contradicts it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scoring.errors import ColumnTypeError, ShapeMismatchError, SignatureError, SignatureMismatchError

__all__ = [
    "NUMERIC_DTYPES",
    "RETURNS",
    "ColumnType",
    "OutputColumn",
    "Plan",
    "Request",
    "Signature",
    "TensorSpec",
    "make_plan",
    "map_inputs",
    "not_numeric",
    "parse_signature",
    "select_output",
]

# TensorFlow dtype names the scorer can feed from numeric Arrow data.
NUMERIC_DTYPES = frozenset(
    {
        "float16", "bfloat16", "float32", "float64",
        "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "bool",
    }
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class TensorSpec:
    """One signature input or output: ``shape`` is ``None`` for unknown rank, -1 = unknown dim."""

    name: str
    dtype: str
    shape: tuple[int, ...] | None

    @property
    def row_shape(self) -> tuple[int, ...] | None:
        """The shape of one example (the batch dimension dropped); None if unknown rank."""
        if self.shape is None:
            return None
        return self.shape[1:]

    @property
    def row_size(self) -> int | None:
        """Values per example, or None when a dimension (or the rank) is unknown."""
        row = self.row_shape
        if row is None or any(d < 0 for d in row):
            return None
        return math.prod(row)

    def describe(self) -> str:
        """``float32[-1, 784]``-style text for messages."""
        dims = "?" if self.shape is None else ", ".join(str(d) for d in self.shape)
        return f"{self.dtype}[{dims}]"


@dataclass(frozen=True, kw_only=True)
class Signature:
    """A parsed serving signature; inputs and outputs sorted by name."""

    name: str
    method_name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def input(self, name: str) -> TensorSpec:
        """The input called ``name``; SignatureError listing the inputs otherwise."""
        return self._find(self.inputs, "input", name)

    def output(self, name: str) -> TensorSpec:
        """The output called ``name``; SignatureError listing the outputs otherwise."""
        return self._find(self.outputs, "output", name)

    def _find(self, specs: tuple[TensorSpec, ...], kind: str, name: str) -> TensorSpec:
        for spec in specs:
            if spec.name == name:
                return spec
        raise SignatureError(
            f"signature {self.name!r} has no {kind} {name!r}; {kind}s: {[s.name for s in specs]}",
            reason=f"no such {kind}",
            signature=self.name,
        )

    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [s.name for s in self.outputs]


def parse_signature(signatures: Mapping[str, Any], name: str, where: str) -> Signature:
    """Pick signature ``name`` from the signatures dict; SignatureError naming ``where``."""
    if name not in signatures:
        raise SignatureError(
            f"{where} has no signature {name!r}; signatures: {sorted(signatures)}",
            path=where,
            reason="no such signature",
            signature=name,
        )
    raw = signatures[name]
    try:
        return Signature(
            name=name,
            method_name=str(raw.get("method_name", "")),
            inputs=_specs(raw["inputs"]),
            outputs=_specs(raw["outputs"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SignatureError(
            f"{where}: signature {name!r} is malformed: {exc!r}",
            path=where,
            reason="malformed signature",
            signature=name,
        ) from exc


def _specs(raw: Mapping[str, Any]) -> tuple[TensorSpec, ...]:
    specs = []
    for key in sorted(raw):
        shape = raw[key].get("shape")
        specs.append(
            TensorSpec(
                name=key,
                dtype=str(raw[key]["dtype"]),
                shape=None if shape is None else tuple(int(d) for d in shape),
            )
        )
    return tuple(specs)


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
