"""Fetch a version's planned files from the store into a private local dir, verified.

The plan (what to fetch and the checks on it) is :class:`~hdfs_models._manifest.Plan`.
Each file is streamed into a fresh temp name (``<file>.part<attempt>``),
hashed while it is written, fsynced, checked against the plan's size and
sha256, and only then renamed to its final name inside the temp dir. Files
are fetched in parallel (a thread pool: reads release the GIL); the first
failure that survives its retries cancels the others. Local write failures
(disk full, read-only) are :class:`CacheError` and are never retried; store
failures are retried with backoff within the shared deadline; a size or
digest mismatch, or a file missing from the store, is retried once. Opening
a file is a NameNode call (its block locations), so a failover or push-back
there is retried for ``store_window`` seconds, as the node cache's other
metadata calls are (RELIABILITY P3, P14): a 30 s failover mid-download costs
no file its attempts.

The node cache (:mod:`hdfs_models.cache`) runs it while it holds an entry's
download lock and commits the result.
"""

from __future__ import annotations

import concurrent.futures
import errno
import hashlib
import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import IO, Any

from hdfs_models._manifest import FileEntry, Plan, verify_file
from hdfs_models._progress import ProgressCounter
from hdfs_models._retry import Deadline, RetryExhausted, RetryPolicy, call_with_retry, is_transient, retry_transient
from hdfs_models.errors import (
    CacheError,
    HdfsModelsError,
    IntegrityError,
    ModelNotFoundError,
    SourceChangedError,
    StoreAuthError,
    StoreError,
    StorePermissionError,
)
from hdfs_models.store import join_url, translate_errors

__all__ = ["CHUNK", "Cancelled", "DownloadJob", "download_tree"]

logger = logging.getLogger(__name__)

CHUNK = 4 * 1024 * 1024


_QUEUE_CHUNKS = 4  # at most 16 MiB in flight per file


class Cancelled(Exception):
    """Another file of the same download failed; this one stopped early."""


class DownloadJob:
    """Everything one tree download needs (passed to each worker thread).

    ``fs``/``src`` are the store and the version dir's path on it; ``url``
    names it in errors; ``dest`` is the private temp dir; ``cache_root`` is
    named by local write errors; ``manifest`` says whether digests come from a
    manifest (a missing file is then an integrity failure, not a changed source);
    ``progress`` counts the bytes fetched; ``store_window``: seconds an open
    retries a failover or push-back (:func:`_open_remote`; 0: not at all).
    """

    def __init__(
        self,
        *,
        fs: Any,
        src: str,
        url: str,
        dest: str,
        cache_root: str,
        policy: RetryPolicy,
        deadline: Deadline,
        manifest: bool,
        file_mode: int = 0o644,
        progress: ProgressCounter | None = None,
        sleep: Callable[[float], None] | None = None,
        store_window: float = 0.0,
    ) -> None:
        self.fs = fs
        self.src = src
        self.url = url
        self.dest = dest
        self.cache_root = cache_root
        self.policy = policy
        self.deadline = deadline
        self.manifest = manifest
        self.file_mode = file_mode
        self.progress = progress or ProgressCounter(None, 0)
        self.sleep = sleep
        self.store_window = store_window
        self.store_gone = threading.Event()  # a whole store window passed without an answer
        self.cancel = threading.Event()
        self.attempts = 0
        self._count_lock = threading.Lock()

    def local_error(self, exc: OSError, path: str) -> CacheError:
        """A local write failure, naming the cache root (F6, F7)."""
        cause = exc.strerror or str(exc)
        return CacheError(
            f"cannot write to the cache root {self.cache_root} ({path}): {cause}",
            url=self.url,
            path=self.cache_root,
            reason=errno.errorcode.get(exc.errno or 0, cause),
            file=path,
        )


def _classify(job: DownloadJob) -> Callable[[BaseException], int]:
    def classify(exc: BaseException) -> int:
        if isinstance(exc, (CacheError, Cancelled, StorePermissionError, StoreAuthError)):
            return 0
        if job.store_gone.is_set() and is_transient(exc):
            return 0  # the open already waited out the store window: attempts on top would multiply it
        if isinstance(exc, (IntegrityError, ModelNotFoundError)):
            return 2  # digest/size mismatch or a vanished file: one retry (B7, F4)
        if isinstance(exc, (StoreError, OSError)):
            return job.policy.attempts
        return 0

    return classify


def _open_part(path: str) -> IO[bytes]:
    """Open a new temp file for writing (a seam for fault-injection tests)."""
    return open(path, "xb")


_WRITEBACK_EVERY = 16 * 1024 * 1024


_SYNC_FILE_RANGE_WRITE = 2


_libc: Any = None


def _start_writeback(fd: int, offset: int, nbytes: int) -> None:
    """Start (not wait for) writeback of a written range, so the final fsync is short.

    Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)`` through ctypes (Python's
    ``os`` has no binding); a no-op where it is unavailable. Durability still
    comes from the fsync before the commit; this only spreads the disk writes
    over the download instead of paying for all of them at the end.
    """
    global _libc
    if _libc is None:
        try:
            import ctypes

            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.sync_file_range(fd, offset, nbytes, _SYNC_FILE_RANGE_WRITE)


class _Writer:
    """Hash and write chunks on a second thread while the reader fetches the next.

    Reading (the store client) and hashing/writing both release the GIL, so
    they overlap. The queue is bounded; after a write error the thread keeps
    draining it so the reader never blocks, and the error is raised on the
    reader's side at the next :meth:`put` or at :meth:`finish`.
    """

    def __init__(self, job: DownloadJob, sink: IO[bytes], part: str, digest: Any) -> None:
        self.job = job
        self.sink = sink
        self.part = part
        self.digest = digest
        self.error: BaseException | None = None
        self.written = 0
        self.synced = 0
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUE_CHUNKS)
        self.thread = threading.Thread(target=self._run, name="hdfs-models-write", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            chunk = self.queue.get()
            if chunk is None:
                return
            if self.error is not None:
                continue
            try:
                if self.digest is not None:
                    self.digest.update(chunk)
                self.sink.write(chunk)
                self.written += len(chunk)
                if self.written - self.synced >= _WRITEBACK_EVERY:
                    self.sink.flush()
                    _start_writeback(self.sink.fileno(), self.synced, self.written - self.synced)
                    self.synced = self.written
            except OSError as exc:
                self.error = self.job.local_error(exc, self.part)
            except BaseException as exc:  # pragma: no cover - defensive
                self.error = exc

    def put(self, chunk: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(chunk)

    def stop(self) -> None:
        """End the thread without raising (the reader is already failing)."""
        self.queue.put(None)
        self.thread.join()

    def finish(self) -> str | None:
        """Wait for the last chunk; raise a write error; return the sha256 (or None)."""
        self.stop()
        if self.error is not None:
            raise self.error
        return self.digest.hexdigest() if self.digest is not None else None


def _pump(job: DownloadJob, task: FileEntry, writer: _Writer, report: Callable[[int], None]) -> int:
    """Read the remote file chunk by chunk into ``writer`` (``report``-ing each); return the bytes read."""
    size = 0
    source = _open_remote(job, task)
    with translate_errors(job.url, f"reading {task.path}"):
        with source:
            while True:
                if job.cancel.is_set():
                    raise Cancelled(task.path)
                chunk = source.read(CHUNK)
                if not chunk:
                    break
                writer.put(chunk)
                size += len(chunk)
                report(len(chunk))
                job.deadline.progressed()  # P4: the deadline bounds time without progress
                if size > task.size:
                    break  # longer than listed: no need to read the rest
    return size


def _open_remote(job: DownloadJob, task: FileEntry) -> Any:
    """Open one remote file for reading, retrying a failover or push-back for ``job.store_window`` s.

    On HDFS the open is the NameNode call (``getBlockLocations`` for the whole
    file); the reads after it go to DataNodes only, retried by the per-file
    attempts. An open still failing when the window ends sets ``job.store_gone``.
    """

    def once() -> Any:
        with translate_errors(job.url, f"opening {task.path}"):
            return job.fs.open(join_url(job.src, task.path), "rb")

    kwargs: dict[str, Any] = {} if job.sleep is None else {"sleep": job.sleep}
    try:
        return retry_transient(once, what=f"opening {job.url}/{task.path}", window=job.store_window, **kwargs)
    except StoreError as exc:
        if job.store_window > 0 and is_transient(exc):
            job.store_gone.set()
        raise


def _read_remote(
    job: DownloadJob, task: FileEntry, sink: IO[bytes], part: str, report: Callable[[int], None]
) -> tuple[int, str | None]:
    """Stream one remote file into ``sink``; return (bytes, sha256 hex or None).

    The sha256 is computed only when the plan has one to compare with (a
    manifest); a listing-based version is verified by size.
    """
    writer = _Writer(job, sink, part, hashlib.sha256() if task.sha256 is not None else None)
    try:
        size = _pump(job, task, writer, report)
    except BaseException:
        writer.stop()
        raise
    return size, writer.finish()


def _fetch_once(job: DownloadJob, task: FileEntry, attempt: int) -> int:
    """One attempt at one file: stream, fsync, verify, rename into place."""
    with job._count_lock:
        job.attempts += 1
    final = os.path.join(job.dest, *task.path.split("/"))
    part = f"{final}.part{attempt}"
    try:
        sink = _open_part(part)
    except OSError as exc:
        raise job.local_error(exc, part) from exc
    with job.progress.attempt() as report:  # a failed attempt's bytes are taken back
        try:
            try:
                with sink:
                    try:
                        size, sha256 = _read_remote(job, task, sink, part, report)
                    except ModelNotFoundError as exc:
                        raise _vanished(job, task, part) from exc
                    sink.flush()
                    os.fdatasync(sink.fileno())
            except OSError as exc:  # the store's errors are translated: a bare one is local (a full disk at close)
                if isinstance(exc, HdfsModelsError):
                    raise
                raise job.local_error(exc, part) from exc
            verify_file(task, size, sha256, url=job.url, path=part)
            os.chmod(part, job.file_mode)
            os.replace(part, final)
        except BaseException:
            _remove_quietly(part)
            raise
    return size


def _vanished(job: DownloadJob, task: FileEntry, part: str) -> IntegrityError:
    """A file the plan lists is gone: a broken manifest, or (without one) a changed source (F5)."""
    if job.manifest:
        cls, what, reason = IntegrityError, "the manifest lists {} but the store has no such file", "missing file"
    else:
        cls, what, reason = SourceChangedError, "{} disappeared during the download", "source changed"
    return cls(f"{job.url}: {what.format(task.path)}", url=job.url, path=part, reason=reason, file=task.path)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fetch_with_retry(job: DownloadJob, task: FileEntry) -> int:
    try:
        kwargs: dict[str, Any] = {} if job.sleep is None else {"sleep": job.sleep}
        return call_with_retry(
            lambda attempt: _fetch_once(job, task, attempt),
            policy=job.policy,
            deadline=job.deadline,
            classify=_classify(job),
            what=f"download of {job.url}/{task.path}",
            **kwargs,
        )
    except RetryExhausted as exhausted:
        raise _give_up(job, task, exhausted) from exhausted.last
    except HdfsModelsError:
        job.cancel.set()
        raise


def _give_up(job: DownloadJob, task: FileEntry, exhausted: RetryExhausted) -> HdfsModelsError:
    """The error raised when a file still fails after its retries (F2, F3, F4, B7)."""
    job.cancel.set()
    last = exhausted.last
    why = "deadline reached" if exhausted.deadline_hit else "attempts exhausted"
    message = (
        f"{job.url}: {task.path} failed after {exhausted.attempts} attempt(s) in "
        f"{exhausted.elapsed:.1f}s ({why}): {last}"
    )
    cls: type[HdfsModelsError] = type(last) if isinstance(last, IntegrityError) else StoreError
    return cls(
        message,
        url=job.url,
        path=job.dest,
        reason=getattr(last, "reason", None) or type(last).__name__,
        file=task.path,
        attempts=exhausted.attempts,
        elapsed=exhausted.elapsed,
    )


def download_tree(job: DownloadJob, plan: Plan, parallelism: int) -> int:
    """Create ``plan.dirs`` under ``job.dest`` and fetch every file; return bytes.

    Raises the first failure (others are cancelled and awaited first, so no
    thread writes into ``job.dest`` after this returns or raises).
    """
    for rel in plan.dirs:
        path = os.path.join(job.dest, *rel.split("/"))
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise job.local_error(exc, path) from exc
    if not plan.files:
        return 0
    workers = max(1, min(parallelism, len(plan.files)))
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="hdfs-models-fetch") as pool:
        futures = [pool.submit(_fetch_with_retry, job, task) for task in plan.files]
        concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_EXCEPTION)
        if any(f.done() and f.exception() is not None for f in futures):
            job.cancel.set()
        concurrent.futures.wait(futures)
    errors: list[BaseException] = [e for e in (f.exception() for f in futures) if e is not None]
    real = [e for e in errors if not isinstance(e, Cancelled)]
    if real or errors:
        raise (real or errors)[0]
    return sum(f.result() for f in futures)
