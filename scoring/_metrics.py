"""What a scoring job did, measured in every task and gathered on the driver.

Each ``mapInArrow`` task times its stages with a :class:`TaskRecorder` and,
when it ends without error, adds one record to a Spark accumulator keyed by
``(stage id, partition)``. Spark merges accumulator updates only from tasks
that succeed, and :class:`MetricsParam` keeps the later attempt when a
partition is scored again (a stage retried after a lost executor), so a
retried task is never counted twice. Two actions on the same scored
DataFrame are two stages: both are counted, since both scored.

Stages (seconds summed over tasks):

=============  =================================================================
``localize``   getting the model onto local disk (node cache, Spark files)
``load``       importing TensorFlow and loading the model (first task of each Python worker;
               ``model_loads.seconds`` is the loading alone)
``read``       waiting for the next Arrow batch: from the JVM, or in a direct read
               (:mod:`scoring._files`) from the files (``read_seconds``: the time
               spent reading them, overlapped with inference by the read-ahead
               thread; ``read_bytes``: their compressed bytes)
``convert``    Arrow columns → tensors, and outputs → Arrow columns
``inference``  the signature's function
``write``      handing the output batch back to the JVM
=============  =================================================================

:func:`summarize` turns the records into the report ``scoring.job
--metrics-json`` writes and :meth:`scoring.Scorer.metrics` returns.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

__all__ = ["STAGES", "MetricsParam", "TaskRecorder", "summarize", "task_key"]

STAGES = ("localize", "load", "read", "convert", "inference", "write")
_CACHE_FIELDS = ("localize_calls", "hits", "misses", "errors", "bytes_downloaded")

Key = tuple[int, int]  # (stage id, partition id)


class MetricsParam:
    """Accumulator parameter (``zero``/``addInPlace``, as pyspark's AccumulatorParam) over task records.

    The value maps ``(stage id, partition)`` to one task record; of two
    records for the same key the one with the higher ``attempt_id`` (Spark's
    task attempt id, unique and increasing in an application) wins.
    """

    def zero(self, value: Mapping[Key, dict[str, Any]]) -> dict[Key, dict[str, Any]]:
        return {}

    def addInPlace(
        self, ours: dict[Key, dict[str, Any]], theirs: Mapping[Key, dict[str, Any]]
    ) -> dict[Key, dict[str, Any]]:
        for key, record in theirs.items():
            held = ours.get(key)
            if held is None or record.get("attempt_id", -1) >= held.get("attempt_id", -1):
                ours[key] = record
        return ours


def task_key(context_factory: Callable[[], Any] | None = None) -> tuple[Key, int] | None:
    """``((stage id, partition id), task attempt id)`` of the running Spark task, or ``None`` outside one."""
    try:
        if context_factory is None:
            from pyspark import TaskContext

            context_factory = TaskContext.get
        context = context_factory()
    except ImportError:
        return None
    if context is None:
        return None
    return (int(context.stageId()), int(context.partitionId())), int(context.taskAttemptId())


class TaskRecorder:
    """Times one task's stages and counts its rows; :meth:`record` gives the accumulator's record.

    ``seconds`` runs from construction to :meth:`record`, measured apart from
    the stages, so untimed work shows as the gap between the two.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter, wall: Callable[[], float] = time.time) -> None:
        self.clock, self.wall = clock, wall
        self.start, self.started = clock(), wall()
        self.stages = dict.fromkeys(STAGES, 0.0)
        self.rows_in = self.rows_out = self.batches = self.read_bytes = 0
        self.read_seconds = 0.0
        self.model_loads, self.load_seconds = 0, 0.0
        self.cache = dict.fromkeys(_CACHE_FIELDS, 0)
        self.version: int | None = None

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Add the time spent in the block (including time suspended at a ``yield``) to ``name``."""
        begun = self.clock()
        try:
            yield
        finally:
            self.stages[name] += self.clock() - begun

    def timed(self, items: Iterable[Any], name: str) -> Iterator[Any]:
        """Yield ``items``, counting the time spent waiting for each as stage ``name``."""
        iterator = iter(items)
        while True:
            with self.stage(name):
                item = next(iterator, _END)
            if item is _END:
                return
            yield item

    def add_cache(self, delta: Any) -> None:
        """Count a :class:`hdfs_models.CacheStats` difference (what localize did in this task)."""
        for name in _CACHE_FIELDS:
            self.cache[name] += int(getattr(delta, name))

    def record(self, attempt_id: int = -1) -> dict[str, Any]:
        """The task's record (plain, picklable, JSON-able)."""
        return {
            "attempt_id": attempt_id,
            "worker": f"{socket.gethostname()}:{os.getpid()}",
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "batches": self.batches,
            "read_bytes": self.read_bytes,
            "read_seconds": self.read_seconds,
            "seconds": self.clock() - self.start,
            "started": self.started,
            "ended": self.wall(),
            "stages": dict(self.stages),
            "model_loads": self.model_loads,
            "load_seconds": self.load_seconds,
            "cache": dict(self.cache),
            "version": self.version,
        }


_END = object()


def summarize(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The report over task records: rows, seconds (first task start to last end), rows/s, versions, ...

    ``versions`` maps each model version (as a string) to the rows it scored;
    ``model_loads`` has ``count``, ``seconds`` and ``per_worker``
    (``host:pid`` → ``{count, seconds}``); ``cache`` the node-cache counters;
    ``stages`` seconds per stage; ``task_seconds`` the tasks' summed time.
    """
    records = list(records)
    report: dict[str, Any] = {
        "rows": 0,
        "rows_in": 0,
        "rows_out": 0,
        "batches": 0,
        "read_bytes": 0,
        "read_seconds": 0.0,
        "tasks": len(records),
        "task_seconds": 0.0,
        "versions": {},
        "stages": dict.fromkeys(STAGES, 0.0),
        "cache": dict.fromkeys(_CACHE_FIELDS, 0),
    }
    loads: dict[str, dict[str, Any]] = {}
    for rec in records:
        for name in ("rows_in", "rows_out", "batches"):
            report[name] += rec[name]
        report["read_bytes"] += rec.get("read_bytes", 0)
        report["read_seconds"] += rec.get("read_seconds", 0.0)
        report["task_seconds"] += rec["seconds"]
        version = "unknown" if rec["version"] is None else str(rec["version"])
        report["versions"][version] = report["versions"].get(version, 0) + rec["rows_out"]
        for name, seconds in rec["stages"].items():
            report["stages"][name] = report["stages"].get(name, 0.0) + seconds
        for name in _CACHE_FIELDS:
            report["cache"][name] += rec["cache"].get(name, 0)
        if rec["model_loads"]:
            worker = loads.setdefault(rec["worker"], {"count": 0, "seconds": 0.0})
            worker["count"] += rec["model_loads"]
            worker["seconds"] += rec["load_seconds"]
    report["rows"] = report["rows_out"]
    span = max((r["ended"] for r in records), default=0.0) - min((r["started"] for r in records), default=0.0)
    report["seconds"] = round(span, 3)
    report["rows_per_second"] = round(report["rows"] / span, 1) if span > 0 else 0.0
    report["model_loads"] = {
        "count": sum(w["count"] for w in loads.values()),
        "seconds": round(sum(w["seconds"] for w in loads.values()), 3),
        "per_worker": {k: {**w, "seconds": round(w["seconds"], 3)} for k, w in loads.items()},
    }
    report["task_seconds"] = round(report["task_seconds"], 3)
    report["read_seconds"] = round(report["read_seconds"], 3)
    report["stages"] = {k: round(v, 3) for k, v in report["stages"].items()}
    return report
