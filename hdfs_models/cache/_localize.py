""":func:`localize` a model version onto local disk once per node, and :class:`LocalModel`.

Protocol (names under the root in :mod:`._layout`)::

    resolve the version (or take the caller's ``pinned=``)      one listing/manifest read
    shared flock <key>.use                                       held by the LocalModel
    <key>/ exists?  → hit, done                                  no further store I/O (L4)
    <key>/ damaged (a file missing or of the wrong size)?  → download it again (H7)
    exclusive flock <key>.lock (wait while the holder progresses, C10)  one downloader per node (C1)
    <key>/ exists now?  → another process finished it, done
    sweep temp dirs of dead processes                            (C4)
    check completeness of the plan                               before any byte moves (B3, B10)
    download into .tmp-<key>-<pid>-<rand>/ inside the root       verified per file (F1-F4, B7)
    manifest-less: list the source again, compare                (F5)
    fsync, chmod, rename tmp to <key> without replacing         atomic commit; loser uses the winner (C5)
    evict LRU entries nobody holds (max_versions 8 by default)   (C6, C9)

Correctness comes from the rename, not the locks: with ``locking=False`` (or
a file system whose flock does nothing) processes may download the same
version twice, but never expose a partial tree (C2, C3).

Two lock files per entry, because readers hold their shared lock for as
long as they use the model: a downloader waiting on ``<key>.use`` would wait
for every reader to finish, so downloads serialise on ``<key>.lock`` instead.
A :class:`LocalModel` keeps ``<key>.use`` locked shared until
:meth:`LocalModel.release` or process exit (the kernel drops it if the
process dies); eviction only removes entries whose ``<key>.use`` it can lock
exclusively without waiting, so an entry in use is never deleted. Claims are
counted per process in :mod:`._claims`, where :func:`~._claims.release` ends
all of a process's claims on an entry at once (C9).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from hdfs_models._progress import Progress
from hdfs_models._versions import PinnedVersion, resolve
from hdfs_models.cache._access import authorize, ensure_user_root, user_root
from hdfs_models.cache._claims import Lease, claim
from hdfs_models.cache._disk import entry_damage, sweep_temps
from hdfs_models.cache._evict import evict_entries, remove_entry
from hdfs_models.cache._fill import fill_entry
from hdfs_models.cache._layout import LOCK_SUFFIX, USE_SUFFIX, entry_key
from hdfs_models.cache._lock import FileLock
from hdfs_models.cache._options import CacheOptions, cache_root, resolve_options
from hdfs_models.cache._wait import wait_for_download
from hdfs_models.errors import CacheError, HdfsModelsError
from hdfs_models.store import Filesystem

__all__ = ["CacheStats", "LocalModel", "cache_stats", "localize"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class LocalModel:
    """A localized model version: ``path`` is a complete, verified SavedModel dir.

    While this object is not released, the entry is *in use*: eviction
    (:func:`~hdfs_models.evict`, ``max_versions``/``max_bytes``) skips it. The claim is a
    shared ``flock`` on ``<key>.use`` held until :meth:`release` (or ``with``
    exit) or the end of the process; dropping the object does not release it.
    Pickling gives a copy without the claim.
    """

    path: str
    name: str
    version: int
    digest: str
    url: str
    _lease: Lease = dataclasses.field(default_factory=lambda: Lease(None), repr=False, compare=False)

    def release(self) -> None:
        """Give up this object's claim on the entry (idempotent)."""
        self._lease.release()

    close = release

    def __enter__(self) -> LocalModel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


@dataclasses.dataclass(frozen=True)
class CacheStats:
    """What :func:`localize` did in this process: every call ends as a hit, a miss or an error.

    ``hits``: the entry was there (or another process finished it while this
    one waited); ``misses``: this process downloaded it (``bytes_downloaded``
    counts those bytes, ``download_seconds`` their time); ``errors``: the
    call raised. Subtract two snapshots for what happened in between.
    """

    localize_calls: int = 0
    hits: int = 0
    misses: int = 0
    errors: int = 0
    bytes_downloaded: int = 0
    download_seconds: float = 0.0

    def __sub__(self, other: CacheStats) -> CacheStats:
        return CacheStats(*(getattr(self, f.name) - getattr(other, f.name) for f in dataclasses.fields(self)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_stats_lock = threading.Lock()
_stats = CacheStats()


def cache_stats() -> CacheStats:
    """A snapshot of this process's node-cache counters (see :class:`CacheStats`)."""
    with _stats_lock:
        return _stats


def _count(hits: int = 0, misses: int = 0, errors: int = 0, nbytes: int = 0, seconds: float = 0.0) -> None:
    global _stats
    with _stats_lock:
        _stats = CacheStats(
            _stats.localize_calls + 1,
            _stats.hits + hits,
            _stats.misses + misses,
            _stats.errors + errors,
            _stats.bytes_downloaded + nbytes,
            _stats.download_seconds + seconds,
        )


def _touch(path: str) -> None:
    try:
        os.utime(path)
    except OSError:
        pass  # last-use time is a hint for LRU; a read-only root keeps entries anyway


def localize(
    url: str,
    version: int | str = "latest",
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
    filesystem: Filesystem | None = None,
    pinned: PinnedVersion | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> LocalModel:
    """Make one model version available on local disk, once per node; return it.

    ``url`` is a base dir (``BASE/<n>/`` layout) or a version dir; ``version``
    is ``"latest"`` or an integer. ``pinned`` (a :class:`~hdfs_models.PinnedVersion`
    from :func:`~hdfs_models.resolve`, e.g. resolved on the Spark driver)
    skips the resolution, so a cached version costs no store I/O at all.
    ``options`` are :class:`~hdfs_models.CacheOptions` fields
    (unknown names raise ``TypeError``); ``progress(done_bytes, total_bytes)``
    is called as bytes arrive (:data:`~hdfs_models._progress.Progress`).
    The cache root is ``cache_dir`` > ``HDFS_MODELS_CACHE`` >
    YARN ``LOCAL_DIRS`` (or ``LOCAL_USER_DIRS``, by ``HDFS_MODELS_CACHE_SCOPE``) >
    ``SPARK_LOCAL_DIRS`` > ``~/.cache/hdfs-models`` (:func:`~hdfs_models.cache._options.cache_root`).

    Errors carry ``url``, ``version``, ``path`` (local), ``elapsed`` and, for
    downloads, ``attempts``. Nothing partial is ever visible under the root.
    """
    start = time.monotonic()
    opts = resolve_options(options)
    configured = cache_root(cache_dir)
    try:
        root = user_root(configured)
        if pinned is None:
            pinned = resolve(url, version, storage_options=storage_options, filesystem=filesystem)
        elif not opts.trust_cache:
            cached = os.path.join(root, entry_key(pinned.name, pinned.version, pinned.digest))
            # K5: the cache serves no one the store would refuse; H4: a deleted version keeps serving
            authorize(pinned, filesystem, cached if os.path.isdir(cached) else None)
    except BaseException:
        _count(errors=1)
        raise
    key = entry_key(pinned.name, pinned.version, pinned.digest)
    entry = os.path.join(root, key)
    try:
        return _localize_pinned(pinned, configured, key, opts, filesystem, progress, start)
    except BaseException as exc:
        _count(errors=1)
        if isinstance(exc, HdfsModelsError):
            _annotate(exc, pinned.url, pinned.version, entry, start)
        raise


def _localize_pinned(
    pinned: PinnedVersion,
    configured: str,
    key: str,
    opts: CacheOptions,
    filesystem: Filesystem | None,
    progress: Progress | None,
    start: float,
) -> LocalModel:
    root = ensure_user_root(configured)
    entry = os.path.join(root, key)
    try:
        lease = claim(entry + USE_SUFFIX, locking=opts.locking, timeout=opts.lock_timeout)
    except CacheError as exc:
        raise CacheError(f"cache root {root} is not usable: {exc}", path=root, reason=exc.reason) from exc
    try:
        if not os.path.isdir(entry) or entry_damage(entry, pinned.files, pinned.empty_dirs) is not None:
            downloaded = _download_once(pinned, root, key, opts, filesystem, progress, start)
        else:
            downloaded = None
            _touch(entry + USE_SUFFIX)
            logger.info(
                "cache hit: %s v%s at %s (%.1f ms)",
                pinned.name,
                pinned.version,
                entry,
                (time.monotonic() - start) * 1e3,
            )
    except BaseException:
        lease.release()
        raise
    if downloaded is None:
        _count(hits=1)
    else:
        _count(misses=1, nbytes=downloaded, seconds=time.monotonic() - start)
    if downloaded is not None and (opts.max_versions is not None or opts.max_bytes is not None):
        evict_entries(root, opts.max_versions, opts.max_bytes)  # only a download adds an entry
    return _model(pinned, entry, lease)


def _download_once(
    pinned: PinnedVersion,
    root: str,
    key: str,
    opts: CacheOptions,
    filesystem: Filesystem | None,
    progress: Progress | None,
    start: float,
) -> int | None:
    """Under the entry's download lock, download it unless another process did; the bytes, or None."""
    entry = os.path.join(root, key)
    lock = FileLock(entry + LOCK_SUFFIX, enabled=opts.locking)
    wait_for_download(lock, root, key, opts.lock_timeout)  # C10: waits while the holder makes progress
    try:
        if os.path.isdir(entry):
            damage = entry_damage(entry, pinned.files, pinned.empty_dirs)
            if damage is None:
                logger.info(
                    "cache hit after waiting: %s v%s at %s (%.1f ms)",
                    pinned.name,
                    pinned.version,
                    entry,
                    (time.monotonic() - start) * 1e3,
                )
                return None
            # H7: removed or truncated since it was committed (a tmp cleaner?). Its holders'
            # files are damaged already; replace it for everyone.
            logger.warning("cache entry %s is damaged (%s); downloading it again", entry, damage)
            remove_entry(root, key)
        sweep_temps(root, locking=opts.locking, held={key})
        nbytes, won = fill_entry(pinned, root, key, opts, filesystem=filesystem, progress=progress)
    finally:
        lock.release()
    seconds = time.monotonic() - start
    logger.info(
        "cache miss: %s v%s downloaded %d bytes in %.2f s (%.1f MB/s) to %s%s",
        pinned.name,
        pinned.version,
        nbytes,
        seconds,
        nbytes / 1e6 / max(seconds, 1e-9),
        entry,
        "" if won else " (another process committed first; using its copy)",
    )
    return nbytes


def _model(pinned: PinnedVersion, entry: str, lease: Lease) -> LocalModel:
    return LocalModel(entry, pinned.name, int(pinned.version), pinned.digest, pinned.url, lease)


def _annotate(exc: HdfsModelsError, url: str, version: int, path: str, start: float) -> None:
    """Add what L3 asks every error to carry, without overwriting what it has."""
    if exc.url is None:
        exc.url = url
    if exc.path is None:
        exc.path = path
    exc.details.setdefault("version", version)
    exc.details.setdefault("local_path", path)
    exc.details.setdefault("elapsed", time.monotonic() - start)
    exc.details.setdefault("attempts", exc.details.get("attempts", 1))
