"""The ``rdd.mapPartitions`` face: Rows in, Rows out, in batches.

Rows are Python objects already, so each batch's input values are handed to
``pyarrow.array`` (C++ conversion, one call per column) and then go through
the same Arrow path and checks as :meth:`Scorer.transform`. ML vectors
(``DenseVector``) and numpy arrays are accepted as row values.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from scoring._plan import describe_arrow_field
from scoring._runner import Runner
from scoring.errors import NullValueError, SignatureMismatchError

__all__ = ["score_rows"]


def score_rows(runner: Runner, rows: Iterable[Any]) -> Iterator[Any]:
    """Score ``rows`` (pyspark Rows or mappings) in batches of ``runner.batch_size``; yield Rows.

    The columns read and the plan come from the first row and the first batch.
    """
    from pyspark.sql import Row

    it = iter(rows)
    first = list(islice(it, runner.batch_size))
    if not first:
        return
    fields = list(first[0].asDict()) if hasattr(first[0], "asDict") else list(first[0])
    needed = runner.request.needed_columns(fields)
    first_batch = _to_batch(first, needed, 0)
    planned = runner.planned([describe_arrow_field(f) for f in first_batch.schema])
    for out in planned.score_batches(_batches(first_batch, it, needed, runner.batch_size)):
        for record in out.to_pylist():
            yield Row(**record)


def _batches(first: Any, rest: Iterator[Any], columns: list[str], size: int) -> Iterator[Any]:
    yield first
    offset = first.num_rows
    while True:
        chunk = list(islice(rest, size))
        if not chunk:
            return
        yield _to_batch(chunk, columns, offset)
        offset += len(chunk)


def _to_batch(rows: list[Any], columns: list[str], offset: int) -> Any:
    """A RecordBatch of ``columns`` from row values (vectors unwrapped to numpy)."""
    import pyarrow as pa

    arrays = []
    for column in columns:
        try:
            values = [row[column] for row in rows]
        except (KeyError, ValueError) as exc:
            raise SignatureMismatchError(
                f"row has no column {column!r}", column=column, reason="no such column"
            ) from exc
        if values and hasattr(values[0], "toArray"):
            values = [v.toArray() if v is not None else None for v in values]
        array = pa.array(values)
        if pa.types.is_null(array.type):
            raise NullValueError(
                f"column {column!r} row {offset}: the row is null", column=column, reason="null", row=offset
            )
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, names=columns)
