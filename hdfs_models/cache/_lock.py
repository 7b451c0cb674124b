"""Advisory file locks (``fcntl.flock``) with a timeout.

``flock`` locks belong to an open file description: the kernel releases them
when the last descriptor closes, including when the process dies (SIGKILL
too), so a crashed holder never leaves a stale lock. Two descriptors opened
separately conflict even inside one process, so two threads each holding
their own :class:`FileLock` exclude each other. Descriptors are opened
``O_CLOEXEC``: an ``exec``-ed child does not inherit the lock (a ``fork``-ed
child shares it until it closes its copy).

On file systems where ``flock`` silently does nothing (some NFS, Lustre
setups) locking only saves duplicate work; callers must stay correct without
it (the node cache commits with an atomic rename). ``enabled=False`` gives a
lock that does nothing, for those setups and for tests of that case.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import time
from collections.abc import Callable
from types import TracebackType

from hdfs_models.errors import CacheError, LockTimeoutError

__all__ = ["FileLock"]

logger = logging.getLogger(__name__)

_POLL_MIN = 0.005
_POLL_MAX = 0.1


class FileLock:
    """An exclusive or shared ``flock`` on ``path`` (created if missing).

    ``acquire(timeout)`` waits up to ``timeout`` seconds (``None``: forever,
    ``0``: one try) and raises :class:`LockTimeoutError` naming the lock path;
    ``try_acquire()`` returns ``False`` instead of waiting. A lock file that
    cannot be created (read-only or missing directory) raises
    :class:`CacheError` naming the path; an existing lock file in a read-only
    directory is opened read-only (``flock`` works on such descriptors).
    """

    def __init__(
        self,
        path: str,
        *,
        shared: bool = False,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = path
        self.shared = shared
        self.enabled = enabled
        self._clock = clock
        self._sleep = sleep
        self._fd: int | None = None
        self._held = False

    @property
    def held(self) -> bool:
        """Whether this object currently holds the lock."""
        return self._held

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        try:
            return os.open(self.path, flags, 0o644)
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) and os.path.exists(self.path):
                try:
                    return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    pass
            raise CacheError(
                f"cannot create lock file {self.path}: {exc.strerror or exc}",
                path=self.path,
                reason=exc.strerror or str(exc),
            ) from exc

    def _try_flock(self) -> bool:
        assert self._fd is not None
        mode = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        try:
            fcntl.flock(self._fd, mode | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True

    def try_acquire(self) -> bool:
        """Take the lock if nobody conflicting holds it; never waits."""
        return self.acquire(timeout=0, raise_on_timeout=False)

    def acquire(self, timeout: float | None = None, *, raise_on_timeout: bool = True) -> bool:
        """Take the lock, waiting up to ``timeout`` seconds (``None``: forever).

        Returns ``True`` once held; on timeout raises :class:`LockTimeoutError`
        (or returns ``False`` when ``raise_on_timeout`` is false).
        """
        if self._held:
            return True
        if not self.enabled:
            self._held = True
            return True
        if self._fd is None:
            self._fd = self._open()
        start = self._clock()
        delay = _POLL_MIN
        while not self._try_flock():
            waited = self._clock() - start
            if timeout is not None and waited >= timeout:
                self._close()
                if not raise_on_timeout:
                    return False
                kind = "shared" if self.shared else "exclusive"
                raise LockTimeoutError(
                    f"timed out after {waited:.1f}s waiting for the {kind} lock {self.path} "
                    "(another process holds it; raise lock_timeout or check for a stuck process)",
                    path=self.path,
                    reason="lock timeout",
                    timeout=timeout,
                    elapsed=waited,
                )
            self._sleep(delay if timeout is None else min(delay, max(timeout - waited, 0.0)))
            delay = min(delay * 2, _POLL_MAX)
        self._held = True
        logger.debug("acquired %s lock %s", "shared" if self.shared else "exclusive", self.path)
        return True

    def release(self) -> None:
        """Release the lock and close the descriptor (idempotent)."""
        self._held = False
        self._close()

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self._close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __repr__(self) -> str:
        kind = "shared" if self.shared else "exclusive"
        return f"FileLock({self.path!r}, {kind}, held={self._held})"
