"""``MANIFEST.json``: what a published version holds, and its digest.

Written last by :func:`hdfs_models.publish` into ``BASE/<v>/``; read by
``resolve`` and the node cache to verify every downloaded byte. The digest of
a version is the sha256 of the canonical manifest bytes (sorted keys, no
whitespace), so any change to a file's size or hash, or to the signatures,
gives a new digest. Versions written by other tools have no manifest; their
fingerprint is :func:`listing_digest` over (path, size, mtime).

The download plan of a version also lives here (:class:`Plan`,
:func:`plan_download`): the files and dirs a version must hold, from its
manifest (sizes and sha256) or a listing, every relative name checked to stay
inside the tree; and the pure checks on what arrived (:func:`verify_file`,
:func:`changed_files`, :func:`extra_files`).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hdfs_models._names import require_utf8, safe_join, validate_name
from hdfs_models._tree import sha256_file, walk_tree
from hdfs_models._version import __version__
from hdfs_models.errors import (
    IntegrityError,
    InvalidModelError,
    UnsafeNameError,
)

__all__ = [
    "FORMAT_VERSION",
    "FileEntry",
    "MANIFEST_NAME",
    "Manifest",
    "Plan",
    "build_manifest",
    "changed_files",
    "extra_files",
    "listing_digest",
    "make_manifest",
    "plan_download",
    "verify_file",
    "walk_local",
]

MANIFEST_NAME = "MANIFEST.json"
FORMAT_VERSION = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class FileEntry:
    """One file of a version: posix path relative to the version dir, size, sha256, mtime."""

    path: str
    size: int
    sha256: str | None = None
    mtime: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "size": self.size}
        if self.sha256 is not None:
            out["sha256"] = self.sha256
        if self.mtime is not None:
            out["mtime"] = self.mtime
        return out


@dataclass(frozen=True)
class Manifest:
    """The parsed ``MANIFEST.json`` of one version (see module docstring)."""

    format_version: int
    name: str
    version: int
    files: tuple[FileEntry, ...]
    empty_dirs: tuple[str, ...]
    total_bytes: int
    signatures: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    producer: str = ""

    def to_json(self) -> bytes:
        """Canonical bytes: sorted keys, compact separators, files sorted by path."""
        doc = {
            "format_version": self.format_version,
            "name": self.name,
            "version": self.version,
            "files": [f.to_dict() for f in sorted(self.files, key=lambda f: f.path)],
            "empty_dirs": sorted(self.empty_dirs),
            "total_bytes": self.total_bytes,
            "signatures": self.signatures,
            "created_at": self.created_at,
            "producer": self.producer,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @property
    def digest(self) -> str:
        """sha256 hex of :meth:`to_json`."""
        return hashlib.sha256(self.to_json()).hexdigest()

    def with_version(self, version: int) -> Manifest:
        """A copy naming another version number (publish retries after a clash)."""
        return Manifest(**{**self.__dict__, "version": version})

    @classmethod
    def from_json(cls, data: bytes, url: str) -> Manifest:
        """Parse and validate manifest bytes read from ``url``.

        Raises :class:`InvalidModelError` naming ``url`` for malformed JSON,
        missing or mistyped fields, an unknown format version, or a file path
        that is absolute or escapes the version dir.
        """
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            return _parse(doc, url)
        except UnsafeNameError as exc:
            raise InvalidModelError(f"{url}: invalid manifest: {exc}", url=url, reason="unsafe path") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidModelError(f"{url}: invalid manifest: {exc!r}", url=url, reason="invalid manifest") from exc


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    return value


def _relative(path: Any) -> str:
    if not isinstance(path, str) or not path:
        raise ValueError(f"file path must be a non-empty string, got {path!r}")
    joined = safe_join("/v", path)
    if joined == "/v":
        raise ValueError(f"file path {path!r} names the version dir itself")
    return joined[len("/v/") :]


def _entry(item: Any) -> FileEntry:
    if not isinstance(item, dict):
        raise ValueError(f"file entry must be an object, got {item!r}")
    sha = item.get("sha256")
    if sha is not None and (not isinstance(sha, str) or not _SHA256.fullmatch(sha)):
        raise ValueError(f"bad sha256 for {item.get('path')!r}: {sha!r}")
    mtime = item.get("mtime")
    return FileEntry(
        path=_relative(item["path"]),
        size=_int(item["size"], f"size of {item['path']!r}"),
        sha256=sha,
        mtime=float(mtime) if mtime is not None else None,
    )


def _parse(doc: dict[str, Any], url: str) -> Manifest:
    fmt = _int(doc["format_version"], "format_version")
    if fmt > FORMAT_VERSION:
        raise ValueError(f"format_version {fmt} is newer than this library understands ({FORMAT_VERSION})")
    files = tuple(_entry(item) for item in doc["files"])
    if len({f.path for f in files}) != len(files):
        raise ValueError("duplicate file paths")
    total = _int(doc["total_bytes"], "total_bytes")
    if total != sum(f.size for f in files):
        raise ValueError(f"total_bytes {total} != sum of file sizes {sum(f.size for f in files)}")
    signatures = doc.get("signatures") or {}
    if not isinstance(signatures, dict):
        raise ValueError("signatures must be an object")
    return Manifest(
        format_version=fmt,
        name=validate_name(str(doc["name"]), "model name"),
        version=_int(doc["version"], "version"),
        files=files,
        empty_dirs=tuple(_relative(d) for d in doc.get("empty_dirs") or ()),
        total_bytes=total,
        signatures=signatures,
        created_at=str(doc.get("created_at", "")),
        producer=str(doc.get("producer", "")),
    )


def listing_digest(files: Iterable[FileEntry]) -> str:
    """Fingerprint of a manifest-less version: sha256 over sorted (path, size, mtime). Pure."""
    rows = sorted((f.path, f.size, f.mtime) for f in files)
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode("utf-8")).hexdigest()


def walk_local(local_dir: str) -> tuple[dict[str, int], tuple[str, ...]]:
    """``({relative file path: size}, empty dirs)`` of a local model dir, excluding the manifest.

    Raises :class:`InvalidModelError` for a missing directory or any
    symlink or special file (a SavedModel never needs one, and a link could
    point anywhere), :class:`UnsafeNameError` for a name that is not valid
    UTF-8 (:func:`~hdfs_models._names.require_utf8`).
    """
    try:
        tree = walk_tree(local_dir)
    except OSError as exc:
        raise InvalidModelError(f"{local_dir}: not a directory", path=local_dir, reason="not a directory") from exc
    if tree.others:
        full = tree.local_path(tree.others[0])
        raise InvalidModelError(
            f"{full}: symbolic links and special files are not allowed in a model", path=full, reason="symlink"
        )
    for rel in (*tree.dirs, *tree.files):
        require_utf8(rel, f"file name in {local_dir}")
    files = {rel: size for rel, size in tree.files.items() if rel != MANIFEST_NAME}
    return files, tree.empty_dirs


def build_manifest(
    local_dir: str,
    name: str,
    version: int,
    signatures: dict[str, Any] | None = None,
) -> Manifest:
    """Hash every file under ``local_dir`` into a :class:`Manifest` (``MANIFEST.json`` excluded)."""
    validate_name(name, "model name")
    sizes, empty = walk_local(local_dir)
    files = tuple(
        FileEntry(rel, size, sha256_file(os.path.join(local_dir, *rel.split("/"))))
        for rel, size in sorted(sizes.items())
    )
    return make_manifest(name, version, files, empty, signatures)


def make_manifest(
    name: str,
    version: int,
    files: tuple[FileEntry, ...],
    empty_dirs: tuple[str, ...],
    signatures: dict[str, Any] | None = None,
) -> Manifest:
    """Assemble a :class:`Manifest` stamped with now (UTC) and this library's version."""
    return Manifest(
        format_version=FORMAT_VERSION,
        name=name,
        version=version,
        files=tuple(sorted(files, key=lambda f: f.path)),
        empty_dirs=tuple(sorted(empty_dirs)),
        total_bytes=sum(f.size for f in files),
        signatures=dict(signatures or {}),
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        producer=f"hdfs-models {__version__}",
    )


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
