"""``pack_tensors``: store tensor columns as the binary bytes the scorer reads fastest.

Spark hands an ``array<float>`` column to Python through a per-element
conversion (Parquet → rows → Arrow list); a ``binary`` column of the same
values crosses as one copy per row. On a small model that conversion is most
of the job (``bench/scoring.py``: the mlp's data path runs about 1.5× faster on
binary), so a features table scored many times is worth packing once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from scoring._arrow import tensor_bytes
from scoring._plan import describe_spark_field
from scoring._signature import NUMERIC_DTYPES
from scoring.errors import ColumnTypeError

__all__ = ["pack_tensors"]


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
