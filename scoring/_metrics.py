"""What a scoring job did, measured in every task and gathered on the driver.

Each ``mapInArrow`` task times its stages with a :class:`TaskRecorder` and,
when it ends without error, adds one record to a Spark accumulator keyed by
``(stage id, partition)``. Spark merges accumulator updates only from tasks
that succeed, and :class:`MetricsParam` keeps the later attempt when a
partition is scored again (a stage retried after a lost executor), so a
retried task is never counted twice. Two actions on the same scored
DataFrame are two stages: both are counted, since both scored.

Spark Connect has no accumulators; there (or anywhere, with
``Scorer(metrics_dir=...)``) a :class:`SideOutput` takes the same records:
each task writes its record as one small JSON file,
``<stage>-<partition>-<attempt>.json``, into a directory the driver and the
executors share (a store URL, or a local path on one machine), under a
temp name first and renamed into place, so a reader never sees half a
record. The driver reads the directory after the action and keeps, per
``(stage, partition)``, the record of the highest attempt (as
:class:`MetricsParam` does), so a retried or speculative task counts once.
A record that cannot be read is skipped with a warning naming its file.
Unlike an accumulator, a file is written by a task whose Python side
finished even when Spark then fails the task; its retry's record (a later
attempt) replaces it.

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
import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hdfs_models._tree import store_rename_noreplace
from hdfs_models.store import open_store, translate_errors
from scoring.errors import ScoringError

__all__ = ["STAGES", "MetricsParam", "SideOutput", "TaskRecorder", "summarize", "task_key"]

log = logging.getLogger(__name__)

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


_RECORD = re.compile(r"(\d+)-(\d+)-(\d+)\.json")  # <stage>-<partition>-<attempt>.json
#: what :func:`summarize` reads of a record
_RECORD_KEYS = frozenset({"worker", "rows_in", "rows_out", "batches", "seconds", "started", "ended", "stages",
                          "model_loads", "load_seconds", "cache", "version"})  # fmt: skip


@dataclass(frozen=True)
class SideOutput:
    """Task records as JSON files in the directory ``url`` (see the module docstring); pickles into tasks.

    ``add`` takes what an accumulator's ``add`` takes (``{key: record}``), so
    a :class:`scoring._runner.Runner` reports to either. The directory must
    exist (:meth:`create`, on the driver) and be the same directory for the
    driver and every executor: a task that cannot write its record fails,
    naming the file, rather than losing it.
    """

    url: str

    @classmethod
    def under(cls, metrics_dir: str) -> SideOutput:
        """A side output of its own, ``<metrics_dir>/scorer-<16 hex>`` (not created yet)."""
        return cls(f"{metrics_dir.rstrip('/')}/scorer-{uuid.uuid4().hex[:16]}")

    def create(self) -> None:
        """Make the directory (and its parents); :class:`ScoringError` naming it when that fails."""
        fs, path = open_store(self.url)
        try:
            with translate_errors(self.url, "creating the metrics directory"):
                fs.makedirs(path, exist_ok=True)
        except Exception as exc:
            raise ScoringError(f"cannot create the metrics directory {self.url}: {exc}", path=self.url,
                               reason="metrics directory not created") from exc  # fmt: skip

    def add(self, records: Mapping[Key, Mapping[str, Any]]) -> None:
        """Write each record (executor side): a temp file, renamed to ``<stage>-<partition>-<attempt>.json``."""
        fs, path = open_store(self.url)
        for (stage, partition), record in records.items():
            name = f"{stage}-{partition}-{int(record.get('attempt_id', -1))}.json"
            target, tmp = f"{path}/{name}", f"{path}/.{name}.{uuid.uuid4().hex}.tmp"
            try:
                with translate_errors(f"{self.url}/{name}", "writing a metrics record"):
                    fs.pipe_file(tmp, json.dumps(record, sort_keys=True).encode("utf-8"))
                    store_rename_noreplace(fs, tmp, target)
            except Exception as exc:
                raise ScoringError(
                    f"cannot write the task's metrics record {self.url}/{name}: {exc}; metrics_dir must be a "
                    "directory the driver and every executor share",
                    path=f"{self.url}/{name}",
                    reason="metrics record not written",
                ) from exc

    def records(self) -> list[dict[str, Any]]:
        """The records in the directory, one per ``(stage, partition)``: the highest attempt's (driver side).

        An unreadable record (not JSON, not a record) is skipped with a
        warning naming its file; a directory that does not exist yet holds
        none; one that cannot be listed raises :class:`ScoringError`.
        """
        fs, path = open_store(self.url)
        try:
            with translate_errors(self.url, "listing the metrics records"):
                if not fs.exists(path):
                    return []
                if not fs.isdir(path):
                    raise NotADirectoryError(f"{path} is not a directory")
                names = sorted(str(p).rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))
        except Exception as exc:
            raise ScoringError(f"cannot list the metrics records in {self.url}: {exc}", path=self.url,
                               reason="metrics records unreadable") from exc  # fmt: skip
        found: dict[Key, dict[str, Any]] = {}
        for name in names:
            match = _RECORD.fullmatch(name)
            if match is None:
                continue  # a temp file of a task still writing (or of one that died), or not ours
            record = _read_record(fs, f"{path}/{name}", f"{self.url}/{name}")
            if record is not None:
                MetricsParam().addInPlace(found, {(int(match[1]), int(match[2])): record})
        return list(found.values())


def _read_record(fs: Any, path: str, url: str) -> dict[str, Any] | None:
    """One record file, or ``None`` (with a warning naming ``url``) when it is not a readable record."""
    try:
        with translate_errors(url, "reading a metrics record"):
            data = fs.cat_file(path)
        record = json.loads(data)
        if not isinstance(record, dict) or not _RECORD_KEYS.issubset(record):
            missing = sorted(_RECORD_KEYS - set(record)) if isinstance(record, dict) else "not a JSON object"
            raise ValueError(f"not a task record (missing {missing})")
    except Exception as exc:
        log.warning("metrics record %s skipped (its task's figures are missing from the report): %s", url, exc)
        return None
    return record


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
