"""Eviction from the node cache: which entries go, and making them vanish atomically.

An entry is *in use* while some process holds its ``<key>.use`` shared
lock (a live :class:`~hdfs_models.cache.LocalModel`); eviction removes only
entries whose ``<key>.use`` it can lock exclusively without waiting, least
recently used first. An entry vanishes by one rename to a temp name
(swept like a dead download if this process dies), then is deleted.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
from collections.abc import Collection, Sequence

from hdfs_models._tree import walk_tree
from hdfs_models.cache._access import user_root
from hdfs_models.cache._claims import release
from hdfs_models.cache._disk import make_temp, remove_tree, sweep_temps
from hdfs_models.cache._layout import LOCK_SUFFIX, USE_SUFFIX, is_entry_name
from hdfs_models.cache._lock import FileLock
from hdfs_models.cache._options import cache_root
from hdfs_models.errors import CacheError

__all__ = ["EntryInfo", "discard", "evict", "evict_entries", "list_entries", "remove_entry", "select_evictions"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class EntryInfo:
    """A committed cache entry: key, bytes on disk, last use (seconds since the epoch)."""

    key: str
    size: int
    last_used: float


def select_evictions(
    entries: Sequence[EntryInfo],
    max_versions: int | None,
    max_bytes: int | None,
    busy: Collection[str] = frozenset(),
) -> list[str]:
    """Keys to evict, least recently used first, until at most ``max_versions``
    entries and ``max_bytes`` bytes remain (``None``: no limit).

    ``busy`` entries (in use by some process) are never chosen, even if the
    limits cannot be met without them.
    """
    ordered = sorted(entries, key=lambda e: (e.last_used, e.key))  # oldest first
    evict: list[str] = []
    count = len(ordered)
    total = sum(e.size for e in ordered)
    for entry in ordered:
        over_count = max_versions is not None and count > max_versions
        over_bytes = max_bytes is not None and total > max_bytes
        if not (over_count or over_bytes):
            break
        if entry.key in busy:
            continue
        evict.append(entry.key)
        count -= 1
        total -= entry.size
    return evict


def _tree_size(path: str) -> int:
    try:
        return walk_tree(path).total_bytes
    except OSError:
        return 0  # removed meanwhile (entries vanish by one atomic rename)


def list_entries(root: str) -> list[EntryInfo]:
    """Committed entries under ``root`` with their size and last use."""
    entries = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if not is_entry_name(name) or not stat.S_ISDIR(os.lstat(path).st_mode):
            continue  # not ours: a cache root may be shared with other files
        try:
            last_used = os.stat(path + USE_SUFFIX).st_mtime
        except OSError:
            last_used = os.lstat(path).st_mtime
        entries.append(EntryInfo(name, _tree_size(path), last_used))
    return entries


def remove_entry(root: str, key: str) -> str:
    """Make ``<root>/<key>`` vanish atomically (rename to a temp name), then delete it."""
    path = os.path.join(root, key)
    doomed = make_temp(root, key)
    os.rename(path, os.path.join(doomed, "entry"))
    remove_tree(doomed)
    return path


def evict_entries(root: str, max_versions: int | None, max_bytes: int | None) -> list[str]:
    """Evict LRU entries until within limits, skipping entries in use (C6).

    An entry is in use when its ``<key>.use`` cannot be locked exclusively
    without waiting. Each chosen entry is renamed to a temp name first (so it
    disappears atomically) and then deleted. Returns the removed entry paths.
    """
    entries = list_entries(root)
    locks: dict[str, FileLock] = {}
    busy: set[str] = set()
    try:
        for entry in entries:
            lock = FileLock(os.path.join(root, entry.key + USE_SUFFIX))
            if lock.try_acquire():
                locks[entry.key] = lock
            else:
                busy.add(entry.key)
        chosen = select_evictions(entries, max_versions, max_bytes, busy)
        for key in set(locks) - set(chosen):
            locks.pop(key).release()  # readers of kept entries need not wait for the deletes
        removed = []
        for key in chosen:
            removed.append(remove_entry(root, key))
            logger.info("evicted %s", removed[-1])
        if busy:
            logger.info("kept %d entries in use: %s", len(busy), sorted(busy))
        return removed
    finally:
        for lock in locks.values():
            lock.release()


def evict(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    max_versions: int | None = None,
    max_bytes: int | None = None,
) -> list[str]:
    """Sweep dead downloads and evict least recently used entries not in use.

    Keeps at most ``max_versions`` entries and ``max_bytes`` bytes (``None``:
    no limit; the same limits as :class:`~hdfs_models.CacheOptions`, which
    ``localize`` applies after a download); an entry some process holds (a
    live :class:`~hdfs_models.LocalModel`) is never removed, even if the limits
    then cannot be met. Returns the removed entry paths. A missing root is an
    empty cache.
    """
    root = user_root(cache_root(cache_dir))
    if not os.path.isdir(root):
        return []
    sweep_temps(root, locking=True)
    if max_versions is None and max_bytes is None:
        return []
    try:
        return evict_entries(root, max_versions, max_bytes)
    except OSError as exc:
        raise CacheError(f"cannot evict from the cache root {root}: {exc}", path=root, reason=str(exc)) from exc


def discard(path: str | os.PathLike[str], lock_timeout: float = 60.0) -> bool:
    """Remove a cached entry found to be corrupt, so the next :func:`localize` downloads it again.

    For a caller that could not load ``path`` (a :attr:`LocalModel.path`), e.g.
    TensorFlow raised ``DataLossError`` (RELIABILITY L2). The entry vanishes
    atomically (renamed away under the entry's download lock, then deleted);
    processes that already loaded the model keep their copy in memory. The
    caller's own claim on the entry ends; an entry that another process still
    holds (a live :class:`LocalModel` there) is never removed. Returns False
    when the entry was already gone or is held elsewhere. Raises
    :class:`CacheError` if ``path`` is not a cache entry.
    """
    entry = os.path.abspath(os.fspath(path))
    root, key = os.path.split(entry)
    if not is_entry_name(key):
        raise CacheError(f"{entry} is not a node-cache entry", path=entry, reason="not an entry")
    lock = FileLock(entry + LOCK_SUFFIX)
    lock.acquire(lock_timeout)  # no downloader may commit this key meanwhile
    release(entry)  # the caller gives up its own claim: it found the entry unusable
    use = FileLock(entry + USE_SUFFIX)
    try:
        if not os.path.isdir(entry):
            return False
        if not use.try_acquire():
            logger.warning("not discarding the cache entry %s: another process still uses it", entry)
            return False
        remove_entry(root, key)
    except OSError as exc:
        raise CacheError(f"cannot discard {entry}: {exc}", path=entry, reason=str(exc)) from exc
    finally:
        use.release()
        lock.release()
    logger.warning("discarded the cache entry %s; the next localize downloads it again", entry)
    return True
