"""``hdfs-models score``: the batch scoring job, a Hive table or Parquet in, predictions out.

Run it as ``hdfs-models score ...`` or ``python -m scoring.job ...`` (Spark in
this process; ``--master`` picks the master) or as a script:
``spark-submit ... scoring/job.py ...`` (that file is a thin entry point to
this command).

    hdfs-models score --model hdfs://nn:8020/models/mnist --input-table digits \\
        --features features --keep id --output-table predictions

The model is resolved once, on the driver (``--version latest`` pins the newest
complete version), and shipped by ``--strategy`` (node-cache ``fetch``,
``archive`` or ``files``). ``--strategy submitted`` scores the archive the job
was started with (``spark-submit --archives hdfs://…/model.tar#model``):
``--model`` is then the alias after ``#`` and ``--version N`` checks the
archive's manifest; the driver reads the signature from its own copy, which
YARN gives it in ``--deploy-mode cluster``. Tables go through ``enableHiveSupport()`` with the
embedded Derby metastore (``--warehouse``, ``--metastore``). The output is
written under a staging name and moved into place, so a failed job leaves no
partial output. At the end one line reports rows, seconds, rows/s, the
model version and the precision asked for (``--json``: one JSON object).
``--precision bfloat16`` runs oneDNN bfloat16 mixed precision on executors
whose CPU has AVX512-BF16 or AMX (an error elsewhere); ``auto`` where available.
``--metrics-json PATH`` writes what every executor measured
(:meth:`scoring.Scorer.metrics`: stages, rows per version, model loads,
node-cache hits, misses and bytes) with the job's wall time; the Spark UI
names the scoring job after the model URL and version.

``--read`` picks who reads the input: ``direct`` (the Python workers read the
Parquet or ORC files with pyarrow, :meth:`scoring.Scorer.transform_files`,
past Spark's element-by-element Arrow conversion), ``spark``, or ``auto`` (the
default: direct for Parquet paths and tables stored as Parquet or ORC whose
partitions sit in ``key=value`` directories, Spark otherwise). The output is
the same; the summary's ``read`` says which ran.

``--watch SECONDS`` turns the job into a stream over new Parquet files under
``--input-path``: every SECONDS it resolves ``latest`` again and switches to a
newly published version (loaded before the old one is dropped); every output
row carries ``model_version``. ``--idle-timeout`` ends it after that many
seconds without new input.

``--remote URL`` (or ``SPARK_REMOTE``): a Spark Connect client; no job description or log level,
paths move through the store's client, ``--watch`` is refused at start. Connect has no
accumulators, so for ``--metrics-json`` each task writes its record as a small file into a hidden
directory beside the output (``--metrics-dir`` to put it elsewhere; a table's goes under the
warehouse), read and removed once the output is written (:mod:`hdfs_models.cli._score_io`).

Exit codes (the frame of every command, :mod:`hdfs_models.cli`): 0 ok, 1
error (one line naming the table, path or URL and the cause), 2 usage.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from typing import Any

from hdfs_models._distribute import ModelHandle, distribute
from hdfs_models._runtime import classic_only, describe_jobs, is_connect, require_spark, setting
from hdfs_models._versions import resolve
from hdfs_models.cli._frame import UsageError, add_command
from hdfs_models.cli._score_io import (
    Output,
    append_output,
    check_output,
    count_output,
    gather_metrics,
    metrics_dir,
    metrics_report,
    read_input,
    remove_path,
    write_metrics,
    write_output,
)
from hdfs_models.cli._watch import Watcher, run_watch
from hdfs_models.store._auth import credential_warnings
from scoring import Scorer
from scoring._metrics import summarize
from scoring.errors import InputFileError

__all__ = ["add_score_arguments", "build_parser", "metrics_report", "parse_features", "register", "run"]

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Register ``score``."""
    parser = add_command(
        subparsers, "score", _score, _render, help="score a Hive table or Parquet with a SavedModel (a Spark job)"
    )
    add_score_arguments(parser)


def build_parser() -> argparse.ArgumentParser:
    """The job's arguments as a parser of their own (``scoring.job.build_parser``, for callers of :func:`run`)."""
    parser = argparse.ArgumentParser(prog="scoring.job", description="Score a table or Parquet with a SavedModel.")
    add_score_arguments(parser)
    return parser


def add_score_arguments(p: argparse.ArgumentParser) -> None:
    """The job's options on ``p`` (``--json`` and ``-v`` come from the frame)."""
    p.add_argument(
        "--model",
        required=True,
        help="model base URL (BASE/<n>/ layout) or version dir URL; the archive alias with --strategy submitted",
    )
    p.add_argument("--version", default="latest", help="N or latest (default)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input-table", help="Hive table to score")
    src.add_argument("--input-path", help="Parquet path to score")
    dst = p.add_mutually_exclusive_group(required=True)
    dst.add_argument("--output-table", help="Hive table to write")
    dst.add_argument("--output-path", help="Parquet path to write")
    p.add_argument("--features", required=True, help="feature column (or sig_input=col,... for several inputs)")
    p.add_argument("--keep", default="", help="comma-separated columns carried to the output (e.g. id)")
    p.add_argument(
        "--strategy",
        default="fetch",
        choices=["fetch", "archive", "files", "submitted"],
        help="how executors get the model (submitted: spark-submit --archives ARCHIVE#alias)",
    )
    p.add_argument(
        "--read",
        default="auto",
        choices=["auto", "direct", "spark"],
        help="direct: the Python workers read the Parquet/ORC files themselves (past Spark's Arrow "
        "conversion); spark: Spark reads; auto (default): direct for Parquet paths and tables stored "
        "as Parquet or ORC, spark otherwise (the output is the same)",
    )
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument(
        "--returns",
        default="class",
        choices=["class", "probabilities", "all"],
        help="class index (argmax), probabilities, or every output tensor",
    )
    p.add_argument("--signature", default="serving_default")
    p.add_argument(
        "--precision",
        default="float32",
        choices=["float32", "bfloat16", "auto"],
        help="bfloat16: oneDNN mixed precision on CPUs with AVX512-BF16/AMX; auto: where available",
    )
    p.add_argument("--mode", default="error", choices=["error", "overwrite"], help="if the output exists")
    p.add_argument("--master", default=None, help="Spark master when not run by spark-submit")
    p.add_argument("--remote", default=None, help="Spark Connect URL (sc://host:15002; default: SPARK_REMOTE)")
    p.add_argument("--warehouse", default=None, help="spark.sql.warehouse.dir (tables)")
    p.add_argument("--metastore", default=None, help="directory of the embedded Derby metastore")
    p.add_argument(
        "--watch",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stream new files under --input-path, re-resolving latest every SECONDS",
    )
    p.add_argument("--idle-timeout", type=float, default=None, help="--watch: stop after this long without input")
    p.add_argument("--checkpoint", default=None, help="--watch: checkpoint dir (default beside the output)")
    p.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Spark setting (repeatable), e.g. spark.driver.memory=4g",
    )
    p.add_argument(
        "--cache-dir",
        default=None,
        help="--strategy fetch: node-cache root on the executors (default: HDFS_MODELS_CACHE, "
        "else the executor's scratch dir)",
    )
    p.add_argument(
        "--metrics-json",
        default=None,
        metavar="PATH",
        help="write what the job did (rows, seconds, stages, versions, model loads, node cache) "
        "to PATH as one JSON object",
    )
    p.add_argument(
        "--metrics-dir",
        default=None,
        metavar="URL",
        help="where tasks write their metrics records (Spark Connect, which has no accumulators: "
        "default beside the output); a directory the driver and every executor share",
    )


def parse_features(spec: str) -> str | dict[str, str]:
    """``--features``: one column name, or ``sig_input=column,...`` as a mapping."""
    if "=" not in spec:
        return spec
    pairs = (item.split("=", 1) for item in spec.split(",") if item)
    return {k.strip(): v.strip() for k, v in pairs}


def _session(args: argparse.Namespace) -> Any:
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("hdfs-models-score")
    if args.remote:
        builder = builder.remote(args.remote)
    elif args.master:
        builder = builder.master(args.master)
    builder = (
        builder.config("spark.sql.execution.arrow.maxRecordsPerBatch", str(args.batch_size))
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.executorEnv.TF_CPP_MIN_LOG_LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    )
    for item in args.conf:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--conf takes KEY=VALUE, not {item!r}")
        builder = builder.config(key.strip(), value.strip())
    if args.input_table or args.output_table:
        if args.warehouse:
            builder = builder.config("spark.sql.warehouse.dir", args.warehouse)
        if args.metastore:
            url = f"jdbc:derby:;databaseName={os.path.join(args.metastore, 'metastore_db')};create=true"
            builder = builder.config("spark.hadoop.javax.jdo.option.ConnectionURL", url)
        builder = builder.enableHiveSupport()
    return builder.getOrCreate()


def _scorer(
    spark: Any, args: argparse.Namespace, version: int | str, records: str | None = None
) -> tuple[ModelHandle, Scorer]:
    if args.strategy == "submitted":
        expected = None if str(version) == "latest" else int(version)
        handle = ModelHandle.submitted(args.model, version=expected, spark=spark)
    else:
        handle = distribute(spark, args.model, version=version, strategy=args.strategy, cache_dir=args.cache_dir)
    keep = tuple(c for c in args.keep.split(",") if c)
    scorer = Scorer(
        handle,
        input_cols=parse_features(args.features),
        signature=args.signature,
        returns=args.returns,
        batch_size=args.batch_size,
        keep_cols=keep,
        precision=args.precision,
        metrics_dir=records,
    )
    return handle, scorer


def run(spark: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Run the job on ``spark``; returns the summary (rows, seconds, rows_per_s, version)."""
    started = time.monotonic()
    out = Output(table=args.output_table, path=args.output_path, mode=args.mode)
    _refuse_on_connect(spark, args)
    expiring = _warn_expiring(args)
    if args.watch is not None:
        return {**_run_watch(spark, args, out, started), "credentials": expiring}
    df = read_input(spark, args.input_table, args.input_path)
    check_output(spark, out)
    # Connect has no accumulators: the tasks' records go to files (only when they are asked for)
    wanted = getattr(args, "metrics_dir", None) or (is_connect(spark) and args.metrics_json)
    records = metrics_dir(spark, out, args.metrics_dir, args.warehouse) if wanted else None
    handle, scorer = _scorer(spark, args, args.version, records)
    describe_jobs(spark, scorer.description)  # the Spark UI names the scoring job
    try:
        scored, how = _scored(spark, args, scorer, df)
        write_output(spark, scored, out)
        rows = count_output(spark, out)
        metrics = gather_metrics(scorer, records, rows) if records or not is_connect(spark) else None
    finally:
        describe_jobs(spark, None)
        if records:
            remove_path(records)
    summary = _summary(rows, started, handle.version, args.model, out.name)
    summary["read"] = how
    summary["credentials"] = expiring
    summary["metrics"] = metrics
    return summary


def _refuse_on_connect(spark: Any, args: argparse.Namespace) -> None:
    """Spark Connect: ``--watch``'s foreachBatch runs on the server, far from the driver's Watcher and its counters."""
    if is_connect(spark) and args.watch is not None:
        raise classic_only("--watch", "run the watching job with spark-submit or --master, not Spark Connect")


#: Seconds before its end a credential of the driver is warned about (P2); a ``--watch`` job: any end.
CREDENTIAL_MARGIN_S = 2 * 3600.0


def _warn_expiring(args: argparse.Namespace) -> list[str]:
    """P2: warn (and return the warnings) for the driver's credentials that end before the job may finish."""
    margin = (
        float("inf")
        if args.watch is not None
        else setting(None, "HDFS_MODELS_CREDENTIAL_MARGIN", CREDENTIAL_MARGIN_S, parse=float)
    )
    found = credential_warnings(margin)
    for text in found:
        log.warning("%s: the job's store calls fail once it has ended", text)
    return found


def _scored(spark: Any, args: argparse.Namespace, scorer: Scorer, df: Any) -> tuple[Any, str]:
    """The scored DataFrame and how its input is read (``--read``): ``direct`` or ``spark``."""
    if args.read == "spark":
        return scorer.transform(df), "spark"
    try:
        if args.input_table:
            return scorer.transform_table(spark, args.input_table), "direct"
        return scorer.transform_files(spark, args.input_path, "parquet"), "direct"
    except InputFileError as exc:
        if args.read == "direct" or exc.reason not in ("format", "partition"):
            raise
        log.info("--read auto: Spark reads the input (%s)", exc)
        return scorer.transform(df), "spark"


def _run_watch(spark: Any, args: argparse.Namespace, out: Output, started: float) -> dict[str, Any]:
    if not args.input_path:
        raise UsageError("--watch needs --input-path (a directory new Parquet files arrive in)")
    if args.strategy == "submitted":
        raise UsageError("--watch re-resolves the model URL; a submitted archive cannot change")
    check_output(spark, out)

    def latest() -> int:  # the newest complete version, walking down from the top (P11: not every version)
        return int(resolve(args.model).version)

    scorers: list[Scorer] = []

    def make_scorer(version: int) -> Scorer:
        scorers.append(_scorer(spark, args, version)[1])
        return scorers[-1]

    def write(df: Any) -> None:
        describe_jobs(spark, f"hdfs-models score {args.model} version {watcher.version}")
        append_output(spark, df, out)

    watcher = Watcher(interval=args.watch, latest=latest, make_scorer=make_scorer)
    target = (args.output_path or args.output_table or "out").rstrip("/")
    checkpoint = args.checkpoint or (f"{target}._checkpoint" if args.output_path else f"/tmp/{target}._checkpoint")
    rows = run_watch(
        spark,
        args.input_path,
        checkpoint,
        watcher,
        write,
        idle_timeout=args.idle_timeout,
        trigger_seconds=min(args.watch, 1.0) or 1.0,
    )
    summary = _summary(rows, started, watcher.version, args.model, out.name)
    summary["versions"] = watcher.versions_seen
    summary["metrics"] = summarize(record for scorer in scorers for record in scorer.metric_records())
    return summary


def _summary(rows: int, started: float, version: Any, model: str, where: str) -> dict[str, Any]:
    seconds = time.monotonic() - started
    return {
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds, 1) if seconds else 0.0,
        "model": model,
        "version": version,
        "output": where,
    }


def _score(args: argparse.Namespace) -> dict[str, Any]:
    """The command: Spark in this process (or the one already running), the job, the summary."""
    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    require_spark("hdfs-models score")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # workers of a local master inherit it
    from pyspark.sql import SparkSession

    # Embedded in a process that already runs Spark (a test, a notebook): use it, leave it running.
    owned = SparkSession.getActiveSession() is None
    spark = None
    try:
        spark = _session(args)
        if not is_connect(spark):
            spark.sparkContext.setLogLevel("ERROR")
        summary = run(spark, args)
    finally:
        if spark is not None and owned:
            spark.stop()
    summary["precision"] = args.precision  # as asked: each executor resolves "auto" on its own CPU
    if args.metrics_json:
        write_metrics(args.metrics_json, metrics_report(summary))
    summary.pop("metrics", None)
    return summary


def _render(summary: dict[str, Any]) -> str:
    return (
        f"scored {summary['rows']} rows in {summary['seconds']:.1f}s ({summary['rows_per_s']:.0f} rows/s) "
        f"with {summary['model']} version {summary['version']} ({summary['precision']}) -> {summary['output']}"
    )
