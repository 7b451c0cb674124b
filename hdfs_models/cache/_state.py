"""The node cache's per-process state: the claims on entries, the counters, waiting, discard.

- **Claims** (the one per-process registry of entries in use; RELIABILITY C6,
  C9): a process claims an entry by holding a shared ``flock`` on
  ``<key>.use``; eviction and :func:`discard` only remove an entry whose
  ``.use`` they can lock exclusively, so a claimed entry is never deleted. One
  lock per entry per process, counted: every :class:`LocalModel` adds one and
  its ``release()`` takes one away. A long-lived process (a Spark Python
  worker that scores version after version) ends all of its claims on an
  entry at once with :func:`release`: the per-worker model cache of
  :mod:`scoring` calls it when it drops the last model loaded from an entry,
  so ``max_versions``/``max_bytes`` can reclaim versions a hot update left
  behind. A ``LocalModel`` whose claim was ended that way releases nothing
  later (each claim remembers the lock it counted on), so a stale object
  never ends a newer claim. :func:`~hdfs_models.cache.hold` uses it too.
- **Counters**: hits, misses, errors, bytes and seconds of this process
  (:func:`cache_stats`).
- **Waiting** for another process's download of the same entry (C7, C10):
  bounded by *progress*. While the holder's temp dir keeps changing size the
  waiter keeps waiting; it fails with :class:`LockTimeoutError` only after
  ``lock_timeout`` seconds in which nothing changed. A holder that dies
  releases its lock (the kernel drops the ``flock``), so the waiter takes over.
- :func:`discard`: drop an entry this process found unusable, once no one
  else claims it (without locks, P5: always moved aside, never deleted).
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from hdfs_models._tree import FileLock
from hdfs_models._versions import PinnedVersion
from hdfs_models.cache._layout import (
    LOCK_SUFFIX,
    TEMP_PREFIX,
    USE_SUFFIX,
    evict_entries,
    is_entry_name,
    remove_entry,
)
from hdfs_models.cache._options import resolve_options
from hdfs_models.errors import CacheError, LockTimeoutError

__all__ = [
    "CacheStats",
    "Lease",
    "LocalModel",
    "cache_stats",
    "claim",
    "count",
    "discard",
    "download_bytes",
    "holds",
    "make_room",
    "no_room",
    "release",
    "sweep_condemned",
    "touch_use",
    "wait_for_download",
]

logger = logging.getLogger(__name__)


_lock = threading.Lock()


_held: dict[tuple[int, str], list[Any]] = {}  # (pid, .use path) -> [FileLock, count]


class Lease:
    """One counted claim on an entry's shared lock (idempotent release)."""

    def __init__(self, use_path: str | None, lock: FileLock | None = None) -> None:
        self.use_path = use_path
        self.lock = lock
        self.released = use_path is None

    def release(self) -> None:
        """Take this claim away; the process's lock goes with its last claim."""
        if self.released or self.use_path is None:
            return
        self.released = True
        key = (os.getpid(), self.use_path)
        with _lock:
            held = _held.get(key)
            if held is None or held[0] is not self.lock:
                return  # ended already by release(path), maybe claimed again since
            held[1] -= 1
            last = held[1] <= 0
            if last:
                del _held[key]
        if last:
            _release_lock(held)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Lease, (None,))  # a lock does not travel to another process


def _release_lock(held: list[Any]) -> None:
    lock: FileLock = held[0]
    lock.release()


def claim(use_path: str, *, locking: bool, timeout: float | None) -> Lease:
    """Take (or count one more on) this process's shared lock on ``use_path``."""
    key = (os.getpid(), use_path)
    with _lock:
        held = _held.get(key)
        if held is not None:
            held[1] += 1
            return Lease(use_path, held[0])
    lock = FileLock(use_path, shared=True, enabled=locking)
    lock.acquire(timeout)
    with _lock:
        held = _held.get(key)
        if held is not None:  # another thread claimed it meanwhile: count on that one
            held[1] += 1
            lock.release()
            return Lease(use_path, held[0])
        _held[key] = [lock, 1]
    return Lease(use_path, lock)


def _use_path(entry: str | os.PathLike[str]) -> str:
    return os.path.abspath(os.fspath(entry)) + USE_SUFFIX


def release(entry: str | os.PathLike[str]) -> bool:
    """End every claim this process holds on the cache entry at ``entry`` (a ``LocalModel.path``).

    Returns False when the process held none (already released, or a path
    that is not a cache entry, e.g. a plain model directory). Other
    processes' claims are untouched. Once no process holds it, eviction may
    remove the entry; a later :func:`~hdfs_models.localize` claims it again.
    """
    with _lock:
        held = _held.pop((os.getpid(), _use_path(entry)), None)
    if held is None:
        return False
    held[0].release()
    return True


def holds(entry: str | os.PathLike[str]) -> bool:
    """Whether this process holds a claim on the cache entry at ``entry``."""
    with _lock:
        return (os.getpid(), _use_path(entry)) in _held


_POLL = 0.25  # seconds between progress checks


def download_bytes(root: str, key: str) -> int:
    """Bytes written so far into every temp dir of ``key`` under ``root`` (vanishing files skipped)."""
    prefix = f"{TEMP_PREFIX}{key}-"
    total = 0
    try:
        temps = [e.path for e in os.scandir(root) if e.name.startswith(prefix)]
    except OSError:
        return 0
    for temp in temps:
        for dirpath, _dirs, files in os.walk(temp):
            for name in files:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_size
                except OSError:
                    continue  # renamed or removed meanwhile
    return total


def wait_for_download(
    lock: FileLock,
    root: str,
    key: str,
    timeout: float | None,
    *,
    clock: Callable[[], float] = time.monotonic,
    poll: float = _POLL,
) -> None:
    """Take ``lock`` (``key``'s download lock), waiting while its holder makes progress.

    ``timeout``: seconds without progress before :class:`LockTimeoutError`
    (naming the lock path); ``None`` waits forever.
    """
    if timeout is None:
        lock.acquire(None)
        return
    start = quiet_since = clock()
    seen = download_bytes(root, key)
    while True:
        left = timeout - (clock() - quiet_since)
        if lock.acquire(max(min(poll, left), 0.0), raise_on_timeout=False):
            return
        now = download_bytes(root, key)
        if now != seen:  # bytes grew (or a retry restarted a file): the holder is alive and working
            seen, quiet_since = now, clock()
            continue
        quiet = clock() - quiet_since
        if quiet >= timeout:
            raise LockTimeoutError(
                f"gave up waiting for the download lock {lock.path}: no download progress for "
                f"{quiet:.1f}s (lock_timeout {timeout:g}s; {seen} bytes in the holder's temp dir). "
                "Another process holds the lock without writing; raise lock_timeout or check for a stuck process",
                path=lock.path,
                reason="lock timeout",
                timeout=timeout,
                elapsed=clock() - start,
            )


def discard(path: str | os.PathLike[str], lock_timeout: float = 60.0, *, locking: bool | None = None) -> bool:
    """Remove a cached entry found to be corrupt, so the next :func:`localize` downloads it again.

    For a caller that could not load ``path`` (a :attr:`LocalModel.path`), e.g.
    TensorFlow raised ``DataLossError`` (RELIABILITY L2). The entry vanishes
    atomically (renamed away under the entry's download lock, then deleted);
    processes that already loaded the model keep their copy in memory. The
    caller's own claim on the entry ends. An entry that another process still
    holds (a live :class:`LocalModel` there) is moved aside instead, to
    ``.corrupt-<key>-<rand>``, so the next localize downloads a fresh copy
    while the holders keep their files (RELIABILITY P8); :func:`sweep_condemned`
    deletes it once no process holds ``<key>`` any more; with ``locking``
    off (default: ``HDFS_MODELS_LOCKING``; P5) it is always moved aside and
    never deleted. Returns False when the entry was already gone. Raises
    :class:`CacheError` if ``path`` is not a cache entry.
    """
    entry = os.path.abspath(os.fspath(path))
    root, key = os.path.split(entry)
    if not is_entry_name(key):
        raise CacheError(f"{entry} is not a node-cache entry", path=entry, reason="not an entry")
    locking = resolve_options().locking if locking is None else locking
    lock = FileLock(entry + LOCK_SUFFIX, enabled=locking)
    lock.acquire(lock_timeout)  # no downloader may commit this key meanwhile
    release(entry)  # the caller gives up its own claim: it found the entry unusable
    use = FileLock(entry + USE_SUFFIX)
    try:
        if not os.path.isdir(entry):
            return False
        if not locking or not use.try_acquire():
            aside = tempfile.mkdtemp(prefix=f"{CONDEMNED_PREFIX}{key}-", dir=root)
            os.rename(entry, os.path.join(aside, "entry"))
            logger.warning("cache entry %s is corrupt and may be in use: moved aside to %s (deleted once nobody "
                           "holds it; without locks, never); the next localize downloads it again", entry, aside)  # fmt: skip
            return True
        remove_entry(root, key)
    except OSError as exc:
        raise CacheError(f"cannot discard {entry}: {exc}", path=entry, reason=str(exc)) from exc
    finally:
        use.release()
        lock.release()
    logger.warning("discarded the cache entry %s; the next localize downloads it again", entry)
    return True


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


def count(hits: int = 0, misses: int = 0, errors: int = 0, nbytes: int = 0, seconds: float = 0.0) -> None:
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


def touch_use(path: str) -> None:
    try:
        os.utime(path)
    except OSError:
        pass  # last-use time is a hint for LRU; a read-only root keeps entries anyway


def make_room(root: str, pinned: PinnedVersion, exc: CacheError) -> bool:
    """P6: evict entries nobody holds until ``pinned`` fits (5% to spare); True, or :func:`no_room` raised."""
    room = pinned.total_bytes * 21 // 20 - shutil.disk_usage(root).free
    removed = evict_entries(root, None, None, room=max(room, 1))
    if not removed:
        raise no_room(root, pinned, exc) from exc
    logger.warning("cache root %s was full: evicted %d unused entries for %s", root, len(removed), pinned.url)
    return True


def no_room(root: str, pinned: PinnedVersion, exc: CacheError) -> CacheError:
    """The error of a full cache root: the root, the bytes the version needs and the bytes free."""
    free = shutil.disk_usage(root).free
    return CacheError(
        f"cache root {root} is full ({os.strerror(errno.ENOSPC)}): {pinned.url} needs {pinned.total_bytes} bytes, "
        f"{free} bytes are free and "
        "no entry that no process holds is left to evict; free space, bound the cache (HDFS_MODELS_MAX_BYTES) or point "
        "HDFS_MODELS_CACHE at a larger disk",
        url=pinned.url, path=root, reason="ENOSPC", needed=pinned.total_bytes, free=free,
        **{k: v for k, v in exc.details.items() if k in ("attempts", "elapsed", "file")},
    )  # fmt: skip


#: Entries found corrupt while other processes held them (P8): ``.corrupt-<key>-<rand>/entry``.
CONDEMNED_PREFIX = ".corrupt-"


def sweep_condemned(root: str) -> list[str]:
    """Delete the entries :func:`discard` moved aside whose key no process holds any more."""
    removed = []
    for name in os.listdir(root) if os.path.isdir(root) else ():
        if not name.startswith(CONDEMNED_PREFIX):
            continue
        key = name[len(CONDEMNED_PREFIX) :].rsplit("-", 1)[0]
        use = FileLock(os.path.join(root, key + USE_SUFFIX))
        if use.try_acquire():
            try:
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
                removed.append(os.path.join(root, name))
                logger.info("removed %s: nobody holds the corrupt copy any more", removed[-1])
            finally:
                use.release()
    return removed
