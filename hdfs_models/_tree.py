"""A local directory tree: walk it, hash it, compare it with what it should hold, commit it.

The one home of the local-disk operations that the node cache, archives,
publish, ``verify`` and distribution all need:

- :func:`walk_tree`: every file (relative posix path → size), every
  directory, the empty ones, and anything that is neither (links, fifos,
  devices), which is reported, never followed;
- :func:`sha256_file`: the sha256 of one file, read in chunks;
- :func:`compare_tree`: which expected files are missing, have the wrong
  size or sha256, and which files nobody expected (pure);
- :func:`rename_noreplace`: the atomic commit of a finished tree, which
  never replaces what is already at the target (not even an empty dir);
  and :func:`fsync_dir`, so that the rename survives a crash;
- :class:`FileLock`: an advisory ``fcntl.flock`` with a timeout (the node
  cache's locks). ``flock`` locks belong to an open file description: the
  kernel releases them when the last descriptor closes, including when the
  process dies (SIGKILL too), so a crashed holder never leaves a stale lock.
  Two descriptors opened separately conflict even inside one process, so two
  threads each holding their own :class:`FileLock` exclude each other.
  Descriptors are opened ``O_CLOEXEC``: an ``exec``-ed child does not inherit
  the lock. On file systems where ``flock`` silently does nothing (some NFS,
  Lustre setups) locking only saves duplicate work; callers stay correct
  without it (the commit is an atomic rename). ``enabled=False`` gives a lock
  that does nothing, for those setups and for tests of that case.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from hdfs_models.errors import CacheError, LockTimeoutError

__all__ = [
    "FileLock",
    "LocalTree",
    "TreeMismatch",
    "compare_tree",
    "fsync_dir",
    "rename_noreplace",
    "sha256_file",
    "store_rename_noreplace",
    "walk_tree",
]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


class Expected(Protocol):
    """What a tree should hold at one path (a ``FileEntry`` or a download plan's file)."""

    @property
    def path(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def sha256(self) -> str | None: ...


@dataclass(frozen=True)
class LocalTree:
    """One walk of a local directory (paths are posix and relative to ``root``).

    ``files``: regular file → size; ``dirs``: every directory below the
    root; ``empty_dirs``: those holding nothing; ``others``: entries that
    are neither a regular file nor a directory (symbolic links, fifos,
    devices), never followed.
    """

    root: str
    files: Mapping[str, int]
    dirs: tuple[str, ...]
    empty_dirs: tuple[str, ...]
    others: tuple[str, ...]

    def local_path(self, rel: str) -> str:
        """The local path of the relative posix path ``rel``."""
        return os.path.join(self.root, *rel.split("/"))

    def sha256(self, rel: str) -> str:
        """sha256 hex of the file ``rel``."""
        return sha256_file(self.local_path(rel))

    @property
    def total_bytes(self) -> int:
        """Sum of the file sizes."""
        return sum(self.files.values())


def walk_tree(root: str) -> LocalTree:
    """Walk ``root`` with ``lstat`` (no link is followed); see :class:`LocalTree`.

    Raises ``NotADirectoryError`` (or ``FileNotFoundError``) when ``root``
    is not a directory.
    """
    if not os.path.isdir(root):
        code = errno.ENOTDIR if os.path.lexists(root) else errno.ENOENT
        raise (NotADirectoryError if code == errno.ENOTDIR else FileNotFoundError)(code, os.strerror(code), root)
    files: dict[str, int] = {}
    dirs: list[str] = []
    empty: list[str] = []
    others: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        prefix = "" if rel_dir == "." else rel_dir + "/"
        if prefix and not dirnames and not filenames:
            empty.append(rel_dir)
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode):
                files[prefix + name] = st.st_size
            elif stat.S_ISDIR(st.st_mode):
                dirs.append(prefix + name)
            else:
                others.append(prefix + name)
    return LocalTree(
        root, dict(sorted(files.items())), tuple(sorted(dirs)), tuple(sorted(empty)), tuple(sorted(others))
    )


def sha256_file(path: str) -> str:
    """sha256 hex of a local file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class TreeMismatch:
    """How a tree differs from what it should hold (all sorted by path).

    ``missing``: expected, not found; ``wrong``: ``(path, what differs)``;
    ``extra``: found, not expected. False when the tree matches.
    """

    missing: tuple[str, ...] = ()
    wrong: tuple[tuple[str, str], ...] = ()
    extra: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.missing or self.wrong or self.extra)

    @property
    def paths(self) -> list[str]:
        """Every differing path, sorted."""
        return sorted([*self.missing, *(p for p, _ in self.wrong), *self.extra])


def compare_tree(
    expected: Iterable[Expected],
    sizes: Mapping[str, int],
    sha256: Callable[[str], str | None] | None = None,
    *,
    ignore: Collection[str] = (),
) -> TreeMismatch:
    """Compare the files found (``sizes``: path → size) with the ``expected`` ones.

    A file's sha256 is compared only when its size matches, the expected
    entry has one and ``sha256`` (path → hex, e.g. :meth:`LocalTree.sha256`
    or hashes taken while writing) is given; hex case is ignored. Paths in
    ``ignore`` (e.g. the manifest itself) are neither expected nor extra.
    Pure, apart from what ``sha256`` does.
    """
    missing: list[str] = []
    wrong: list[tuple[str, str]] = []
    listed: set[str] = set()
    for entry in sorted(expected, key=lambda e: e.path):
        if entry.path in ignore:
            continue
        listed.add(entry.path)
        if entry.path not in sizes:
            missing.append(entry.path)
        elif sizes[entry.path] != entry.size:
            wrong.append((entry.path, f"size {sizes[entry.path]} != {entry.size}"))
        elif entry.sha256 is not None and sha256 is not None:
            found = sha256(entry.path)
            if found is not None and found.lower() != entry.sha256.lower():
                wrong.append((entry.path, "sha256 mismatch"))
    extra = sorted(p for p in sizes if p not in listed and p not in ignore)
    return TreeMismatch(tuple(missing), tuple(wrong), tuple(extra))


_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def rename_noreplace(src: str, dst: str) -> None:
    """Rename ``src`` to ``dst``; ``FileExistsError`` if ``dst`` exists, even as an empty dir.

    Plain ``os.rename`` silently replaces an empty directory, so Linux's
    ``renameat2(RENAME_NOREPLACE)`` is used where the libc has it; elsewhere
    (or on a file system that does not support the flag) a check right
    before the rename narrows the window to microseconds.
    """
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is not None:
        if fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(err, os.strerror(err), dst)
        if err not in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), dst)
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
    os.rename(src, dst)


def fsync_dir(path: str) -> None:
    """fsync a directory so a rename or new entries in it survive a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def store_rename_noreplace(fs: Any, src: str, dst: str) -> None:
    """Rename ``src`` to ``dst`` on an fsspec store, failing (FileExistsError or other) when ``dst`` exists.

    Atomic and refusing an existing target on local disks (:func:`rename_noreplace`),
    HDFS through hdfs-native and WebHDFS (``renameoptions=NONE``); other stores
    get a check-then-move, best effort under concurrency. The one store rename
    of the package (publish, the archive cache).
    """
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(fs, LocalFileSystem):
        rename_noreplace(src, dst)  # FileExistsError on an existing version, even an empty one
        return
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("webhdfs", "swebhdfs"):
        # rename2 with options: refuses an existing target instead of moving into it.
        fs._call("RENAME", method="put", path=src, destination=dst, renameoptions="NONE")
        return
    if protocol in ("hdfs", "viewfs"):
        fs.mv(src, dst)  # hdfs-native: rename with overwrite=False
        return
    if fs.exists(dst):
        raise FileExistsError(dst)
    fs.mv(src, dst, recursive=True)


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
