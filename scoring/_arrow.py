"""Arrow column → numpy tensor, without a Python object per row.

Accepted column types (``T`` numeric):

- ``T`` scalar, for a signature whose example holds one value;
- ``list<T>`` / ``large_list<T>`` / ``fixed_size_list<T>``, flat values reshaped
  to the signature's example shape;
- nested lists (``list<list<list<T>>>``): each level's lengths are checked
  against the signature's dims when the nesting matches its rank, otherwise
  only the values per row;
- ``binary`` / ``large_binary``: each row holds the raw little-endian bytes of
  one example in the signature's dtype (``ndarray.astype('<f4').tobytes()``).

Offsets and values are numpy views of the Arrow buffers; lengths are checked
from the offsets in one vectorised step. A null row or element raises
NullValueError, a wrong length ShapeMismatchError, both naming the column,
the expected shape and the row's position (``row_offset`` + index in batch).
The result is cast to the signature's dtype (no copy when it already is).

``describe_arrow_field`` / ``describe_spark_field``: a column's type as planning sees it
(:class:`scoring._plan.ColumnType`).

``pack_tensors``: store tensor columns as the binary bytes the scorer reads fastest.

Spark hands an ``array<float>`` column to Python through a per-element
conversion (Parquet → rows → Arrow list); a ``binary`` column of the same
values crosses as one copy per row. On a small model that conversion is most
of the job (``bench/scoring.py``: the mlp's data path runs about 1.5× faster on
binary), so a features table scored many times is worth packing once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from scoring._plan import NUMERIC_DTYPES, ColumnType, TensorSpec, not_numeric
from scoring.errors import ColumnTypeError, NullValueError, ShapeMismatchError

__all__ = [
    "column_to_tensor",
    "describe_arrow_field",
    "describe_spark_field",
    "numpy_dtype",
    "pack_tensors",
    "tensor_bytes",
]


def numpy_dtype(tf_dtype: str) -> np.dtype:
    """numpy dtype for a TensorFlow dtype name (bfloat16 fed as float32, cast by TF)."""
    if tf_dtype == "bfloat16":
        return np.dtype(np.float32)
    return np.dtype(tf_dtype)


def column_to_tensor(array: Any, spec: TensorSpec, column: str, row_offset: int = 0) -> np.ndarray:
    """Convert one Arrow column (Array or ChunkedArray) to a tensor of ``spec``'s shape/dtype."""
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    where = _Where(column, spec, row_offset)
    n = len(array)
    if n == 0:
        dims = spec.row_shape or ()
        return np.zeros((0, *(max(d, 0) for d in dims)), dtype=numpy_dtype(spec.dtype))
    if array.null_count:
        where.null(_first_null(array), "the row is null")
    kind = array.type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        flat, per_row = _binary_values(array, spec, where)
    elif _is_list(kind):
        flat, per_row = _list_values(array, spec, where)
    elif _is_numeric(kind):
        flat, per_row = _numeric(array), np.ones(n, dtype=np.int64)
    else:
        raise not_numeric(column, str(kind), spec)
    return _shape(flat, per_row, n, spec, where)


def tensor_bytes(array: Any, dtype: str, column: str, row_offset: int = 0) -> Any:
    """The binary input form of a list column: each row's values as little-endian ``dtype`` bytes.

    The reverse of the ``binary`` layout above, for :func:`scoring.pack_tensors`:
    any list nesting is flattened in row-major order, numbers are cast to
    :func:`numpy_dtype` of ``dtype`` (a signature dtype name: ``float32``;
    ``bfloat16`` packs as float32, as it is fed). A null row or element raises
    NullValueError naming the column and row (``row_offset`` + index); a column
    that is not a list of numbers raises ColumnTypeError.
    """
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    spec = TensorSpec(name=column, dtype=dtype, shape=None)
    where = _Where(column, spec, row_offset)
    if not _is_list(array.type):
        raise not_numeric(column, str(array.type), spec)
    n = len(array)
    if array.null_count:
        where.null(_first_null(array), "the row is null")
    target = numpy_dtype(dtype).newbyteorder("<")
    flat, per_row = _list_values(array, spec, where)
    data = np.ascontiguousarray(flat, dtype=target)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(per_row * target.itemsize, out=offsets[1:])
    if offsets[-1] > np.iinfo(np.int32).max:
        raise ValueError(
            f"column {column!r}: {int(offsets[-1])} bytes in one Arrow batch exceed a binary column's "
            f"2 GiB; lower spark.sql.execution.arrow.maxRecordsPerBatch"
        )
    buffers = [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data.view(np.uint8))]
    return pa.Array.from_buffers(pa.binary(), n, buffers)


class _Where:
    """Builds errors naming the column, the expected shape and the row position."""

    def __init__(self, column: str, spec: TensorSpec, row_offset: int) -> None:
        self.column, self.spec, self.row_offset = column, spec, row_offset

    def null(self, index: int, what: str) -> None:
        row = self.row_offset + index
        raise NullValueError(
            f"column {self.column!r} row {row}: {what} (input {self.spec.name!r} "
            f"expects {self.spec.describe()})",
            column=self.column, reason="null", row=row, expected=self.spec.describe(),
        )  # fmt: skip

    def length(self, index: int, got: int, expected: int | str, unit: str = "values") -> None:
        row = self.row_offset + index
        raise ShapeMismatchError(
            f"column {self.column!r} row {row} has {got} {unit}, expected {expected} "
            f"(input {self.spec.name!r} {self.spec.describe()})",
            column=self.column, reason="wrong length", row=row, got=got, expected=expected,
        )  # fmt: skip


def _is_list(kind: Any) -> bool:
    import pyarrow as pa

    t = pa.types
    return bool(t.is_list(kind) or t.is_large_list(kind) or t.is_fixed_size_list(kind))


def _is_numeric(kind: Any) -> bool:
    import pyarrow as pa

    t = pa.types
    return bool(t.is_integer(kind) or t.is_floating(kind) or t.is_boolean(kind))


def _first_null(array: Any) -> int:
    import pyarrow.compute as pc

    return int(pc.index(pc.is_null(array), True).as_py())


def _numeric(values: Any) -> np.ndarray:
    """Zero-copy numpy view of a null-free numeric array (booleans are unpacked)."""
    return values.to_numpy(zero_copy_only=not _is_bool(values.type), writable=False)


def _is_bool(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_boolean(kind))


def _offsets(array: Any) -> np.ndarray:
    """Row offsets (n + 1) of a list or binary array, honouring the array's slice offset."""
    import pyarrow as pa

    large = pa.types.is_large_list(array.type) or pa.types.is_large_binary(array.type)
    width = np.int64 if large else np.int32
    buf = array.buffers()[1]
    return np.frombuffer(buf, dtype=width, count=len(array) + 1, offset=array.offset * width().itemsize)


def _list_values(array: Any, spec: TensorSpec, where: _Where) -> tuple[np.ndarray, np.ndarray]:
    """Flatten every list level; return leaf values and values per row."""
    import pyarrow as pa

    n = len(array)
    dims = spec.row_shape
    depth, kind = 0, array.type
    while _is_list(kind):
        depth, kind = depth + 1, kind.value_type
    # Check each level's lengths only when the nesting maps onto the example dims.
    level_dims = dims if dims is not None and depth > 1 and depth == len(dims) else None
    level, per_row_index = 0, np.arange(n + 1)
    while _is_list(array.type):
        if pa.types.is_fixed_size_list(array.type):
            size = array.type.list_size
            offs = (np.arange(len(array) + 1, dtype=np.int64) + array.offset) * size
            child = array.values
        else:
            offs = _offsets(array)
            child = array.values
        _check_level(offs, level_dims, level, per_row_index, where)
        start, stop = int(offs[0]), int(offs[-1])
        per_row_index = offs[per_row_index] - start
        array = child.slice(start, stop - start)
        level += 1
        if array.null_count:
            leaf = _first_null(array)
            row = int(np.searchsorted(per_row_index, leaf, side="right") - 1)
            where.null(row, f"element {leaf - int(per_row_index[row])} is null")
    if not _is_numeric(array.type):
        raise ColumnTypeError(
            f"column {where.column!r} holds {array.type} values, expected numbers for input "
            f"{spec.name!r} {spec.describe()}",
            column=where.column,
            reason="not numeric",
            expected=spec.describe(),
        )
    return _numeric(array), np.diff(per_row_index)


def _check_level(offs: np.ndarray, dims: tuple[int, ...] | None, level: int, rows: np.ndarray, where: _Where) -> None:
    """When the nesting maps onto the signature's dims, every list at ``level`` must match."""
    if dims is None or dims[level] < 0:
        return
    lengths = np.diff(offs)
    bad = np.flatnonzero(lengths != dims[level])
    if bad.size:
        first = int(bad[0])
        row = int(np.searchsorted(rows, first, side="right") - 1)
        where.length(row, int(lengths[first]), dims[level], unit=f"values at nesting level {level}")


def _binary_values(array: Any, spec: TensorSpec, where: _Where) -> tuple[np.ndarray, np.ndarray]:
    """Each row's bytes reinterpreted as little-endian values of the signature's dtype."""
    dtype = numpy_dtype(spec.dtype).newbyteorder("<")
    offs = _offsets(array)
    byte_lengths = np.diff(offs)
    bad = np.flatnonzero(byte_lengths % dtype.itemsize)
    if bad.size:
        i = int(bad[0])
        where.length(i, int(byte_lengths[i]), f"a multiple of {dtype.itemsize}", unit="bytes")
    buf = array.buffers()[2]
    raw = np.frombuffer(buf, dtype=np.uint8) if buf is not None else np.zeros(0, np.uint8)
    data = raw[int(offs[0]) : int(offs[-1])]
    return data.view(dtype), byte_lengths // dtype.itemsize


def _shape(flat: np.ndarray, per_row: np.ndarray, n: int, spec: TensorSpec, where: _Where) -> np.ndarray:
    """Check values per row against the signature, reshape to (n, *example) and cast."""
    dims = spec.row_shape
    expected = spec.row_size
    if expected is None:
        expected = int(per_row[0]) if n else 0
        if dims is not None and dims.count(-1) == 1 and n:
            known = math.prod(d for d in dims if d >= 0)
            if known and expected % known:
                where.length(0, expected, f"a multiple of {known}")
    bad = np.flatnonzero(per_row != expected)
    if bad.size:
        i = int(bad[0])
        where.length(i, int(per_row[i]), expected)
    if dims is None or dims.count(-1) > 1:
        shape: tuple[int, ...] = (n, expected)
    else:
        shape = (n, *dims)
    out = flat.reshape(shape)
    target = numpy_dtype(spec.dtype)
    return out if out.dtype == target else out.astype(target)


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


def pack_tensors(df: Any, columns: str | Sequence[str], dtype: str = "float32") -> Any:
    """``df`` with each of ``columns`` (arrays of numbers, nested or not) as a ``binary`` column.

    Each row becomes its values, flattened in row-major order, as
    little-endian ``dtype`` bytes (``np.asarray(row, "<f4").tobytes()`` for
    float32): the ``binary`` input :class:`scoring.Scorer` reshapes to the
    signature's example shape. Pass the signature input's dtype (a bfloat16
    input is fed float32, so it packs as float32, as the Scorer reads it). Other columns
    and the column order are kept. Lazy, like any transformation: write the
    result (``.write.parquet(...)``) and score that. A null row or element
    fails the task with NullValueError naming the column and the row's position
    in its partition; a column that is not an array of numbers raises
    ColumnTypeError here.
    """
    from pyspark.sql import types as T

    wanted = [columns] if isinstance(columns, str) else list(columns)
    if dtype not in NUMERIC_DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(sorted(NUMERIC_DTYPES))}")
    fields = {f.name: f for f in df.schema.fields}
    for name in wanted:
        if name not in fields:
            raise ColumnTypeError(
                f"no column {name!r} to pack; the columns are {', '.join(fields)}", column=name, reason="missing"
            )
        col = describe_spark_field(fields[name])
        if col.depth == 0 or col.leaf != "numeric":
            raise ColumnTypeError(
                f"column {name!r} has type {col.text}, expected an array of numbers to pack as {dtype} bytes",
                column=name, reason="not an array of numbers",
            )  # fmt: skip
    chosen = frozenset(wanted)
    schema = T.StructType(
        [T.StructField(f.name, T.BinaryType(), f.nullable) if f.name in chosen else f for f in df.schema.fields]
    )
    names = [f.name for f in df.schema.fields]

    def pack(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        seen = 0
        for batch in batches:
            arrays = [
                tensor_bytes(batch.column(i), dtype, name, seen) if name in chosen else batch.column(i)
                for i, name in enumerate(names)
            ]
            seen += batch.num_rows
            yield pa.RecordBatch.from_arrays(arrays, names=names)

    return df.mapInArrow(pack, schema)
