"""The executor-side core shared by every face: Arrow columns in, Arrow columns out.

A :class:`Runner` is small and picklable (source, request, plan, options);
on the executor it localizes the model, takes it from the
per-worker cache, converts input columns with :mod:`scoring._arrow`, calls
the signature's concrete function in chunks of ``batch_size`` rows, and
builds the output Arrow arrays straight from numpy.

Read the next input batch on a background thread while TensorFlow computes.

In a mapInArrow task the Python worker alternates: read a batch from the JVM,
compute, write the result. Without read-ahead the JVM blocks on a full socket
while TensorFlow runs, and TensorFlow waits while the JVM decodes the next
batch, so each side idles part of the time. One thread reading ``depth``
batches ahead overlaps the two (TensorFlow and Arrow IPC reads release the
GIL). Exceptions from the source are re-raised in the consumer, in order.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np

from hdfs_models import cache_stats
from scoring._arrow import column_to_tensor
from scoring._device import bind_task, resolve_precision
from scoring._metrics import TaskRecorder, task_key
from scoring._model_cache import LoadedModel, cache_info, get_model
from scoring._plan import ColumnType, OutputColumn, Plan, Request
from scoring._source import Source
from scoring.errors import ColumnTypeError, ModelLoadError

__all__ = ["Runner", "arrow_type", "prefetch", "spark_data_type", "spark_type"]

log = logging.getLogger(__name__)


_SPARK_TYPES = {
    "float16": "float", "bfloat16": "float", "float32": "float", "float64": "double",
    "int8": "byte", "int16": "short", "int32": "int", "int64": "long",
    "uint8": "short", "uint16": "int", "uint32": "long", "bool": "boolean",
}  # fmt: skip


_NUMPY_OUT = {"float": "float32", "double": "float64", "byte": "int8", "short": "int16",
              "int": "int32", "long": "int64", "boolean": "bool"}  # fmt: skip


def spark_type(out: OutputColumn) -> str:
    """Spark DDL type of an output column (``int``, ``array<float>`` ...)."""
    if out.kind == "class":
        return "int"
    if out.dtype not in _SPARK_TYPES:
        raise ColumnTypeError(
            f"output {out.source!r} has dtype {out.dtype}, which the scorer cannot return",
            column=out.name,
            reason="unsupported output dtype",
        )
    scalar = _SPARK_TYPES[out.dtype]
    return scalar if out.kind == "scalar" else f"array<{scalar}>"


_SPARK_CLASSES = {"float": "FloatType", "double": "DoubleType", "byte": "ByteType", "short": "ShortType",
                  "int": "IntegerType", "long": "LongType", "boolean": "BooleanType"}  # fmt: skip


def spark_data_type(out: OutputColumn) -> Any:
    """The pyspark DataType of an output column, built directly (no DDL parsing).

    ``DataType.fromDDL`` is Spark 4 only, and on 4.x it asks the JVM to
    analyse each string; the types are known here, so they are just made.
    """
    from pyspark.sql import types as T

    ddl = spark_type(out)
    scalar = getattr(T, _SPARK_CLASSES[ddl.removeprefix("array<").rstrip(">")])()
    return T.ArrayType(scalar, containsNull=True) if ddl.startswith("array<") else scalar


def arrow_type(out: OutputColumn) -> Any:
    """The pyarrow type Spark expects for ``out``."""
    import pyarrow as pa

    ddl = spark_type(out)
    scalar = pa.from_numpy_dtype(np.dtype(_NUMPY_OUT[ddl.removeprefix("array<").rstrip(">")]))
    return pa.list_(pa.field("element", scalar)) if ddl.startswith("array<") else scalar


@dataclass(frozen=True)
class Runner:
    """Everything an executor needs to score; pickled into tasks.

    Built from a :class:`Request` without a plan; :meth:`planned` (columns of
    a schema) or :meth:`positional` (a column function's arguments) bind it to
    the data's columns before it scores.
    """

    source: Source
    request: Request
    batch_size: int
    threads: int | None
    capacity: int
    read_ahead: int = 1
    plan: Plan | None = None
    precision: str = "float32"
    metrics: Any = None  # where a task reports: an accumulator of MetricsParam, a SideOutput, or None

    def planned(self, columns: Sequence[ColumnType]) -> Runner:
        """This runner bound to ``columns`` (validated: ScoringError subclasses otherwise)."""
        return replace(self, plan=self.request.plan(columns))

    def positional(self, labels: Sequence[str]) -> Runner:
        """This runner feeding the inputs, in signature order, from columns labelled ``labels``."""
        return replace(self, plan=self.request.positional(labels))

    def read_columns(self) -> list[str]:
        """The columns a bound runner reads: keep_cols, then each input's column."""
        plan = self._bound()
        return list(dict.fromkeys([*plan.keep_cols, *(column for _, column in plan.inputs)]))

    def _bound(self) -> Plan:
        if self.plan is None:
            raise RuntimeError("Runner has no plan: bind it with planned() or positional() first")
        return self.plan

    def model(self, recorder: TaskRecorder | None = None) -> tuple[LoadedModel, int | None]:
        """Localize (once per node) and load (once per worker) the model.

        The task's GPU (if Spark assigned one) and the precision this
        worker's CPU allows are decided here, on the executor. ``recorder``
        gets the time of each step (stages ``localize`` and ``load``), the
        node-cache counters' change and the loads made.
        """
        rec = recorder or TaskRecorder()
        with rec.stage("localize"):
            before = cache_stats()
            local = self.source.localize()
            rec.add_cache(cache_stats() - before)
        name = self.request.signature.name
        loads = cache_info()
        with rec.stage("load"):
            placement = bind_task()
            precision = resolve_precision(self.precision, device=placement.device)
            try:
                model = get_model(local.key, local.path, name, threads=self.threads, capacity=self.capacity,
                                  precision=precision, placement=placement)  # fmt: skip
            except ModelLoadError:
                # A cached copy TensorFlow cannot read (DataLossError...) must not be served again:
                # drop it, so Spark's task retry downloads a fresh one (RELIABILITY L2).
                self.source.discard(local)
                raise
        after = cache_info()
        rec.model_loads += after["loads"] - loads["loads"]
        rec.load_seconds += after["load_seconds"] - loads["load_seconds"]
        rec.version = local.version
        return model, local.version

    def tensors(self, columns: Mapping[str, Any], row_offset: int) -> dict[str, np.ndarray]:
        """Input tensors from Arrow columns keyed by column name."""
        return {
            spec.name: column_to_tensor(columns[column], spec, column, row_offset)
            for spec, column in self._bound().inputs
        }

    def predict(self, function: Any, tensors: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        """Call ``function`` on chunks of ``batch_size`` rows; outputs concatenated as numpy."""
        needed = {o.source for o in self._bound().outputs}
        parts: dict[str, list[np.ndarray]] = {name: [] for name in needed}
        step = max(1, self.batch_size)
        for start in range(0, max(n, 1), step):
            chunk = {k: v[start : start + step] for k, v in tensors.items()}
            result = function(**chunk)
            for name in needed:
                parts[name].append(result[name].numpy())
        return {k: v[0] if len(v) == 1 else np.concatenate(v) for k, v in parts.items()}

    def score_columns(
        self,
        model: LoadedModel,
        columns: Mapping[str, Any],
        n: int,
        row_offset: int,
        recorder: TaskRecorder | None = None,
    ) -> list[Any]:
        """One Arrow array per output column, for ``n`` rows of input ``columns``.

        ``recorder`` gets the time of the stages ``convert`` and ``inference``.
        """
        rec = recorder or TaskRecorder()
        with rec.stage("convert"):
            tensors = self.tensors(columns, row_offset)
        with rec.stage("inference"):
            raw = self.predict(model.function, tensors, n)
        with rec.stage("convert"):
            return [_to_arrow(out, raw[out.source], n) for out in self._bound().outputs]

    def score_batches(self, batches: Iterable[Any], reads: Any = None) -> Iterator[Any]:
        """mapInArrow body: RecordBatches in, RecordBatches (keep, outputs, version) out.

        With ``metrics`` (an accumulator of :class:`scoring._metrics.MetricsParam`
        or a :class:`scoring._metrics.SideOutput`), a task that ends without
        error adds its record (:mod:`scoring._metrics`).
        ``reads`` (``seconds``, ``bytes``: a direct read's counter) adds the
        time spent reading files (on the read-ahead thread) and their bytes to
        the record; the ``read`` stage stays the wait for the next batch.
        """
        import pyarrow as pa

        rec = TaskRecorder()
        plan = self._bound()
        model, version = self.model(rec)
        names = [*plan.keep_cols, *(o.name for o in plan.outputs)]
        if plan.version_col:
            names.append(plan.version_col)
        for batch in rec.timed(prefetch(batches, self.read_ahead), "read"):
            n = batch.num_rows
            columns = {c: batch.column(c) for _, c in plan.inputs}
            arrays = [batch.column(c) for c in plan.keep_cols] + self.score_columns(model, columns, n, rec.rows_in, rec)
            with rec.stage("convert"):
                if plan.version_col:
                    arrays.append(version_array(version, n))
                out = pa.RecordBatch.from_arrays(arrays, names=names)
            rec.rows_in, rec.rows_out, rec.batches = rec.rows_in + n, rec.rows_out + out.num_rows, rec.batches + 1
            with rec.stage("write"):
                yield out
        if reads is not None:
            rec.read_seconds, rec.read_bytes = reads.seconds, reads.bytes
        self._report(rec)

    def _report(self, rec: TaskRecorder) -> None:
        """Add this task's record to the metrics accumulator or side output (inside a Spark task only)."""
        key = task_key() if self.metrics is not None else None
        if key is not None:
            self.metrics.add({key[0]: rec.record(key[1])})


def version_array(version: int | None, n: int) -> Any:
    """An int32 column of ``version`` (nulls when the version is unknown)."""
    import pyarrow as pa

    if version is None:
        return pa.nulls(n, pa.int32())
    return pa.array(np.full(n, version, dtype=np.int32))


def _to_arrow(out: OutputColumn, values: np.ndarray, n: int) -> Any:
    import pyarrow as pa

    target = arrow_type(out)
    if out.kind == "class":
        if values.ndim == 1 and values.dtype.kind in "iu":
            classes = values.astype(np.int32, copy=False)
        else:
            classes = np.argmax(values.reshape(n, -1), axis=1).astype(np.int32)
        return pa.array(classes)
    if out.kind == "scalar":
        return pa.array(values.reshape(n).astype(target.to_pandas_dtype(), copy=False))
    flat = values.reshape(n, -1)
    width = flat.shape[1]
    dtype = np.dtype(target.value_type.to_pandas_dtype())
    offsets = pa.array(np.arange(0, (n + 1) * width, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(flat.reshape(-1).astype(dtype, copy=False)), type=target)


T = TypeVar("T")


_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(source: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Yield the items of ``source``, reading up to ``depth`` items ahead on a thread.

    ``depth`` < 1 disables read-ahead. When the consumer stops early, the
    reader stops after at most ``depth + 1`` further items.
    """
    if depth < 1:
        yield from source
        return
    items: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            items.put(_Failure(exc))

    reader = threading.Thread(target=read, name="scoring-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        reader.join(timeout=5)
