"""The download plan of one cache entry, and the checks on what arrived. Pure.

Nothing here touches a file system; :mod:`._download` fetches the plan and
:mod:`._fill` runs the checks.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Iterable, Mapping

from hdfs_models._manifest import MANIFEST_NAME, FileEntry
from hdfs_models._names import safe_join
from hdfs_models.errors import IntegrityError, UnsafeNameError

__all__ = ["Plan", "changed_files", "extra_files", "plan_download", "verify_file"]


def _check_relative(path: str, where: str) -> str:
    """Reject child names that would escape the entry (B6); return the normal form."""
    try:
        normal = safe_join("", path)
    except UnsafeNameError as exc:
        raise UnsafeNameError(
            f"unsafe file name {path!r} in {where}: {exc.reason}", url=where, reason="unsafe name"
        ) from exc
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


def changed_files(
    before: Mapping[str, tuple[int, float | None]], after: Mapping[str, tuple[int, float | None]]
) -> list[str]:
    """Paths added, removed, resized or re-timed between two listings (sorted)."""
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def extra_files(expected: Iterable[str], listed: Iterable[str]) -> list[str]:
    """Listed files the manifest does not name (the manifest itself excepted)."""
    known = set(expected) | {MANIFEST_NAME}
    return sorted(p for p in listed if p not in known)
