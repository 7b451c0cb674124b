"""The node cache's naming and disk: entry names, temp dirs, the commit, the sweep, eviction.

Everything here acts on the local cache root only, never on the store.
Layout under the root (or its per-user subtree, :func:`~._options.user_root`)::

    <key>/                       a committed entry (a SavedModel directory)
    <key>.lock                   exclusive flock held while <key> is downloaded
    <key>.use                    shared flock held by every LocalModel of <key>;
                                 its mtime is the entry's last use (for LRU)
    .tmp-<key>-<pid>-<rand>/     a download in progress (swept when <pid> is dead)

- **Names** (pure): entry keys, temp dir names.
- **Writing an entry:** a private temp dir inside the root, the manifest
  written into it, every file verified against the plan, modes set, then the
  commit: a rename that never replaces (the loser of a race uses the winner),
  fsynced. A committed entry is checked for damage (a file missing or of the
  wrong size) before it is served.
- **The sweep** (RELIABILITY C4): temp dirs of dead processes whose key
  nobody is downloading.
- **Eviction** (C6, C9): least recently used first, only entries whose
  ``<key>.use`` can be locked exclusively without waiting (nobody claims
  them); an entry vanishes by one rename to a temp name, then is deleted.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Collection, Iterable, Sequence

from hdfs_models._manifest import MANIFEST_NAME, FileEntry, Plan
from hdfs_models._names import sanitize_name
from hdfs_models._savedmodel import SAVED_MODEL_PB, check_graph_file
from hdfs_models._tree import FileLock, compare_tree, fsync_dir, rename_noreplace, walk_tree
from hdfs_models.cache._options import CacheOptions, cache_root, user_root
from hdfs_models.errors import CacheError, IntegrityError

__all__ = [
    "EntryInfo",
    "LOCK_SUFFIX",
    "TEMP_PREFIX",
    "USE_SUFFIX",
    "commit_entry",
    "entry_damage",
    "entry_key",
    "evict",
    "evict_entries",
    "finalize_tree",
    "is_entry_name",
    "list_entries",
    "make_temp",
    "parse_temp_name",
    "pid_alive",
    "remove_entry",
    "remove_tree",
    "seal_tree",
    "select_evictions",
    "sweep_temps",
    "temp_name",
    "verify_tree",
    "write_manifest",
]

logger = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"


LOCK_SUFFIX = ".lock"


USE_SUFFIX = ".use"


def entry_key(name: str, version: int, digest: str) -> str:
    """``<sanitised name>-<version>-<digest[:16]>``: a new digest gives a new entry."""
    digest_part = re.sub(r"[^0-9a-fA-F]", "", digest)[:16].lower()
    if not digest_part:
        raise ValueError(f"digest {digest!r} of {name!r} v{version} has no hex characters")
    return f"{sanitize_name(name)}-{int(version)}-{digest_part}"


_ENTRY_NAME = re.compile(r"[A-Za-z0-9._]{1,64}-[0-9]+-[0-9a-f]{16}")


def is_entry_name(name: str) -> bool:
    """Whether ``name`` is shaped like an entry key (gc never touches anything else)."""
    return not name.startswith(".") and _ENTRY_NAME.fullmatch(name) is not None


def temp_name(key: str, pid: int, token: str) -> str:
    """The name of a download's temp dir inside the cache root."""
    return f"{TEMP_PREFIX}{key}-{pid}-{token}"


def parse_temp_name(name: str) -> tuple[str, int] | None:
    """``(key, pid)`` of a temp dir name, ``None`` if ``name`` is not one."""
    if not name.startswith(TEMP_PREFIX):
        return None
    parts = name[len(TEMP_PREFIX) :].rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[0]:
        return None
    return parts[0], int(parts[1])


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


def write_manifest(tmp: str, data: bytes, root: str) -> None:
    path = os.path.join(tmp, MANIFEST_NAME)
    try:
        with open(path, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise CacheError(
            f"cannot write to the cache root {root} ({path}): {exc.strerror or exc}", path=root, reason=str(exc)
        ) from exc


def seal_tree(tmp: str, plan: Plan, url: str, root: str, opts: CacheOptions) -> None:
    """Last checks before the commit: exact tree, sound graph; then modes and fsync (C8)."""
    verify_tree(tmp, plan, url, extra_ok=(MANIFEST_NAME,))
    # B4: a manifest catches a corrupt graph by digest; a listing-only version needs this.
    check_graph_file(tmp, f"{url}/{SAVED_MODEL_PB}")
    try:
        finalize_tree(tmp, opts.dir_mode, opts.file_mode)
    except OSError as exc:
        raise CacheError(f"cannot write to the cache root {root}: {exc}", path=root, reason=str(exc)) from exc


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
    room: int = 0,
) -> list[str]:
    """Keys to evict, least recently used first, until at most ``max_versions``
    entries and ``max_bytes`` bytes remain (``None``: no limit) and at least
    ``room`` bytes are freed (P6: a full disk).

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
        if not (over_count or over_bytes or sum(e.size for e in ordered) - total < room):
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


def evict_entries(root: str, max_versions: int | None, max_bytes: int | None, room: int = 0) -> list[str]:
    """Evict LRU entries until within limits and ``room`` bytes freed, skipping entries in use (C6).

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
        chosen = select_evictions(entries, max_versions, max_bytes, busy, room)
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
