"""The node cache: a model version on local disk once per node, verified, atomically.

Three concepts, as in fsspec's cached filesystem (naming, state, behaviour),
plus the options:

=================  ==========================================================
``_options``       :class:`CacheOptions`; where the cache lives: the root
                   (explicit > env > default) and the per-user subtree
``_layout``        naming and disk: entry keys and temp names, temp dirs, the
                   commit, the damage check, the sweep, eviction (no store I/O)
``_state``         this process's claims (:class:`LocalModel`, :func:`release`,
                   :func:`holds`), the counters, waiting on another process's
                   download, :func:`discard`
``_localize``      behaviour: :func:`localize`, :func:`hold`, the store check
                   before a pinned hit, the fill of one entry
=================  ==========================================================

Below the cache, and knowing nothing of it: the plan of a version's files
(:mod:`hdfs_models._manifest`), the parallel retried copy
(:mod:`hdfs_models._download`) and ``flock`` with a timeout
(:class:`hdfs_models._tree.FileLock`).
"""

from __future__ import annotations

from hdfs_models.cache._layout import evict
from hdfs_models.cache._localize import hold, localize
from hdfs_models.cache._options import CacheOptions, cache_root, resolve_options
from hdfs_models.cache._state import CacheStats, LocalModel, cache_stats, discard, holds, release

__all__ = [
    "CacheOptions",
    "CacheStats",
    "LocalModel",
    "cache_root",
    "cache_stats",
    "discard",
    "evict",
    "hold",
    "holds",
    "localize",
    "release",
    "resolve_options",
]
