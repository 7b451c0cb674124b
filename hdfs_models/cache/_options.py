"""Node-cache options and where the cache lives: the root, resolved explicit > environment > default,
and one private subtree per Unix user.

:func:`user_root` keeps each Unix user's entries apart. A root that only its
owner can write (``~/.cache/hdfs-models``, a YARN container's ``LOCAL_DIRS``)
is used as is. A root that other users can write or that another user owns
(a node-wide ``/var/cache/hdfs-models`` with mode 1777) holds one subtree
``user-<uid>`` per user, mode 0700, verified to be the caller's own
directory: no user can read, alter or plant another's entries (RELIABILITY
K6). Roots that hdfs-models creates are mode 0700.

Each knob is resolved by :func:`hdfs_models._runtime.setting`, the project's
one resolver. Nothing is read at import time: :func:`resolve_options` and
:func:`cache_root` take the environment as a mapping (``os.environ`` by
default), so tests pass their own.

A :class:`CacheOptions` object is explicit as a whole: passed to
:func:`~hdfs_models.localize`, :func:`~hdfs_models.distribute` (it travels
inside the :class:`~hdfs_models.ModelHandle` to the executors) or
``Scorer(..., cache=)``, every one of its fields wins over the executor's
``HDFS_MODELS_*`` variables. Only its ``cache_dir`` may stay ``None``, and
then each executor finds its own root (``HDFS_MODELS_CACHE``, YARN's
container dirs, ...), because those differ from node to node.

Environment variables (all optional):

=============================  ==============================================
``HDFS_MODELS_CACHE``          cache root
``HDFS_MODELS_CACHE_SCOPE``    on YARN: ``application`` (default) or ``user`` (see :func:`cache_root`)
``HDFS_MODELS_LOCK_TIMEOUT``   seconds to wait for a cache lock
``HDFS_MODELS_ATTEMPTS``       attempts per file on transient store errors
``HDFS_MODELS_DEADLINE``       seconds a download may go without progress before it stops retrying
``HDFS_MODELS_BACKOFF``        first retry delay in seconds (doubles each time)
``HDFS_MODELS_PARALLELISM``    files downloaded at once
``HDFS_MODELS_MAX_VERSIONS``   entries kept by eviction after a download (8; ``none``: all)
``HDFS_MODELS_MAX_BYTES``      bytes kept by eviction after a download
``HDFS_MODELS_STRICT``         ``1``/``true``: files not in the manifest are an error
``HDFS_MODELS_LOCKING``        ``0``/``false``: no flock (NFS): nothing evicted or swept (P5)
``HDFS_MODELS_FILE_MODE``      octal mode of cached files, e.g. ``644``
``HDFS_MODELS_TRUST_CACHE``    ``1``/``true``: serve pinned hits without asking the store
``HDFS_MODELS_STORE_WINDOW``   seconds metadata calls retry a NameNode's push-back or failover (60)
=============================  ==============================================
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

from hdfs_models._runtime import setting
from hdfs_models.errors import CacheError

__all__ = [
    "CACHE_SCOPES",
    "CacheOptions",
    "USER_PREFIX",
    "cache_root",
    "check_locking",
    "ensure_user_root",
    "resolve_options",
    "user_root",
]

#: ``HDFS_MODELS_CACHE_SCOPE`` values on YARN, and the container variable each one uses.
CACHE_SCOPES = {"application": "LOCAL_DIRS", "user": "LOCAL_USER_DIRS"}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclasses.dataclass(frozen=True, kw_only=True)
class CacheOptions:
    """How :func:`hdfs_models.localize` downloads, verifies and keeps entries.

    ``lock_timeout``: seconds to wait for another process's download of the
    same entry *without progress* (then :class:`~hdfs_models.LockTimeoutError`):
    while the holder's temp dir keeps growing, waiters keep waiting, so a
    healthy multi-GB download over a slow link never fails them (C10).
    ``attempts``/``deadline``/``backoff``/``backoff_max``: per-file retries of
    transient store errors, with exponential backoff, within ``deadline``
    seconds *without progress* (each arriving chunk starts the count again, so
    a healthy 40-minute download of a multi-GB model still retries an error at
    its end: RELIABILITY P4); a digest or size mismatch is retried once.
    ``parallelism``: files downloaded at once. ``max_versions``/``max_bytes``:
    after a download, evict least recently used entries not in use (``None``:
    keep everything). ``max_versions`` defaults to 8, so a long-running job
    that follows ``latest`` through many published versions keeps at most 8
    entries per root plus those in use, instead of every version it ever
    scored: a scoring worker holds at most two versions of a model (the one in
    use and the one replacing it, C9), and 8 leaves room for several models
    and a rollback on one node. The bound never removes an entry in use, so it
    cannot break a job; at worst a version not used lately is downloaded again.
    ``strict``: files the manifest does not list are an error instead of a
    warning. ``locking``: ``False`` runs without flock, for a root where it
    does not exclude (NFS, Lustre: without this a :class:`CacheError` at first
    use, P5): nothing is then ever evicted, discarded or swept from the root
    (correctness still comes from the atomic rename). ``file_mode``/``dir_mode``:
    permissions of committed entries. ``trust_cache``: serve a pinned version
    found in the cache without reading it from the store as the caller
    (offline reruns; docs/security.md). ``cache_dir``: the cache root; ``None``
    lets each process find its own (:func:`cache_root`)."""

    lock_timeout: float = 600.0
    attempts: int = 4
    deadline: float = 1800.0
    backoff: float = 0.5
    backoff_max: float = 30.0
    parallelism: int = 8
    max_versions: int | None = 8
    max_bytes: int | None = None
    strict: bool = False
    locking: bool = True
    file_mode: int = 0o644
    dir_mode: int = 0o755
    trust_cache: bool = False
    cache_dir: str | None = None
    store_window: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if self.parallelism < 1:
            raise ValueError(f"parallelism must be >= 1, got {self.parallelism}")
        for name in ("lock_timeout", "deadline", "backoff", "backoff_max", "store_window"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("max_versions", "max_bytes"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0 or None, got {value}")
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", os.fspath(self.cache_dir))


def _parse_bool(text: str) -> bool:
    if (lowered := text.strip().lower()) in _TRUE | _FALSE:
        return lowered in _TRUE
    raise ValueError(f"not a boolean: {text!r}")


def _parse_optional_int(text: str) -> int | None:
    return None if text.strip().lower() in ("", "none") else int(text)


_ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "lock_timeout": ("HDFS_MODELS_LOCK_TIMEOUT", float),
    "attempts": ("HDFS_MODELS_ATTEMPTS", int),
    "deadline": ("HDFS_MODELS_DEADLINE", float),
    "backoff": ("HDFS_MODELS_BACKOFF", float),
    "parallelism": ("HDFS_MODELS_PARALLELISM", int),
    "max_versions": ("HDFS_MODELS_MAX_VERSIONS", _parse_optional_int),
    "max_bytes": ("HDFS_MODELS_MAX_BYTES", _parse_optional_int),
    "strict": ("HDFS_MODELS_STRICT", _parse_bool),
    "locking": ("HDFS_MODELS_LOCKING", _parse_bool),
    "file_mode": ("HDFS_MODELS_FILE_MODE", lambda text: int(text, 8)),
    "trust_cache": ("HDFS_MODELS_TRUST_CACHE", _parse_bool),
    "store_window": ("HDFS_MODELS_STORE_WINDOW", float),
}


def resolve_options(
    explicit: Mapping[str, Any] | CacheOptions | None = None,
    env: Mapping[str, str] = os.environ,
) -> CacheOptions:
    """Resolve :class:`CacheOptions`: explicit keyword > ``HDFS_MODELS_*`` > default.

    ``explicit`` may already be a :class:`CacheOptions` (returned as is). An
    unknown option name raises ``TypeError``; an unparsable environment value
    raises ``ValueError`` naming the variable.
    """
    if isinstance(explicit, CacheOptions):
        return explicit
    explicit = _known(explicit or {})
    values = dict(explicit)
    unset = object()
    for name, (variable, parse) in _ENV.items():
        if name not in explicit:
            value = setting(None, variable, unset, parse=parse, env=env)
            if value is not unset:
                values[name] = value
    return CacheOptions(**values)


def _known(fields: Mapping[str, Any]) -> dict[str, Any]:
    known = {field.name for field in dataclasses.fields(CacheOptions)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise TypeError(f"unknown cache option(s) {unknown}; known: {sorted(known)}")
    return dict(fields)


def merge_options(options: CacheOptions | None, fields: Mapping[str, Any]) -> CacheOptions:
    """``options`` with ``fields`` over it; without ``options``, ``fields`` over the environment.

    A ``TypeError`` for an ``options`` that is not a :class:`CacheOptions` or
    an unknown field name.
    """
    if options is None:
        return resolve_options(fields)
    if not isinstance(options, CacheOptions):
        raise TypeError(f"options must be a CacheOptions, not {type(options).__name__}")
    return dataclasses.replace(options, **_known(fields)) if fields else options


def _first_dir(value: str | None) -> str | None:
    if not value:
        return None
    first = value.split(",")[0].strip()
    return first or None


def _yarn_dir(env: Mapping[str, str]) -> str | None:
    """The container dir the YARN cache scope names, or None outside YARN."""
    if not _first_dir(env.get("LOCAL_DIRS")):
        return None
    scope = env.get("HDFS_MODELS_CACHE_SCOPE", "").strip().lower() or "application"
    if scope not in CACHE_SCOPES:
        raise ValueError(
            f"HDFS_MODELS_CACHE_SCOPE={env['HDFS_MODELS_CACHE_SCOPE']!r}: use one of {', '.join(CACHE_SCOPES)}"
        )
    first = _first_dir(env.get(CACHE_SCOPES[scope]))
    if first is None:
        raise ValueError(
            f"HDFS_MODELS_CACHE_SCOPE={scope} needs {CACHE_SCOPES[scope]}, which this YARN container does not set"
        )
    return first


def cache_root(explicit: str | os.PathLike[str] | None = None, env: Mapping[str, str] = os.environ) -> str:
    """The node-cache root directory (absolute; not created here).

    Explicit argument > ``HDFS_MODELS_CACHE`` > in a YARN container (``LOCAL_DIRS``
    set), by ``HDFS_MODELS_CACHE_SCOPE``: ``application`` (default), the first
    ``LOCAL_DIRS`` entry, shared by the application's executors on the node and
    deleted by the NodeManager when the application ends; ``user``, the first
    ``LOCAL_USER_DIRS`` entry, shared by every application of the user on the
    node and kept until evicted > the first ``SPARK_LOCAL_DIRS`` entry > ``~/.cache/hdfs-models``
    (directory entries + ``/hdfs-models``). Inside YARN, ``SPARK_LOCAL_DIRS``
    is one executor's ``blockmgr-*`` dir, so it would give each executor its own cache.
    """
    chosen = setting(None if explicit is None else os.fspath(explicit), "HDFS_MODELS_CACHE", None, env=env)
    if chosen is not None:
        return os.path.abspath(chosen)
    yarn = _yarn_dir(env)
    if yarn:
        return os.path.abspath(os.path.join(yarn, "hdfs-models"))
    first = _first_dir(env.get("SPARK_LOCAL_DIRS"))
    if first:
        return os.path.abspath(os.path.join(first, "hdfs-models"))
    home = env.get("HOME") or os.path.expanduser("~")
    return os.path.abspath(os.path.join(home, ".cache", "hdfs-models"))


USER_PREFIX = "user-"


def _shared(st: os.stat_result, uid: int) -> bool:
    """Another user owns the root, or others may write in it."""
    return st.st_uid != uid or bool(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def user_root(root: str, uid: int | None = None) -> str:
    """Where this user's entries live under ``root`` (no I/O beyond one stat; nothing created)."""
    uid = os.geteuid() if uid is None else uid
    try:
        st = os.stat(root)
    except FileNotFoundError:
        return root  # it will be created, private, by this user
    except OSError as exc:
        raise CacheError(
            f"cache root {root} cannot be examined ({exc.strerror})", path=root, reason="stat failed"
        ) from exc
    return os.path.join(root, f"{USER_PREFIX}{uid}") if _shared(st, uid) else root


def ensure_user_root(root: str) -> str:
    """Create ``root`` (0700) or this user's subtree in it (0700) and return the directory to use.

    A subtree that is not a real directory owned by the caller with no
    group/other permissions is a :class:`CacheError` naming it: another
    user may have planted it.
    """
    if not os.path.lexists(root):
        _mkdir(os.path.dirname(root) or "/", 0o755, parents=True)
        _mkdir(root, 0o700)
    if not os.path.isdir(root):
        raise CacheError(f"cache root {root} is not a directory", path=root, reason="not a directory")
    path = user_root(root)
    if path == root:
        return root
    _mkdir(path, 0o700)
    st = os.lstat(path)
    uid = os.geteuid()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
        raise CacheError(
            f"cache subtree {path} is not a private directory of uid {uid} (owner uid {st.st_uid}, "
            f"mode {stat.filemode(st.st_mode)}); remove it or use another cache root",
            path=path,
            reason="not private",
        )
    return path


def _mkdir(path: str, mode: int, parents: bool = False) -> None:
    try:
        if parents:
            os.makedirs(path, mode=mode, exist_ok=True)
        else:
            os.mkdir(path, mode)
            os.chmod(path, mode)  # mkdir's mode is masked by the umask
    except FileExistsError:
        pass
    except OSError as exc:
        raise CacheError(
            f"cache root {path} is not usable: cannot create it ({exc.strerror})",
            path=path,
            reason=exc.strerror or "create failed",
        ) from exc


#: Cache roots (device, inode) whose ``flock`` this process has probed and found working (P5).
_LOCKS_WORK: set[tuple[int, int]] = set()


def check_locking(root: str) -> None:
    """P5: raise :class:`CacheError` when ``flock`` does not exclude on ``root``'s filesystem.

    The cache knows which entries are in use only through ``flock``. Where it
    does nothing or is per-process (Linux's NFS client emulates it with POSIX
    locks; Lustre without ``-o flock``), entries in use could be deleted.
    Probed once per root and process (two descriptors of one file must
    exclude each other). ``locking=False`` is the documented opt-in.
    """
    try:
        st = os.stat(root)
    except OSError:
        return  # ensure_user_root reports a missing root
    if (st.st_dev, st.st_ino) in _LOCKS_WORK:
        return
    defect = flock_defect(root)
    if defect is not None:
        fstype = filesystem_type(root)
        raise CacheError(
            f"cache root {root} (filesystem {fstype or 'unknown'}) cannot be locked: {defect}. The node cache "
            "needs flock to know which entries are in use: put the cache on a local disk (HDFS_MODELS_CACHE, "
            "or YARN's local dirs), or set HDFS_MODELS_LOCKING=0 (CacheOptions(locking=False)) to run without "
            "locks, in which nothing is ever evicted, discarded or swept from this root",
            path=root,
            reason="flock does not exclude",
            filesystem=fstype,
        )
    _LOCKS_WORK.add((st.st_dev, st.st_ino))


def flock_defect(directory: str) -> str | None:
    """How ``flock`` fails to exclude in ``directory`` (a sentence), or None when it works.

    None too when no probe file can be created there (a read-only root:
    the cache's writes report that themselves).
    """
    try:
        fd, probe = tempfile.mkstemp(prefix=".flock-probe-", dir=directory)
    except OSError:
        return None
    try:
        other = os.open(probe, os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None  # the second descriptor was refused: flock works
            return f"flock fails ({exc.strerror or exc})"
        finally:
            os.close(other)
        return (
            "flock does not exclude (a second descriptor took the lock a first one holds: flock is a no-op "
            "there, or per-process, as on NFS)"
        )
    finally:
        os.close(fd)
        os.unlink(probe)


def filesystem_type(path: str) -> str | None:
    """The type of the filesystem ``path`` is on (``ext4``, ``nfs4``, ``lustre`` ...), from /proc/self/mounts."""
    try:
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            table = [line.split()[1:3] for line in mounts if len(line.split()) > 2]
    except OSError:
        return None
    real = os.path.realpath(path).rstrip("/") + "/"
    inside = [(len(point), kind) for point, kind in table if real.startswith(point.rstrip("/") + "/")]
    return max(inside)[1] if inside else None
