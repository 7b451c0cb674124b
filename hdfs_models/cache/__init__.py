"""The node cache: a model version on local disk once per node, verified, atomically.

One module per concept:

=================  ==========================================================
``_localize``      :func:`localize`, :class:`LocalModel` (the protocol), the counters
``_options``       :class:`CacheOptions` and the cache root (explicit > env)
``_layout``        names under the root: entry keys, lock files, temp dirs
``_plan``          the download plan of one entry and the checks on it (pure)
``_fill``          fill one entry: plan, download, verify, commit
``_download``      fetch a plan's files into a temp dir (parallel, retried)
``_disk``          the local disk: root, temp dirs, commit, sweep
``_evict``         which entries go (LRU, not in use) and removing them
``_access``        who may use it: a store check before a pinned hit, per-user roots
``_lock``          ``flock`` with a timeout
``_claims``        which entries this process uses; :func:`release` ends them (C9)
``_wait``          waiting on another process's download while it progresses (C10)
=================  ==========================================================
"""

from __future__ import annotations

from hdfs_models.cache._claims import holds, release
from hdfs_models.cache._evict import discard, evict
from hdfs_models.cache._localize import CacheStats, LocalModel, cache_stats, localize
from hdfs_models.cache._options import CacheOptions, cache_root, resolve_options

__all__ = [
    "CacheOptions",
    "CacheStats",
    "LocalModel",
    "cache_root",
    "cache_stats",
    "discard",
    "evict",
    "holds",
    "localize",
    "release",
    "resolve_options",
]
