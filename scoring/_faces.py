"""The faces over the runner besides the DataFrame transform: Rows, a column function, and the in-process precision comparison.

Each takes a :class:`scoring._runner.Runner` (never the Scorer), binds it to
its data and scores through it, so every face shares the runner's model
cache, device and precision decisions and Arrow checks.

The ``rdd.mapPartitions`` face: Rows in, Rows out, in batches.

Rows are Python objects already, so each batch's input values are handed to
``pyarrow.array`` (C++ conversion, one call per column) and then go through
the same Arrow path and checks as :meth:`Scorer.transform`. ML vectors
(``DenseVector``) and numpy arrays are accepted as row values.

The column-function face: ``df.withColumn("p", scorer.udf()(col("features")))``.

Built on ``pyspark.sql.functions.arrow_udf`` (PySpark >= 4.1: pyarrow arrays
in and out, no pandas), falling back to ``pandas_udf`` on older PySpark (3.5,
4.0), where a struct result (``returns="all"``) must come back as a pandas
DataFrame, one column per field, and anything else as a Series. Rows carry no
version column; error positions count from the Arrow batch.

What reduced precision costs a given model: score a sample both ways and compare.

:func:`compare_precision` runs one signature over the same rows in float32 and
in the reduced precision (in this process, no Spark), through the same
:class:`~scoring._runner.Runner` and per-worker model cache as the Scorer, and
reports the class agreement (argmax of the output), the largest absolute
difference of any output value, each precision's accuracy when labels are
given, and each run's seconds. ``python -m scoring.precision`` is the same
from a shell over a Parquet sample.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from itertools import islice
from typing import Any

import numpy as np

from scoring._arrow import describe_arrow_field
from scoring._device import resolve_precision
from scoring._model_cache import DEFAULT_CAPACITY
from scoring._plan import Request, parse_signature, select_output
from scoring._runner import Runner, spark_data_type
from scoring._source import ModelRef, model_source
from scoring.errors import NullValueError, SignatureError, SignatureMismatchError

__all__ = ["PrecisionReport", "compare_precision", "make_udf", "score_rows"]


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


def make_udf(runner: Runner) -> Callable[..., Any]:
    """A function taking one Column (or name) per signature input, returning a Column."""
    request = runner.request
    specs = request.signature.inputs
    return_type = _return_type(request)
    names = [o.name for o in request.outputs]
    struct = request.returns == "all"

    def call(*cols: Any) -> Any:
        if len(cols) != len(specs):
            raise TypeError(
                f"scorer.udf() takes {len(specs)} column(s), one per input {[s.name for s in specs]}, got {len(cols)}"
            )
        labels = [c if isinstance(c, str) else _label(c) for c in cols]
        bound = runner.positional(labels)

        def predict(*arrays: Any) -> Any:
            import pyarrow as pa

            model, _ = bound.model()
            outs = bound.score_columns(model, dict(zip(labels, arrays)), len(arrays[0]), 0)
            return pa.StructArray.from_arrays(outs, names=names) if struct else outs[0]

        return _wrap(predict, return_type, struct)(*cols)

    return call


def _return_type(request: Request) -> Any:
    if request.returns == "all":
        from pyspark.sql.types import StructField, StructType

        return StructType([StructField(o.name, spark_data_type(o), True) for o in request.outputs])
    return spark_data_type(request.outputs[0])


def _label(column: Any) -> str:
    """A readable name for a Column in error messages (``Column<'x'>`` → ``x``)."""
    text = str(column)
    if text.startswith("Column<'") and text.endswith("'>"):
        return text[len("Column<'") : -2]
    return text


def _wrap(predict: Callable[..., Any], return_type: Any, struct: bool) -> Any:
    try:
        # PySpark >= 4.1 (the ignore is for the 3.5 leg, whose stubs lack them)
        from pyspark.sql.functions import ArrowUDFType, arrow_udf  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # PySpark < 4.1
        return _pandas_wrap(predict, return_type, struct)
    with warnings.catch_warnings():  # it prefers type hints; the explicit type is exact
        warnings.simplefilter("ignore", UserWarning)
        return arrow_udf(predict, returnType=return_type, functionType=ArrowUDFType.SCALAR)


def _pandas_wrap(predict: Callable[..., Any], return_type: Any, struct: bool) -> Any:
    from pyspark.sql.functions import PandasUDFType, pandas_udf

    def on_series(*series: Any) -> Any:
        import pyarrow as pa

        result = predict(*(pa.array(s, from_pandas=True) for s in series))
        if struct:  # a StructArray's to_pandas() is a Series of dicts, which Spark refuses for a struct
            return pa.Table.from_struct_array(result).to_pandas()
        return result.to_pandas()

    with warnings.catch_warnings():  # it prefers type hints (SPARK-28264); the explicit type is exact
        warnings.simplefilter("ignore", UserWarning)
        return pandas_udf(on_series, returnType=return_type, functionType=PandasUDFType.SCALAR)


@dataclass(frozen=True)
class PrecisionReport:
    """float32 against ``precision`` over ``rows`` rows of one output tensor (``output_tensor``).

    ``class_agreement``: share of rows whose argmax is the same (None for an
    output of one value per row); ``max_abs_diff``: largest absolute difference
    of any output value; ``accuracy``: per precision, when labels were given;
    ``seconds``: per precision, the timed pass after one warm-up batch.
    """

    model: str
    output_tensor: str
    rows: int
    precision: str
    class_agreement: float | None
    max_abs_diff: float
    accuracy: dict[str, float] | None
    seconds: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values."""
        return asdict(self)

    def __str__(self) -> str:
        lines = [f"{self.model}: output {self.output_tensor!r}, {self.rows} rows, float32 vs {self.precision}"]
        if self.class_agreement is not None:
            same = round(self.class_agreement * self.rows)
            lines.append(f"  class agreement      {self.class_agreement:.2%} ({same}/{self.rows} rows)")
        lines.append(f"  largest difference   {self.max_abs_diff:.6f} (absolute, any output value)")
        if self.accuracy:
            lines.append("  accuracy             " + ", ".join(f"{k} {v:.2%}" for k, v in self.accuracy.items()))
        rates = ", ".join(f"{k} {self.rows / s:,.0f} rows/s" for k, s in self.seconds.items() if s > 0)
        lines.append(f"  speed (this process) {rates}")
        return "\n".join(lines)


def compare_precision(
    model: ModelRef,
    features: np.ndarray | Mapping[str, np.ndarray],
    *,
    precision: str = "bfloat16",
    signature: str = "serving_default",
    output_tensor: str | None = None,
    labels: np.ndarray | None = None,
    batch_size: int = 1024,
) -> PrecisionReport:
    """Score ``features`` in float32 and in ``precision``; compare the two.

    ``model``: a local SavedModel dir, a model URL or a handle (as for
    :class:`scoring.Scorer`). ``features``: one array for a single-input
    signature, else ``{input name: array}``, rows first. ``output_tensor``: which
    output tensor to compare (needed when the signature has several). Raises
    PrecisionError when ``precision`` cannot run on this CPU (``"auto"`` that
    falls back to float32 compares float32 with itself).
    """
    source = model_source(model)
    sig = parse_signature(source.signatures(), signature, source.describe())
    inputs = dict(features) if isinstance(features, Mapping) else {_only(sig.input_names, "input", sig.name): features}
    for name in sig.input_names:
        if name not in inputs:
            raise SignatureError(f"no features for input {name!r} of {sig.name!r}", reason="missing input")
    output = output_tensor or _only(sig.output_names, "output", sig.name)
    sig.output(output)
    rows = len(next(iter(inputs.values())))
    if labels is not None and len(labels) != rows:
        raise ValueError(f"labels has {len(labels)} rows, features {rows}")
    resolved = resolve_precision(precision)
    request = Request(sig, None, "probabilities", select_output(sig, "probabilities", output, output))
    results, seconds = {}, {}
    for name in dict.fromkeys(("float32", resolved)):
        runner = Runner(source, request, batch_size, threads=_cores(), capacity=DEFAULT_CAPACITY, precision=name)
        results[name], seconds[name] = _run(runner.positional(sig.input_names), inputs, output, rows)
    return _report(source.describe(), output, resolved, results["float32"], results[resolved], labels, seconds)


def _only(names: list[str], kind: str, signature: str) -> str:
    if len(names) != 1:
        raise SignatureError(f"signature {signature!r} has {kind}s {names}: name the {kind} to compare",
                             reason=f"several {kind}s")  # fmt: skip
    return names[0]


def _cores() -> int:
    """Every core this process may use: the comparison runs alone, outside Spark's task slots."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _run(runner: Runner, inputs: Mapping[str, np.ndarray], output: str, rows: int) -> tuple[Any, float]:
    """Score ``inputs`` through ``runner`` (the model cache, this process's device); (output, seconds)."""
    model, _ = runner.model()
    first = {k: v[: runner.batch_size] for k, v in inputs.items()}
    runner.predict(model.function, first, len(next(iter(first.values()))))  # the first call pays its graph rewrite
    started = time.perf_counter()
    values = runner.predict(model.function, inputs, rows)[output]
    return values, time.perf_counter() - started


def _report(
    model: str, output: str, precision: str, full: np.ndarray, low: np.ndarray,
    labels: np.ndarray | None, seconds: dict[str, float],
) -> PrecisionReport:  # fmt: skip
    rows = len(full)
    flat, flat_low = full.reshape(rows, -1).astype(np.float64), low.reshape(rows, -1).astype(np.float64)
    agreement = None
    accuracy = None
    if flat.shape[1] > 1:
        classes, classes_low = flat.argmax(axis=1), flat_low.argmax(axis=1)
        agreement = float(np.mean(classes == classes_low))
        if labels is not None:
            truth = np.asarray(labels).reshape(-1)
            accuracy = {"float32": float(np.mean(classes == truth))}
            accuracy[precision] = float(np.mean(classes_low == truth))
    diff = float(np.abs(flat - flat_low).max()) if rows else 0.0
    secs = {k: round(v, 3) for k, v in seconds.items()}
    return PrecisionReport(model, output, rows, precision, agreement, diff, accuracy, secs)
