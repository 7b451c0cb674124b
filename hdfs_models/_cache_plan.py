"""Pure planning for the node cache: entry names, download plans, checks, eviction.

Nothing here touches a file system; the shells in ``_download`` and
``_cache`` do the I/O. Cache layout under the root::

    <key>/                       a committed entry (a SavedModel directory)
    <key>.lock                   exclusive flock held while <key> is downloaded
    <key>.use                    shared flock held by every LocalModel of <key>;
                                 its mtime is the entry's last use (for LRU)
    .tmp-<key>-<pid>-<rand>/     a download in progress (swept when <pid> is dead)
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from typing import Collection, Iterable, Mapping, Sequence

from hdfs_models._manifest import MANIFEST_NAME, FileEntry
from hdfs_models._names import safe_join, sanitize_name
from hdfs_models.errors import IntegrityError, UnsafeNameError

__all__ = [
    "EntryInfo",
    "Plan",
    "TEMP_PREFIX",
    "changed_files",
    "entry_key",
    "extra_files",
    "is_entry_name",
    "parse_temp_name",
    "plan_download",
    "select_evictions",
    "temp_name",
    "verify_file",
]

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
    parts = name[len(TEMP_PREFIX):].rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[0]:
        return None
    return parts[0], int(parts[1])


def _check_relative(path: str, where: str) -> str:
    """Reject child names that would escape the entry (B6); return the normal form."""
    try:
        normal = safe_join("", path)
    except UnsafeNameError as exc:
        raise UnsafeNameError(f"unsafe file name {path!r} in {where}: {exc.reason}", url=where, reason="unsafe name") from exc
    if normal in ("", ".") or normal != path.rstrip("/"):
        raise UnsafeNameError(f"unsafe file name {path!r} in {where}", url=where, reason="unsafe name")
    return normal


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a download must produce: files (largest first; no mtime), every directory, total bytes."""

    files: tuple[FileEntry, ...]
    dirs: tuple[str, ...]
    total_bytes: int

    def sizes(self) -> dict[str, int]:
        """Relative path → size, the input of the SavedModel completeness check."""
        return {task.path: task.size for task in self.files}


def plan_download(
    files: Iterable[tuple[str, int, str | None]],
    empty_dirs: Iterable[str],
    where: str,
) -> Plan:
    """Plan a download from ``(path, size, sha256)`` triples and empty directories.

    Rejects unsafe or duplicate names (:class:`UnsafeNameError`); skips the
    manifest itself (the cache writes it from the pinned manifest). ``dirs``
    holds every directory the tree needs, parents first.
    """
    tasks: dict[str, FileEntry] = {}
    for path, size, sha256 in files:
        rel = _check_relative(path, where)
        if rel == MANIFEST_NAME:
            continue
        if rel in tasks:
            raise UnsafeNameError(f"duplicate file {rel!r} in {where}", url=where, reason="duplicate name")
        if size < 0:
            raise IntegrityError(f"negative size for {rel!r} in {where}", url=where, reason="bad size")
        tasks[rel] = FileEntry(rel, int(size), sha256)
    dirs: set[str] = set()
    for rel in [*tasks, *(_check_relative(d, where) for d in empty_dirs)]:
        parent = posixpath.dirname(rel) if rel in tasks else rel
        while parent:
            dirs.add(parent)
            parent = posixpath.dirname(parent)
    collisions = dirs & set(tasks)
    if collisions:
        raise UnsafeNameError(
            f"{sorted(collisions)[0]!r} in {where} is both a file and a directory", url=where, reason="name clash"
        )
    ordered = sorted(tasks.values(), key=lambda t: (-t.size, t.path))
    return Plan(tuple(ordered), tuple(sorted(dirs, key=lambda d: (d.count("/"), d))), sum(t.size for t in ordered))


def verify_file(task: FileEntry, size: int, sha256: str | None, *, url: str, path: str) -> None:
    """Raise :class:`IntegrityError` if a downloaded file's size or digest is wrong."""
    if size != task.size:
        kind = "short read" if size < task.size else "too many bytes"
        raise IntegrityError(
            f"{url}: {task.path} has {size} bytes, expected {task.size} ({kind})",
            url=url,
            path=path,
            reason=kind,
            file=task.path,
        )
    if task.sha256 is not None and sha256 != task.sha256.lower():
        raise IntegrityError(
            f"{url}: sha256 of {task.path} is {sha256}, the manifest says {task.sha256}",
            url=url,
            path=path,
            reason="digest mismatch",
            file=task.path,
        )


def changed_files(before: Mapping[str, tuple[int, float | None]], after: Mapping[str, tuple[int, float | None]]) -> list[str]:
    """Paths added, removed, resized or re-timed between two listings (sorted)."""
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def extra_files(expected: Iterable[str], listed: Iterable[str]) -> list[str]:
    """Listed files the manifest does not name (the manifest itself excepted)."""
    known = set(expected) | {MANIFEST_NAME}
    return sorted(p for p in listed if p not in known)


@dataclasses.dataclass(frozen=True)
class EntryInfo:
    """A committed cache entry: key, bytes on disk, last use (seconds since the epoch)."""

    key: str
    size: int
    last_used: float


def select_evictions(
    entries: Sequence[EntryInfo],
    keep: int | None,
    max_bytes: int | None,
    busy: Collection[str] = frozenset(),
) -> list[str]:
    """Keys to evict, least recently used first, until at most ``keep``
    entries and ``max_bytes`` bytes remain (``None``: no limit).

    ``busy`` entries (in use by some process) are never chosen, even if the
    limits cannot be met without them.
    """
    ordered = sorted(entries, key=lambda e: (e.last_used, e.key))  # oldest first
    evict: list[str] = []
    count = len(ordered)
    total = sum(e.size for e in ordered)
    for entry in ordered:
        over_count = keep is not None and count > keep
        over_bytes = max_bytes is not None and total > max_bytes
        if not (over_count or over_bytes):
            break
        if entry.key in busy:
            continue
        evict.append(entry.key)
        count -= 1
        total -= entry.size
    return evict
