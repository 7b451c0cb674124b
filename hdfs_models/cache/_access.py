"""Who may use the node cache: a store check before a pinned hit, and one private subtree per Unix user.

The node cache is not an authority (docs/security.md):

- :func:`authorize` asks the store, as the caller, for one piece of metadata
  of the version (its ``MANIFEST.json``, or the version dir without one)
  before :func:`hdfs_models.localize` serves a *pinned* version, which would
  otherwise cost no store I/O at all. A caller the store refuses gets the
  store's :class:`StorePermissionError` / :class:`StoreAuthError`, and nothing
  is written locally (RELIABILITY K5). ``trust_cache=True`` skips it (offline
  reruns). A version resolved by ``localize`` itself needs no extra call: the
  resolution already read the store as the caller.
- :func:`user_root` keeps each Unix user's entries apart. A root that only
  its owner can write (``~/.cache/hdfs-models``, a YARN container's
  ``LOCAL_DIRS``) is used as is. A root that other users can write or that
  another user owns (a node-wide ``/var/cache/hdfs-models`` with mode 1777)
  holds one subtree ``user-<uid>`` per user, mode 0700, verified to be the
  caller's own directory: no user can read, alter or plant another's entries
  (K6). Roots that hdfs-models creates are mode 0700.
"""

from __future__ import annotations

import logging
import os
import stat

from hdfs_models._manifest import MANIFEST_NAME
from hdfs_models._versions import PinnedVersion
from hdfs_models.errors import CacheError, ModelNotFoundError
from hdfs_models.store import Filesystem, join_url, open_store, translate_errors

__all__ = ["authorize", "ensure_user_root", "user_root"]

logger = logging.getLogger(__name__)

USER_PREFIX = "user-"


def authorize(pinned: PinnedVersion, filesystem: Filesystem | None = None, cached: str | None = None) -> None:
    """One metadata call to the store as the caller: may it read ``pinned``? Raises the store's error.

    ``cached``: the caller's cache entry for ``pinned`` when it exists. A
    version deleted from the store since it was pinned (not found, as
    opposed to refused) then keeps serving the job that pinned it from that
    entry (RELIABILITY H4): the entry lies in this user's own root (K6), so
    this user downloaded it while the store allowed it, and a new
    resolution of the deleted version still fails.
    """
    target = join_url(pinned.url, MANIFEST_NAME) if pinned.manifest is not None else pinned.url
    fs, path = open_store(target, pinned.storage_options, filesystem)
    try:
        with translate_errors(target, "checking access to the cached version"):
            fs.info(path)
    except ModelNotFoundError:
        if cached is None:
            raise
        logger.warning("%s is gone from the store; the pinned job keeps using the cached copy %s", target, cached)


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
