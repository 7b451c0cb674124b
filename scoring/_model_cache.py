"""Per-Python-worker cache of loaded SavedModels (module-level, bounded, locked LRU).

A Spark Python worker lives across many tasks, so the model is loaded once
per worker and reused, not once per task or per partition. This relies on:

- ``spark.python.worker.reuse=true`` (the default): workers survive tasks; with
  ``false`` every task is a fresh process and loads again.
- ``spark.task.cpus``: each worker's TensorFlow gets that many intra-op threads
  (read from ``TaskContext.cpus()``; 1 outside Spark), inter-op 1, so that
  ``executor cores / task cpus`` concurrent workers do not oversubscribe the
  cores. ``threads=`` overrides it. TensorFlow accepts thread settings only
  before its runtime starts, so the first load in a process fixes them.
- ``spark.executor.memory`` / ``spark.executor.pyspark.memory`` leave room for
  ``capacity`` models per worker.

Entries are keyed by :attr:`Localized.key` (digest + local path, or path +
mtime for plain directories), the signature, the precision the worker runs
(:mod:`scoring._device`) and the device (:mod:`scoring._device`): a worker
may hold one model as float32 and bfloat16, or on two GPUs. A new key is loaded before the least recently
used entry is dropped, so a version switch never leaves a worker without a
model. When the last model loaded from a node-cache entry is dropped, the
worker's claim on that entry ends (:func:`hdfs_models.release`), so the node
cache's ``max_versions``/``max_bytes`` can reclaim it: a worker holds a
version on disk only while it holds a model loaded from it (RELIABILITY C9).
:func:`load_count` counts real loads (tests use it).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hdfs_models._signatures import import_tensorflow
from hdfs_models.cache import release
from scoring._device import CPU, Placement, with_precision
from scoring.errors import ModelLoadError, SignatureError

__all__ = ["LoadedModel", "cache_info", "clear", "get_model", "load_count"]

log = logging.getLogger(__name__)

DEFAULT_CAPACITY = 2

_lock = threading.Lock()
_entries: OrderedDict[str, LoadedModel] = OrderedDict()
_stats = {"loads": 0, "hits": 0, "load_seconds": 0.0}
_threads_set: list[int | None] = []


@dataclass(frozen=True)
class LoadedModel:
    """A loaded SavedModel and the concrete function of one signature.

    ``function`` runs in ``precision`` on ``device`` (a wrapper around the
    signature's concrete function).
    """

    key: str
    path: str
    signature: str
    function: Any
    loaded: Any
    load_seconds: float
    precision: str = "float32"
    device: str = "cpu"


def get_model(
    key: str,
    path: str,
    signature: str,
    *,
    threads: int | None = None,
    capacity: int = DEFAULT_CAPACITY,
    precision: str = "float32",
    placement: Placement = CPU,
) -> LoadedModel:
    """The loaded model for ``key`` (loading it from ``path`` on a miss).

    ``precision``: a resolved one (``float32`` or ``bfloat16``); ``placement``:
    where to load and run it. Raises ModelLoadError naming ``path`` when
    TensorFlow fails, and SignatureError when the model lacks ``signature``.
    """
    cache_key = f"{key}#{signature}"
    if precision != "float32":
        cache_key += f"#{precision}"
    if placement.key != "cpu":
        cache_key += f"@{placement.key}"
    with _lock:
        hit = _entries.get(cache_key)
        if hit is not None:
            _entries.move_to_end(cache_key)
            _stats["hits"] += 1
            return hit
        configure_threads(threads)
        model = _load(key, path, signature, precision, placement)
        _entries[cache_key] = model
        while len(_entries) > max(1, capacity):
            old_key, old = _entries.popitem(last=False)
            log.info("dropped model %s from the worker cache", old_key)
            _release_unused(old.path)
        return model


def _release_unused(path: str) -> None:
    """End this worker's claim on a node-cache entry once no cached model comes from it (C9).

    Eviction (``max_versions``/``max_bytes``) may then reclaim the version a
    hot update or the LRU left behind; a plain directory holds no claim.
    Called with ``_lock`` held.
    """
    if all(m.path != path for m in _entries.values()) and release(path):
        log.info("released the node-cache entry %s (no model of this worker uses it)", path)


def _load(key: str, path: str, signature: str, precision: str, placement: Placement) -> LoadedModel:
    start = time.perf_counter()
    tf = import_tensorflow()
    try:
        with tf.device(placement.device):  # variables live on the task's GPU
            loaded = tf.saved_model.load(path)
    except Exception as exc:  # TF raises many types (DataLossError, OSError, ValueError...)
        raise ModelLoadError(
            f"TensorFlow could not load {path}: {type(exc).__name__}: {exc}",
            path=path,
            reason=type(exc).__name__,
        ) from exc
    if signature not in loaded.signatures:
        raise SignatureError(
            f"{path} has no signature {signature!r}; signatures: {sorted(loaded.signatures)}",
            path=path,
            reason="no such signature",
        )
    elapsed = time.perf_counter() - start
    _stats["loads"] += 1
    _stats["load_seconds"] += elapsed
    log.info("loaded model %s (pid %d, %s, %s) in %.2fs", path, os.getpid(), precision, placement.device, elapsed)
    function = with_precision(loaded.signatures[signature], precision, placement.device)
    return LoadedModel(key, path, signature, function, loaded, elapsed, precision, placement.device)


def task_cpus(context_factory: Callable[[], Any] | None = None) -> int:
    """CPUs of the running Spark task (``spark.task.cpus``), 1 outside a task."""
    try:
        if context_factory is None:
            from pyspark import TaskContext

            context_factory = TaskContext.get
        context = context_factory()
        return max(1, int(context.cpus())) if context is not None else 1
    except Exception:  # no pyspark, or an old one without cpus(): one thread is safe
        return 1


def configure_threads(threads: int | None) -> None:
    """Set TF's intra-op threads (``threads`` or the task's CPUs) and inter-op 1, once."""
    if _threads_set:
        return
    intra = threads if threads is not None else task_cpus()
    tf = import_tensorflow()

    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # the TF runtime already started in this process: keep its settings
        if tf.config.threading.get_intra_op_parallelism_threads() != intra:
            log.warning("TensorFlow already initialised; cannot set %d intra-op threads", intra)
    _threads_set.append(intra)


def load_count() -> int:
    """How many models this process has loaded (cache misses)."""
    return int(_stats["loads"])


def cache_info() -> dict[str, Any]:
    """Counters and entries: ``loads``, ``hits``, ``load_seconds`` (totals), ``keys``
    (LRU order), ``models`` ({key: {"path", "load_seconds", "precision", "device"}}), ``pid``."""
    with _lock:
        models = {k: {"path": m.path, "load_seconds": m.load_seconds, "precision": m.precision, "device": m.device}
                  for k, m in _entries.items()}  # fmt: skip
        return {**_stats, "keys": list(_entries), "models": models, "pid": os.getpid()}


def clear() -> None:
    """Drop every cached model (ending this worker's claims on their entries) and reset the counters."""
    with _lock:
        paths = {m.path for m in _entries.values()}
        _entries.clear()
        for path in paths:
            release(path)
        _stats.update(loads=0, hits=0, load_seconds=0.0)
