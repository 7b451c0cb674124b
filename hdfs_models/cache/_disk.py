"""The node cache's local disk: the root, download temp dirs, the commit, the sweep.

Every function here touches only the local cache root (never the store).
Names under the root come from :mod:`._layout`; eviction is :mod:`._evict`.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from collections.abc import Collection, Iterable

from hdfs_models._manifest import FileEntry
from hdfs_models._tree import compare_tree, fsync_dir, rename_noreplace, walk_tree
from hdfs_models.cache._layout import LOCK_SUFFIX, parse_temp_name, temp_name
from hdfs_models.cache._lock import FileLock
from hdfs_models.cache._plan import Plan
from hdfs_models.errors import CacheError, IntegrityError

__all__ = [
    "commit_entry",
    "entry_damage",
    "finalize_tree",
    "make_temp",
    "pid_alive",
    "remove_tree",
    "sweep_temps",
    "verify_tree",
]

logger = logging.getLogger(__name__)


def _cache_error(root: str, action: str, exc: OSError) -> CacheError:
    cause = exc.strerror or str(exc)
    return CacheError(
        f"cache root {root} is not usable: cannot {action} ({cause})",
        path=root,
        reason=errno.errorcode.get(exc.errno or 0, cause),
    )


def make_temp(root: str, key: str) -> str:
    """A fresh private download dir ``.tmp-<key>-<pid>-<rand>`` inside ``root``."""
    try:
        return tempfile.mkdtemp(prefix=temp_name(key, os.getpid(), ""), dir=root)
    except OSError as exc:
        raise _cache_error(root, "create a download directory", exc) from exc


def remove_tree(path: str) -> None:
    """Remove a directory tree, ignoring what is already gone."""
    shutil.rmtree(path, ignore_errors=True)


def verify_tree(tmp: str, plan: Plan, url: str, extra_ok: Collection[str] = ()) -> None:
    """Check the downloaded tree is exactly the plan: every file with its size,
    no leftovers (``.part`` files), every directory (B3, B10, F3)."""
    tree = walk_tree(tmp)
    problems = compare_tree(plan.files, tree.files, ignore=extra_ok).paths
    missing_dirs = [d for d in plan.dirs if d not in tree.dirs]
    if problems or missing_dirs:
        raise IntegrityError(
            f"{url}: downloaded tree differs from the plan at {(problems + missing_dirs)[:5]}",
            url=url,
            path=tmp,
            reason="incomplete tree",
        )


def finalize_tree(tmp: str, dir_mode: int, file_mode: int) -> None:
    """chmod every dir/file to the documented modes and fsync bottom-up (C8)."""
    for dirpath, _dirnames, filenames in os.walk(tmp, topdown=False):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), file_mode)
        os.chmod(dirpath, dir_mode)
        fsync_dir(dirpath)


def commit_entry(tmp: str, entry: str) -> bool:
    """Atomically rename ``tmp`` to ``entry``; ``False`` if another process won (C5).

    The loser's ``tmp`` is removed; whatever is at ``entry`` is left
    untouched, even an empty directory (:func:`~hdfs_models._tree.rename_noreplace`).
    """
    try:
        rename_noreplace(tmp, entry)
    except FileExistsError:
        logger.info("%s was committed by another process; using its copy", entry)
        remove_tree(tmp)
        return False
    except OSError as exc:
        raise _cache_error(os.path.dirname(entry), f"rename {tmp} to {entry}", exc) from exc
    fsync_dir(os.path.dirname(entry))
    return True


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (on this pid namespace)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def sweep_temps(root: str, *, locking: bool, held: Collection[str] = ()) -> list[str]:
    """Remove temp dirs whose owner is dead (C4); return the removed paths.

    A temp dir is removed only when its pid is not alive *and* (with locking)
    nobody holds its key's download lock — ``held`` names keys whose lock the
    caller already holds — so a live download in another pid namespace is
    never swept.
    """
    removed: list[str] = []
    try:
        names = os.listdir(root)
    except OSError:
        return removed
    for name in names:
        parsed = parse_temp_name(name)
        if parsed is None or parsed[1] == os.getpid() or pid_alive(parsed[1]):
            continue
        key = parsed[0]
        lock = FileLock(os.path.join(root, key + LOCK_SUFFIX), enabled=locking and key not in held)
        try:
            if not lock.try_acquire():
                continue
            path = os.path.join(root, name)
            remove_tree(path)
            removed.append(path)
            logger.info("swept %s (download of a dead process %d)", path, parsed[1])
        except CacheError:
            continue
        finally:
            lock.release()
    return removed


def entry_damage(entry: str, files: Iterable[FileEntry], empty_dirs: Iterable[str] = ()) -> str | None:
    """Why a committed entry no longer holds what it was committed with, or ``None`` (RELIABILITY H7).

    Checks that every file is there with its size and every empty dir exists
    (one ``stat`` each, no hashing), so a hit costs microseconds per file yet
    notices a tmp cleaner that removed or truncated something.
    """
    for item in files:
        path = os.path.join(entry, *item.path.split("/"))
        try:
            size = os.stat(path).st_size
        except OSError:
            return f"{item.path} is missing"
        if size != item.size:
            return f"{item.path} has {size} bytes, expected {item.size}"
    for rel in empty_dirs:
        if not os.path.isdir(os.path.join(entry, *rel.split("/"))):
            return f"directory {rel} is missing"
    return None
