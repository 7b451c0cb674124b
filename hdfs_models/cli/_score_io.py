"""Input and output of the scoring job: Hive tables or Parquet paths, staged writes.

Nothing half-written is ever visible under the output name: a Parquet output is
written to a hidden staging directory beside the target and renamed into place
through the Hadoop FileSystem of the target's URL; a table output is written to
a staging table that is renamed to the target. A failed job removes its
staging output and leaves the target as it was.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from scoring.errors import JobIOError

__all__ = ["Output", "append_output", "check_output", "count_output", "read_input", "write_output"]

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


def _hadoop_path(spark: Any, url: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(url)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return fs, path


def path_exists(spark: Any, url: str) -> bool:
    """Whether ``url`` exists, asked through Spark's own Hadoop client."""
    fs, path = _hadoop_path(spark, url)
    return bool(fs.exists(path))


def qualified(spark: Any, url: str) -> str:
    """``url`` as Spark resolves it (a bare path lands on ``fs.defaultFS``)."""
    fs, path = _hadoop_path(spark, url)
    return str(fs.makeQualified(path).toString())


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
    fs, staging_path = _hadoop_path(spark, staging)
    try:
        df.write.parquet(staging)
        _, target_path = _hadoop_path(spark, target)
        if fs.exists(target_path):
            fs.delete(target_path, True)
        if not fs.rename(staging_path, target_path):
            raise JobIOError(f"could not rename {staging} to {target}", path=target, reason="rename failed")
    finally:
        if fs.exists(staging_path):
            fs.delete(staging_path, True)


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
