"""Waiting for another process's download of the same entry (RELIABILITY C7, C10).

A process that finds an entry being downloaded waits on the entry's
download lock. A fixed timeout would fail the waiters of a healthy 5 GB
download over a slow link; no timeout would hang them behind a stuck one.
So the wait is bounded by *progress*: while the holder's temp dir
(``.tmp-<key>-*`` in the cache root) keeps changing size, the waiter keeps
waiting; it fails with :class:`LockTimeoutError` only after ``lock_timeout``
seconds in which nothing changed. A holder that dies releases the lock (the
kernel drops its ``flock``), so the waiter then takes over.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from hdfs_models.cache._layout import TEMP_PREFIX
from hdfs_models.cache._lock import FileLock
from hdfs_models.errors import LockTimeoutError

__all__ = ["download_bytes", "wait_for_download"]

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
