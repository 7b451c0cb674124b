"""Scorer: batched TensorFlow inference over Spark data, typed by the model's signature.

Three faces over one core (:class:`scoring._runner.Runner`):

- :meth:`Scorer.transform` — ``df.mapInArrow``; the fastest path for any DataFrame.
- :meth:`Scorer.transform_files` / :meth:`Scorer.transform_table` — Parquet or ORC read in
  the Python workers (:mod:`scoring._files`), past Spark's Arrow conversion.
- :meth:`Scorer.score_partition` — for ``rdd.mapPartitions`` over Rows.
- :meth:`Scorer.udf` — a column function (Arrow UDF) for ``withColumn``.

Everything the schema shows is validated on the driver before a job starts
(see :mod:`scoring._plan`); row-level problems (a wrong length, a null) raise
on the executor naming the column, the expected shape and the row position
(counted from the start of the task's partition for ``transform`` and
``score_partition``, from the start of the Arrow batch for ``udf``).

``model_version``: the localized version for URLs and handles; for a plain
local directory the directory's name when it is an integer (``.../models/3``),
otherwise null.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from hdfs_models._runtime import classic_only, connect_client, is_connect, require_spark
from hdfs_models.cache import CacheOptions
from scoring._arrow import describe_arrow_field, describe_spark_field
from scoring._device import check_precision
from scoring._faces import make_udf, score_rows
from scoring._files import DirectTask, default_parallelism, plan_direct_read, table_format
from scoring._metrics import MetricsParam, SideOutput, summarize
from scoring._model_cache import DEFAULT_CAPACITY
from scoring._plan import ColumnType, OutputColumn, Plan, Request, Signature, parse_signature, select_output
from scoring._runner import Runner, spark_data_type
from scoring._source import ModelRef, model_source
from scoring.errors import InputFileError

__all__ = ["Scorer"]

log = logging.getLogger(__name__)


class Scorer:
    """Batched scorer for one serving signature of one model version.

    Every option after ``model`` is keyword-only, and a built Scorer is
    immutable (setting an attribute raises ``AttributeError``): the
    signature and the output columns are derived from the options once, here.

    ``model``: local SavedModel dir, model URL (localized on each executor
    through ``hdfs_models``; pinned on the driver), or a handle with
    ``local_path()``/``version``/``digest``. ``input_cols``: None (columns named
    like the signature's inputs; a single input with no column of its name
    takes the one column outside ``keep_cols``), one column name
    (single-input signatures) or ``{signature_input: column}``. ``returns``:
    ``"class"`` (argmax, int), ``"probabilities"`` (array of the output's
    dtype) or ``"all"`` (one column per output tensor, named like it);
    ``output_tensor`` picks the output tensor when the signature has several.
    ``threads``: TF intra-op threads per worker (default: the task's CPUs).
    ``read_ahead``: Arrow batches a transform task reads ahead on a thread
    while TensorFlow computes (0: none). ``precision``: ``"float32"``,
    ``"bfloat16"`` (oneDNN auto mixed precision; a PrecisionError on an
    executor whose CPU lacks AVX512-BF16/AMX) or ``"auto"`` (bfloat16 where the
    CPU has it); decided on each executor (:mod:`scoring._device`). When
    Spark assigns tasks GPUs, each worker runs on its task's GPU
    (:mod:`scoring._device`). ``cache``: a :class:`~hdfs_models.CacheOptions`
    for a model URL, carried to every executor's node cache (root, limits,
    trust, lock timeout; ``None``: each executor's ``HDFS_MODELS_*``); a
    handle brings its own (``distribute(..., options=)``). ``metrics_dir``:
    where the tasks write their :meth:`metrics` records, one small JSON file
    each, instead of a Spark accumulator: a store URL (or, on one machine,
    a local path) that the driver and every executor share. Spark Connect
    has no accumulators, so there :meth:`metrics` needs it; on classic Spark
    it is optional and gives the same figures. Each scorer writes into a
    ``scorer-<16 hex>`` directory of its own under it (made at the first
    transform), and never removes it. The signature is read once, here, on
    the driver.
    """

    def __init__(
        self,
        model: ModelRef,
        *,
        input_cols: str | Mapping[str, str] | None = None,
        signature: str = "serving_default",
        returns: str = "class",
        batch_size: int = 1024,
        keep_cols: Sequence[str] = (),
        version_col: str | None = "model_version",
        threads: int | None = None,
        output_tensor: str | None = None,
        prediction_col: str = "prediction",
        cache_capacity: int = DEFAULT_CAPACITY,
        read_ahead: int = 1,
        precision: str = "float32",
        cache: CacheOptions | None = None,
        metrics_dir: str | None = None,
    ) -> None:
        require_spark("Scorer")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        if isinstance(keep_cols, str):
            keep_cols = (keep_cols,)
        self._source = model_source(model, cache)
        self.signature: Signature = parse_signature(self._source.signatures(), signature, self._source.describe())
        self.input_cols = dict(input_cols) if isinstance(input_cols, Mapping) else input_cols  # a copy: fixed
        self.output_columns: tuple[OutputColumn, ...] = select_output(
            self.signature, returns, output_tensor, prediction_col
        )
        self.returns = returns
        self.batch_size = batch_size
        self.keep_cols = tuple(keep_cols)
        self.version_col = version_col
        self.threads = threads
        self.cache_capacity = cache_capacity
        self.read_ahead = read_ahead
        self.precision = check_precision(precision)
        self.metrics_dir = metrics_dir
        # where tasks report: a SideOutput, or the Spark accumulator the first transform makes
        self._metrics: Any = SideOutput.under(metrics_dir) if metrics_dir else None
        self._built = True

    def __setattr__(self, name: str, value: Any) -> None:
        """Settings are fixed once built (the signature and output columns were derived from them)."""
        if getattr(self, "_built", False):
            raise AttributeError(
                f"Scorer is immutable once built: {name!r} cannot be set; build a new Scorer with {name}=..."
            )
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"Scorer({self._source.describe()!r}, signature={self.signature.name!r}, returns={self.returns!r})"

    # -- planning (driver) ---------------------------------------------------------------

    def plan(self, columns: Sequence[ColumnType]) -> Plan:
        """Validate ``columns`` against the signature; ScoringError subclasses otherwise."""
        return self._request().plan(columns)

    def _request(self) -> Request:
        return Request(
            self.signature, self.input_cols, self.returns, self.output_columns, self.keep_cols, self.version_col
        )

    def _runner(self) -> Runner:
        """An unbound runner from the current settings (each face binds it to its columns)."""
        return Runner(
            self._source,
            self._request(),
            self.batch_size,
            self.threads,
            self.cache_capacity,
            self.read_ahead,
            precision=self.precision,
        )

    def output_schema(self, schema: Any) -> Any:
        """The Spark StructType :meth:`transform` returns for an input ``schema``."""
        from pyspark.sql.types import IntegerType, StructField, StructType

        plan = self.plan([describe_spark_field(f) for f in schema.fields])
        fields = [schema[c] for c in plan.keep_cols]
        fields += [StructField(o.name, spark_data_type(o), True) for o in plan.outputs]
        if plan.version_col:
            fields.append(StructField(plan.version_col, IntegerType(), True))
        return StructType(fields)

    # -- faces ---------------------------------------------------------------------------

    def transform(self, df: Any) -> Any:
        """Score a DataFrame through ``mapInArrow``: keep_cols, outputs, version_col.

        Only the input and keep columns are sent to Python. Raises ScoringError
        subclasses here, before any job, for whatever the schema already shows.
        """
        schema = self.output_schema(df.schema)
        runner = self._runner().planned([describe_spark_field(f) for f in df.schema.fields])
        # Ship only the columns the task reads: other columns would cross to Python for nothing.
        needed = runner.read_columns()
        if len(needed) < len(df.columns):
            df = df.select(*(_quoted(c) for c in needed))
        runner = replace(runner, metrics=self._sink(df))
        return df.mapInArrow(runner.score_batches, schema)

    def transform_files(
        self,
        spark: Any,
        paths: str | Sequence[str],
        format: str = "parquet",
        *,
        storage_options: Mapping[str, Any] | None = None,
    ) -> Any:
        """Score Parquet or ORC files read in the Python workers, not through Spark's Arrow conversion.

        The same rows and schema as ``transform(spark.read.format(format).load(paths))``,
        partition columns (``key=value/`` directories) included; row order may
        differ. Tasks read the files through the store's clients (``hdfs://``
        with the job's tokens or ticket, any fsspec URL; ``storage_options``
        for the client) and spread the row groups over at least
        ``spark.default.parallelism`` tasks. See :mod:`scoring._files`.
        """
        source = spark.read.format(format).load(paths if isinstance(paths, str) else list(paths))
        return self._transform_direct(spark, source, format, storage_options)

    def transform_table(self, spark: Any, table: str, *, storage_options: Mapping[str, Any] | None = None) -> Any:
        """Like :meth:`transform_files`, over the files of a catalog table stored as Parquet or ORC.

        Partitions come from the metastore's file list, their values from the
        ``key=value`` directories; a table in another format, or with a partition
        at a custom location, raises :class:`~scoring.errors.InputFileError`
        (score it with ``transform(spark.table(table))``).
        """
        fmt = table_format(spark, table)
        if fmt is None:
            raise InputFileError(f"table {table} is not stored as Parquet or ORC: score spark.table({table!r}) "
                                 "with transform()", path=table, reason="format")  # fmt: skip
        return self._transform_direct(spark, spark.table(table), fmt, storage_options)

    def _transform_direct(self, spark: Any, source: Any, fmt: str, storage_options: Mapping[str, Any] | None) -> Any:
        schema = self.output_schema(source.schema)
        runner = self._runner().planned([describe_spark_field(f) for f in source.schema.fields])
        max_rows = int(spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch", "10000") or 10_000)
        read = plan_direct_read(source, fmt, runner, parallelism=default_parallelism(spark),
                                max_rows=max(1, max_rows), storage_options=storage_options)  # fmt: skip
        tasks = spark.range(0, len(read.tasks), 1, max(1, len(read.tasks)))
        runner = replace(runner, metrics=self._sink(tasks))
        return tasks.mapInArrow(DirectTask(runner, read), schema)

    # -- what it did (driver) --------------------------------------------------------------

    def _sink(self, df: Any) -> Any:
        """Where the tasks of a transform of ``df`` report: the side output, or an accumulator (classic)."""
        if isinstance(self._metrics, SideOutput):
            self._metrics.create()
            return self._metrics
        if is_connect(df):  # Spark Connect: no SparkContext, hence no accumulator
            if self._metrics is None:
                log.warning("Spark Connect has no accumulators: Scorer.metrics() will raise for this scorer "
                            "(build it with metrics_dir= to gather them)")  # fmt: skip
                object.__setattr__(self, "_metrics", _CONNECT)
            return None
        if self._metrics is None:
            # the one piece of state a built Scorer gains: where its tasks report (not a setting)
            context = df.sparkSession.sparkContext
            object.__setattr__(self, "_metrics", context.accumulator({}, MetricsParam()))
        return None if self._metrics is _CONNECT else self._metrics

    def metric_records(self) -> list[dict[str, Any]]:
        """One record per scored partition of every action so far (see :mod:`scoring._metrics`).

        With ``metrics_dir``, read from its files (:class:`scoring._metrics.SideOutput`).
        Without it, raises :class:`~hdfs_models.errors.UnsupportedSparkError`
        once this scorer transformed a Spark Connect DataFrame (no accumulators there).
        """
        if self._metrics is _CONNECT:
            raise classic_only(
                "Scorer.metrics()",
                "the task records travel through a Spark accumulator; build the Scorer with "
                "metrics_dir='hdfs://...' (a directory the client and the executors share), where each "
                "task writes its record",
            )
        if isinstance(self._metrics, SideOutput):
            return self._metrics.records()
        return [] if self._metrics is None else list(self._metrics.value.values())

    def metrics(self) -> dict[str, Any]:
        """What this scorer's :meth:`transform` jobs did, gathered from every executor.

        Read it on the driver after an action. Keys: ``rows`` (= ``rows_out``),
        ``rows_in``, ``batches``, ``tasks``, ``seconds`` (first task start to
        last task end), ``rows_per_second``, ``task_seconds``, ``stages``
        (seconds per stage: localize, load, read, convert, inference, write),
        ``read_seconds`` and ``read_bytes`` (what direct reads spent reading files),
        ``versions`` (version → rows), ``model_loads`` (``count``,
        ``seconds``, ``per_worker``) and ``cache`` (node-cache
        ``localize_calls``, ``hits``, ``misses``, ``errors``,
        ``bytes_downloaded``). A task Spark retried counts once; each action
        on the scored DataFrame counts (each scores again). Under Spark Connect
        it needs ``metrics_dir``, and raises without it, as :meth:`metric_records` does.
        """
        return summarize(self.metric_records())

    @property
    def description(self) -> str:
        """What to call its jobs in the Spark UI: ``spark.sparkContext.setJobDescription(scorer.description)``."""
        version = self._source.version
        return f"hdfs-models score {self._source.describe()}" + (f" version {version}" if version is not None else "")

    def predict_arrow(self, batches: Iterable[Any]) -> Iterator[Any]:
        """Score pyarrow RecordBatches in this process (what each transform task runs)."""
        batches = iter(batches)
        first = next(batches, None)
        if first is None:
            return iter(())
        runner = self._runner().planned([describe_arrow_field(f) for f in first.schema])
        return runner.score_batches(_chain(first, batches))

    def score_partition(self, rows: Iterable[Any]) -> Iterator[Any]:
        """``rdd.mapPartitions(scorer.score_partition)``: Rows in, Rows out.

        Rows are grouped into batches of ``batch_size``; each output Row holds the
        keep_cols, the outputs and the version column, like :meth:`transform`.
        Called on the driver of a Spark Connect client (where there are no RDDs)
        it raises :class:`~hdfs_models.errors.UnsupportedSparkError` naming
        :meth:`transform` and :meth:`udf`.
        """
        if connect_client():
            raise classic_only("Scorer.score_partition (the rdd.mapPartitions face)",
                               "score the DataFrame with scorer.transform(df) or scorer.udf()")  # fmt: skip
        return score_rows(self._runner(), rows)

    def udf(self) -> Any:
        """A column function: ``df.withColumn("p", scorer.udf()(col("features")))``.

        Takes one column (or column name) per signature input, in the signature's
        input order (sorted by name: see ``scorer.signature.input_names``);
        ``input_cols`` does not apply here.
        Returns ``int`` (class), ``array<...>`` (probabilities) or a struct of
        every output ("all"). Rows carry no version column here.
        """
        return make_udf(self._runner())


#: ``Scorer._metrics`` once a transform ran under Spark Connect, which has no accumulators
_CONNECT = "spark connect"


def _quoted(column: str) -> str:
    """A column reference Spark does not parse (dots in a name are not struct fields)."""
    return "`" + column.replace("`", "``") + "`"


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest
