"""The one progress convention of :func:`~hdfs_models.publish`,
:func:`~hdfs_models.localize`, :func:`~hdfs_models.pack` and
:func:`~hdfs_models.unpack`: ``progress(done_bytes, total_bytes)``."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

__all__ = ["Progress", "ProgressCounter"]

#: ``progress(done_bytes, total_bytes)``, called as bytes move. ``total_bytes``
#: is fixed for one operation (the version's size, or the archive's
#: uncompressed size); ``done_bytes`` counts up to it, and goes back down by
#: what a failed attempt had moved when a file is fetched again. Calls may
#: come from several threads (a parallel download), never at once. Nothing
#: is called when nothing moves (a cache hit); an empty version reports
#: ``(0, 0)`` once.
Progress = Callable[[int, int], None]


class ProgressCounter:
    """Turns byte increments (from any thread) into ``progress(done, total)`` calls."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress = progress
        self.total = total
        self.done = 0
        self._lock = threading.Lock()

    def add(self, nbytes: int) -> None:
        """Count ``nbytes`` more (negative: take back a failed attempt's bytes) and report."""
        if self.progress is None:
            return
        with self._lock:
            self.done += nbytes
            self.progress(self.done, self.total)

    @contextlib.contextmanager
    def attempt(self) -> Iterator[Callable[[int], None]]:
        """One attempt at moving a file: yields ``add``; on failure its bytes are taken back."""
        moved = 0

        def add(nbytes: int) -> None:
            nonlocal moved
            moved += nbytes
            self.add(nbytes)

        try:
            yield add
        except BaseException:
            if moved:
                self.add(-moved)
            raise
