"""Claims on node-cache entries: which entries this process is using (RELIABILITY C6, C9).

A process *claims* an entry by holding a shared ``flock`` on ``<key>.use``;
eviction and :func:`~hdfs_models.discard` only remove an entry whose
``.use`` they can lock exclusively, so a claimed entry is never deleted. One
lock per entry per process, counted: every :class:`~hdfs_models.LocalModel`
adds one and its ``release()`` takes one away.

A long-lived process (a Spark Python worker that scores version after
version) must also be able to say "I no longer use this entry" without
tracking every ``LocalModel`` it was handed, one per task: :func:`release`
ends all of this process's claims on an entry at once. The per-worker model
cache of :mod:`scoring` calls it when it drops the last model loaded from an
entry, so ``max_versions``/``max_bytes`` can reclaim versions a hot update
left behind (C9). A ``LocalModel`` whose claim was ended that way releases
nothing later (each claim remembers the lock it counted on), so a stale
object never ends a newer claim.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from hdfs_models.cache._layout import USE_SUFFIX
from hdfs_models.cache._lock import FileLock

__all__ = ["Lease", "claim", "holds", "release"]

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
