"""Input and output of the scoring job: Hive tables or Parquet paths, staged writes.

Nothing half-written is ever visible under the output name: a Parquet output is
written to a hidden staging directory beside the target and renamed into place
through the Hadoop FileSystem of the target's URL; a table output is written to
a staging table that is renamed to the target. A failed job removes its
staging output and leaves the target as it was.

Paths are checked, moved and removed through Spark's own Hadoop client on a
classic session (:class:`_JvmPaths`), and through the store's client
(hdfs-native, WebHDFS, fsspec: :class:`_StorePaths`) under Spark Connect,
whose client has no JVM. There a path is taken as the client reads it: a
bare path is local to the client, so give full URLs (``hdfs://nn:8020/...``).

Under Spark Connect (or with ``--metrics-dir``) the tasks' metrics records
go to a hidden directory of the job's own, beside the output or under
``--metrics-dir`` (:func:`metrics_dir`), through the store's client; the
job reads them once the output is written and then removes the directory
(:func:`remove_path`).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from hdfs_models._runtime import is_connect
from hdfs_models._tree import store_rename_noreplace
from hdfs_models.store import open_store, translate_errors
from scoring import Scorer
from scoring._metrics import summarize
from scoring.errors import JobIOError

__all__ = [
    "Output",
    "append_output",
    "check_output",
    "count_output",
    "gather_metrics",
    "metrics_dir",
    "metrics_report",
    "read_input",
    "remove_path",
    "write_metrics",
    "write_output",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Output:
    """Where the job writes: exactly one of ``table`` or ``path``; ``mode`` overwrite|error."""

    table: str | None = None
    path: str | None = None
    mode: str = "error"

    @property
    def name(self) -> str:
        return f"table {self.table}" if self.table else f"path {self.path}"


class _JvmPaths:
    """Paths through Spark's Hadoop client: the FileSystem and configuration Spark itself writes with."""

    def __init__(self, spark: Any) -> None:
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _fs(self, url: str) -> tuple[Any, Any]:
        path = self._jvm.org.apache.hadoop.fs.Path(url)
        return path.getFileSystem(self._conf), path

    def exists(self, url: str) -> bool:
        fs, path = self._fs(url)
        return bool(fs.exists(path))

    def qualified(self, url: str) -> str:
        fs, path = self._fs(url)
        return str(fs.makeQualified(path).toString())

    def delete(self, url: str) -> None:
        fs, path = self._fs(url)
        fs.delete(path, True)

    def rename(self, src: str, dst: str) -> None:
        fs, path = self._fs(src)
        if not fs.rename(path, self._fs(dst)[1]):
            raise JobIOError(f"could not rename {src} to {dst}", path=dst, reason="rename failed")


class _StorePaths:
    """Paths through the store's own client (Spark Connect: no JVM on the client)."""

    def exists(self, url: str) -> bool:
        fs, path = open_store(url)
        with translate_errors(url, "checking the path"):
            return bool(fs.exists(path))

    def qualified(self, url: str) -> str:
        return url  # the server's fs.defaultFS is out of the client's sight

    def delete(self, url: str) -> None:
        fs, path = open_store(url)
        with translate_errors(url, "removing the path"):
            fs.rm(path, recursive=True)

    def rename(self, src: str, dst: str) -> None:
        fs, path = open_store(src)
        target = open_store(dst)[1]
        try:
            with translate_errors(dst, f"renaming {src}"):
                store_rename_noreplace(fs, path, target)
        except Exception as exc:
            raise JobIOError(f"could not rename {src} to {dst}: {exc}", path=dst, reason="rename failed") from exc


def _paths(spark: Any) -> _JvmPaths | _StorePaths:
    return _StorePaths() if is_connect(spark) else _JvmPaths(spark)


def path_exists(spark: Any, url: str) -> bool:
    """Whether ``url`` exists, asked through Spark's own Hadoop client (Connect: the store's)."""
    return _paths(spark).exists(url)


def qualified(spark: Any, url: str) -> str:
    """``url`` as Spark resolves it (a bare path lands on ``fs.defaultFS``; Connect: as given)."""
    return _paths(spark).qualified(url)


def read_input(spark: Any, table: str | None, path: str | None) -> Any:
    """The input DataFrame; :class:`JobIOError` naming a missing table or path."""
    if table:
        if not spark.catalog.tableExists(table):
            raise JobIOError(f"input table {table} does not exist", path=table, reason="no such table")
        return spark.table(table)
    assert path is not None
    if not path_exists(spark, path):
        where = qualified(spark, path).rstrip("/")
        plain = path.rstrip("/")
        same = where in (plain, f"file:{plain}", f"file://{plain}") or where.endswith(f"://{plain}")
        shown = path if same or "://" in path else f"{path} (resolved as {where})"
        raise JobIOError(f"input path {shown} does not exist", path=path, reason="no such path")
    return spark.read.parquet(path)


def check_output(spark: Any, out: Output) -> None:
    """Fail before any work if the output exists and ``mode`` is not overwrite."""
    exists = spark.catalog.tableExists(out.table) if out.table else path_exists(spark, str(out.path))
    if exists and out.mode != "overwrite":
        raise JobIOError(
            f"output {out.name} already exists (pass --mode overwrite to replace it)",
            path=out.table or out.path,
            reason="output exists",
        )


def write_output(spark: Any, df: Any, out: Output) -> None:
    """Write ``df`` to a staging name, then move it to ``out`` (see module docstring)."""
    check_output(spark, out)
    if out.table:
        _write_table(spark, df, out)
    else:
        _write_path(spark, df, out)


def append_output(spark: Any, df: Any, out: Output) -> None:
    """Append ``df`` (one micro-batch) to ``out``; Spark's commit protocol makes it atomic."""
    if out.table:
        if spark.catalog.tableExists(out.table):
            df.write.insertInto(out.table)
        else:
            df.write.format("parquet").saveAsTable(out.table)
    else:
        df.write.mode("append").parquet(out.path)


def _write_path(spark: Any, df: Any, out: Output) -> None:
    target = str(out.path).rstrip("/")
    parent, _, name = target.rpartition("/")
    staging = f"{parent}/.{name}._staging-{uuid.uuid4().hex[:12]}"
    paths = _paths(spark)
    try:
        df.write.parquet(staging)
        if paths.exists(target):
            paths.delete(target)
        paths.rename(staging, target)
    finally:
        if paths.exists(staging):
            paths.delete(staging)


def _write_table(spark: Any, df: Any, out: Output) -> None:
    target = str(out.table)
    db, _, name = target.rpartition(".")
    staging = f"{db + '.' if db else ''}{name}__staging_{uuid.uuid4().hex[:12]}"
    try:
        df.write.format("parquet").saveAsTable(staging)
        if spark.catalog.tableExists(target):
            spark.sql(f"DROP TABLE {target}")
        spark.sql(f"ALTER TABLE {staging} RENAME TO {target}")
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {staging}")


def count_output(spark: Any, out: Output) -> int:
    """Rows in the finished output (Parquet footers; no rescoring)."""
    if out.table:
        return int(spark.table(out.table).count())
    return int(spark.read.parquet(out.path).count())


def metrics_dir(spark: Any, out: Output, explicit: str | None, warehouse: str | None) -> str:
    """A fresh directory for the job's metrics records: ``<base>/.<output name>._metrics-<12 hex>``.

    ``base``: ``explicit`` (``--metrics-dir``), else the output path's parent,
    else (a table) ``warehouse`` or the session's ``spark.sql.warehouse.dir``,
    which the client and the executors must then share (give ``--metrics-dir``
    where they do not). Pure but for reading that setting.
    """
    if out.path:
        parent, _, name = str(out.path).rstrip("/").rpartition("/")
    else:
        parent, name = warehouse or str(spark.conf.get("spark.sql.warehouse.dir")), str(out.table)
    base = (explicit or parent or ".").rstrip("/")
    return f"{base}/.{name}._metrics-{uuid.uuid4().hex[:12]}"


def remove_path(url: str) -> None:
    """Remove ``url`` (a directory, recursively) through the store's client when it exists."""
    paths = _StorePaths()
    if paths.exists(url):
        paths.delete(url)


def gather_metrics(scorer: Scorer, records: str | None, rows: int) -> dict[str, Any]:
    """The scorer's metrics; with record files, a warning naming their directory when they miss rows."""
    metrics = summarize(scorer.metric_records())
    if records and metrics["rows"] != rows:
        log.warning("the task records in %s count %d rows, the output holds %d: some tasks' records are "
                    "missing (see the warnings above), so --metrics-json undercounts", records, metrics["rows"], rows)  # fmt: skip
    return metrics


def metrics_report(summary: dict[str, Any]) -> dict[str, Any]:
    """The ``--metrics-json`` object: the executors' metrics with the job's own rows and wall time.

    ``rows`` are the rows the executors scored (``rows_written``: counted in
    the output), ``seconds`` the job's wall time, ``scoring_seconds`` the span
    of its scoring tasks; the rest is :meth:`scoring.Scorer.metrics`.
    """
    metrics = dict(summary["metrics"])
    seconds = summary["seconds"]
    return {
        **metrics,
        "scoring_seconds": metrics["seconds"],
        "seconds": seconds,
        "rows_per_second": round(metrics["rows"] / seconds, 1) if seconds else 0.0,
        "rows_written": summary["rows"],
        "model": summary["model"],
        "version": summary["version"],
        "output": summary["output"],
    }


def write_metrics(path: str, report: dict[str, Any]) -> None:
    """Write the ``--metrics-json`` report to ``path`` (local to the driver); :class:`JobIOError` naming it."""
    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(report, fh, sort_keys=True, indent=1)
    except OSError as exc:
        raise JobIOError(
            f"cannot write --metrics-json {path}: {exc.strerror or exc}", path=path, reason="metrics not written"
        ) from exc
