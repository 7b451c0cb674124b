"""Direct reads: the Scorer's tasks read Parquet or ORC files themselves, with pyarrow.

Spark's own path into ``mapInArrow`` turns every array element into Arrow one
at a time in the JVM; for a wide ``array<float>`` column that caps the scorer
below what TensorFlow does (docs/scoring.md "Direct reads"). Here:

1. The driver asks Spark for what it would read (``spark.read...load(paths)``
   or a table: the schema, partition columns and input files; no job runs),
   reads each file's footer through the store's clients
   (:mod:`hdfs_models.store._files`, a thread pool) and checks that every file
   has the columns the plan reads, with the first file's types.
2. It spreads the row groups (stripes for ORC) over at least
   ``spark.default.parallelism`` tasks, largest first onto the task with the
   fewest rows.
3. Each task of ``spark.range(tasks)`` reads its row groups (only the columns
   the plan reads, a read-ahead thread ahead of TensorFlow), adds the
   partition columns parsed from the file's ``key=value/`` directories, casts
   to Spark's Arrow types, and scores through the same
   :class:`~scoring._runner.Runner` as :meth:`Scorer.transform`.

The rows and the schema equal ``transform(spark.read.format(fmt).load(paths))``
(row order aside). What it gives up: data locality, and anything Spark would
do before scoring (filters, joins): a DataFrame that needs those goes through
:meth:`Scorer.transform`.
"""

from __future__ import annotations

import heapq
import logging
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from hdfs_models._runtime import is_connect
from hdfs_models.store._files import FORMATS, FileLayout, inspect_file, read_groups
from scoring._runner import Runner
from scoring.errors import InputFileError

__all__ = [
    "DirectRead",
    "DirectTask",
    "ReadCounter",
    "default_parallelism",
    "partition_values",
    "plan_direct_read",
    "spread",
    "table_format",
]

log = logging.getLogger(__name__)

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
SPLIT_BYTES = 128 * 1024 * 1024  # a task per this many compressed bytes at least, like Spark's maxPartitionBytes


@dataclass(frozen=True)
class FilePart:
    """One file's share of a task: its row groups, and its partition values (column → text or None)."""

    url: str
    groups: tuple[int, ...]
    nbytes: tuple[int, ...]  # compressed bytes of each group
    partition: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class DirectRead:
    """Everything a task needs to read its share; pickled into the tasks."""

    format: str
    file_columns: tuple[str, ...]  # read from the files
    partition_columns: tuple[str, ...]  # from the paths
    arrow_schema: Any  # Spark's Arrow types of the columns the plan reads, in its order
    tasks: tuple[tuple[FilePart, ...], ...]
    max_rows: int = 10_000  # rows per Arrow batch handed on
    storage_options: Mapping[str, Any] | None = None

    def batches(self, task: int, counter: ReadCounter) -> Iterator[Any]:
        """The record batches of task ``task``, in Spark's Arrow types; ``counter`` counts the reading."""
        for part in self.tasks[task]:
            values = dict(part.partition)
            sizes = dict(zip(part.groups, part.nbytes, strict=True))

            def counted(group: int, rows: int, seconds: float, sizes: Mapping[int, int] = sizes) -> None:
                counter.add(seconds, sizes[group])

            for batch in read_groups(part.url, self.format, part.groups, self.file_columns,
                                     storage_options=self.storage_options, on_read=counted):  # fmt: skip
                for start in range(0, batch.num_rows, self.max_rows):  # an empty group yields nothing
                    yield self._typed(part.url, batch.slice(start, self.max_rows), values)

    def _typed(self, url: str, batch: Any, values: Mapping[str, str | None]) -> Any:
        import pyarrow as pa

        n = batch.num_rows
        arrays = []
        for target in self.arrow_schema:
            if target.name in values:
                text = values[target.name]
                arrays.append(
                    pa.nulls(n, target.type) if text is None else pa.repeat(pa.scalar(text).cast(target.type), n)
                )
                continue
            column = batch.column(target.name)
            try:
                arrays.append(column if column.type == target.type else column.cast(target.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InputFileError(
                    f"{url}: column {target.name!r} is {column.type}, which does not convert to {target.type}: {exc}",
                    path=url, column=target.name, reason="type",
                ) from exc  # fmt: skip
        return pa.RecordBatch.from_arrays(arrays, schema=self.arrow_schema)


@dataclass
class ReadCounter:
    """What a task's reading did: ``seconds`` and compressed ``bytes`` of its row groups (thread-safe)."""

    seconds: float = 0.0
    bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, seconds: float, nbytes: int) -> None:
        with self._lock:
            self.seconds += seconds
            self.bytes += nbytes


def partition_values(url: str, columns: Sequence[str]) -> dict[str, str | None]:
    """The ``key=value`` directories of ``url`` for ``columns`` (Spark's escaping undone; Hive's null)."""
    found: dict[str, str | None] = {}
    for segment in url.split("/")[:-1]:
        key, sep, value = segment.partition("=")
        name = unquote(key)
        if sep and name in columns:
            text = unquote(value)
            found[name] = None if text == HIVE_NULL else text
    return found


def spread(layouts: Sequence[FileLayout], tasks: int) -> list[list[tuple[int, int]]]:
    """``(file index, group)`` per task: largest groups first onto the task with the fewest rows.

    Within a task the groups keep the files' order, so each file is opened once.
    """
    units = sorted(
        ((rows, i, g) for i, layout in enumerate(layouts) for g, rows in enumerate(layout.rows)),
        key=lambda u: (-u[0], u[1], u[2]),
    )
    tasks = max(1, min(tasks, len(units)))
    heap = [(0, t) for t in range(tasks)]
    shares: list[list[tuple[int, int]]] = [[] for _ in range(tasks)]
    for rows, i, g in units:
        load, t = heapq.heappop(heap)
        shares[t].append((i, g))
        heapq.heappush(heap, (load + rows, t))
    return [sorted(share) for share in shares if share]


def plan_direct_read(
    source: Any,
    fmt: str,
    runner: Runner,
    *,
    parallelism: int,
    max_rows: int = 10_000,
    storage_options: Mapping[str, Any] | None = None,
) -> DirectRead:
    """Plan the direct read of ``source`` (a DataFrame straight off ``spark.read`` or ``spark.table``).

    Raises :class:`~scoring.errors.InputFileError` naming the file whose
    columns disagree with the first file's, or that lacks a partition
    directory the table has; the store's errors name the file they hit.
    """
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StructType

    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: direct reads read {', '.join(FORMATS)}")
    needed = runner.read_columns()
    schema = source.schema
    files = sorted(unquote(uri) for uri in source.inputFiles())  # URIs: %25 for a '%' in a name
    partition_cols = _partition_columns(source, files)
    file_columns = tuple(c for c in needed if c not in partition_cols)
    with ThreadPoolExecutor(max_workers=min(16, max(1, len(files)))) as pool:
        layouts = list(pool.map(lambda url: inspect_file(url, fmt, storage_options), files))
    _check_columns(layouts, file_columns)
    parts_of: list[tuple[tuple[str, str | None], ...]] = []
    for url in files:
        values = partition_values(url, partition_cols)
        missing = [c for c in partition_cols if c not in values]
        if missing:
            raise InputFileError(
                f"{url}: no {missing[0]}=... directory in its path, so its partition value is unknown "
                "(a partition at a custom location): read it with --read spark",
                path=url, column=missing[0], reason="partition",
            )  # fmt: skip
        parts_of.append(tuple(values.items()))
    total_bytes = sum(sum(layout.nbytes) for layout in layouts)
    tasks = max(parallelism, math.ceil(total_bytes / SPLIT_BYTES))
    shares = spread(layouts, tasks)
    plan_tasks = tuple(_task_parts(share, layouts, parts_of) for share in shares)
    arrow_schema = to_arrow_schema(StructType([schema[c] for c in needed]))
    log.info("direct read: %d files, %d row groups, %d rows in %d tasks", len(files),
             sum(len(layout.rows) for layout in layouts), sum(layout.total_rows for layout in layouts), len(plan_tasks))  # fmt: skip
    return DirectRead(fmt, file_columns, tuple(c for c in needed if c in partition_cols), arrow_schema, plan_tasks,
                      max_rows, storage_options)  # fmt: skip


def _partition_columns(source: Any, files: Sequence[str]) -> tuple[str, ...]:
    """The schema's columns that Spark takes from ``key=value`` directories (or a table's partitions)."""
    names = set(source.schema.names)
    keys: set[str] = set()
    for url in files:
        keys.update(partition_values(url, list(names)))
    return tuple(c for c in source.schema.names if c in keys)


def _check_columns(layouts: Sequence[FileLayout], columns: Sequence[str]) -> None:
    if not layouts:
        return
    first = layouts[0]
    for layout in layouts:
        for name in columns:
            index = layout.schema.get_field_index(name)
            if index < 0:
                raise InputFileError(f"{layout.url}: has no column {name!r} (the files' schemas disagree)",
                                     path=layout.url, column=name, reason="schema")  # fmt: skip
            ours, theirs = layout.schema.field(index).type, first.schema.field(name).type
            if not ours.equals(theirs):
                raise InputFileError(
                    f"{layout.url}: column {name!r} is {ours}, but {theirs} in {first.url} (the files' schemas disagree)",
                    path=layout.url, column=name, reason="schema",
                )  # fmt: skip


def _task_parts(
    share: Sequence[tuple[int, int]],
    layouts: Sequence[FileLayout],
    parts_of: Sequence[tuple[tuple[str, str | None], ...]],
) -> tuple[FilePart, ...]:
    by_file: dict[int, list[int]] = {}
    for i, g in share:
        by_file.setdefault(i, []).append(g)
    return tuple(
        FilePart(layouts[i].url, tuple(groups), tuple(layouts[i].nbytes[g] for g in groups), parts_of[i])
        for i, groups in by_file.items()
    )


def default_parallelism(spark: Any) -> int:
    """The fewest tasks a direct read makes: ``spark.default.parallelism`` as Spark applies it (the
    SparkContext's, else the setting, else 2), or ``spark.sql.files.minPartitionNum`` when larger
    (the setting that asks Spark's file reader for more splits asks this one too)."""
    if is_connect(spark):  # no SparkContext to ask: the setting, as Spark applies it by default
        parallelism = int(spark.conf.get("spark.default.parallelism", "2") or 2)
    else:
        parallelism = int(spark.sparkContext.defaultParallelism)
    splits = spark.conf.get("spark.sql.files.minPartitionNum", None)
    return max(parallelism, int(splits) if splits else 0)


@dataclass(frozen=True)
class DirectTask:
    """The ``mapInArrow`` body over ``spark.range(tasks)``: each id read (:meth:`DirectRead.batches`) and scored."""

    runner: Runner
    read: DirectRead

    def __call__(self, batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            for task in batch.column(0).to_pylist():
                counter = ReadCounter()
                yield from self.runner.score_batches(self.read.batches(int(task), counter), reads=counter)


def table_format(spark: Any, table: str) -> str | None:
    """``"parquet"`` or ``"orc"`` when the catalog says ``table`` is stored so (a data source or Hive serde table)."""
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED {table}").collect()
    info = {str(r[0]).strip().lower(): str(r[1] or "").strip().lower() for r in rows}
    provider = info.get("provider", "")
    if provider in FORMATS:
        return provider
    serde = " ".join(info.get(k, "") for k in ("serde library", "inputformat"))
    for fmt in FORMATS:
        if fmt in serde:
            return fmt
    return None
