"""``pack``: a deterministic archive of one model version.

The version goes in with its ``MANIFEST.json`` at the archive root, in a
fixed order with fixed metadata, so a version always packs to the same
bytes (and Spark's ``addArchive`` / ``--archives`` can cache it by name).
Every file is checked against its manifest entry while it is packed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import logging
import os
import tarfile
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

import fsspec

from hdfs_models._manifest import MANIFEST_NAME, Manifest, build_manifest
from hdfs_models._progress import Progress, ProgressCounter
from hdfs_models._savedmodel import local_model_dir
from hdfs_models._versions import PinnedVersion, resolve
from hdfs_models.archive._check import DIR, FILE, normalise_name
from hdfs_models.errors import IntegrityError
from hdfs_models.store import Filesystem, open_store

__all__ = ["FIXED_MTIME", "FORMATS", "pack", "plan_members"]

log = logging.getLogger(__name__)

FORMATS = ("tar", "tar.gz", "zip")
FIXED_MTIME = 315532800  # 1980-01-01T00:00:00Z, the earliest date a zip can hold
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_FIXED_CREATED_AT = "1980-01-01T00:00:00+00:00"
_CHUNK = 1 << 20


class _Source:
    """Where pack reads from: a filesystem, the version dir on it, its manifest."""

    def __init__(self, fs: Any, root: str, manifest: Manifest, label: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.manifest = manifest
        self.label = label

    def open(self, rel: str) -> IO[bytes]:
        return self.fs.open(f"{self.root}/{rel}", "rb")


def plan_members(manifest: Manifest) -> list[tuple[str, str, int, str | None]]:
    """The archive members of a version: (name, kind, size, sha256), in pack order.

    ``MANIFEST.json`` first, then every directory (parents of files and the
    manifest's empty dirs) and file, sorted by name. Pure.
    """
    files = {e.path: e for e in manifest.files if e.path != MANIFEST_NAME}
    dirs: set[str] = set()
    for path in list(files) + list(manifest.empty_dirs):
        normalise_name(path)  # a manifest naming ../x must not be packed
        parent = path if path in manifest.empty_dirs else os.path.dirname(path)
        while parent:
            dirs.add(parent)
            parent = os.path.dirname(parent)
    members: list[tuple[str, str, int, str | None]] = [(MANIFEST_NAME, FILE, -1, None)]
    for name in sorted(dirs | set(files)):
        if name in files:
            members.append((name, FILE, files[name].size, files[name].sha256))
        else:
            members.append((name, DIR, 0, None))
    return members


def pack(
    url_or_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    format: str = "tar",
    *,
    version: int | str = "latest",
    storage_options: Mapping[str, Any] | None = None,
    filesystem: Filesystem | None = None,
    pinned: PinnedVersion | None = None,
    progress: Progress | None = None,
) -> str:
    """Pack one model version into ``out`` (a local path) and return ``out``.

    ``url_or_dir``: a local version directory, or any URL/path that
    :func:`~hdfs_models.resolve` accepts (a base dir resolves
    ``version``; ``pinned``, a ``PinnedVersion`` already resolved, skips
    that). The archive holds ``MANIFEST.json`` (the source's, or one
    built here with fixed dates when the source has none) and exactly the
    files it lists, each checked against its size and sha256 while packed
    (:class:`IntegrityError` on a mismatch). Members are sorted, dated
    1980-01-01, mode 0644/0755, owner 0:0 without names; ``tar.gz`` uses a
    gzip header with mtime 0 and no file name. ``out`` is written to a temp
    name beside it and renamed, so it never exists half-written.
    ``progress(done_bytes, total_bytes)`` counts the model bytes packed
    (:data:`~hdfs_models._progress.Progress`).
    """
    if format not in FORMATS:
        raise ValueError(f"unknown archive format {format!r}; use one of {', '.join(FORMATS)}")
    out = os.fspath(out)
    with _open_source(os.fspath(url_or_dir), version, storage_options, filesystem, pinned) as src:
        members = plan_members(src.manifest)
        tmp = os.path.join(os.path.dirname(os.path.abspath(out)), f".{os.path.basename(out)}.tmp-{uuid.uuid4().hex}")
        try:
            report = ProgressCounter(progress, src.manifest.total_bytes).add
            with open(tmp, "wb") as fh:
                if format == "zip":
                    _write_zip(src, members, fh, report)
                else:
                    _write_tar(src, members, fh, format == "tar.gz", report)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, out)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    log.info("packed %s (%d members) into %s", src.label, len(members), out)
    return out


@contextlib.contextmanager
def _open_source(
    url_or_dir: str,
    version: int | str,
    storage_options: Mapping[str, Any] | None,
    filesystem: Filesystem | None,
    pinned: PinnedVersion | None,
) -> Iterator[_Source]:
    local = local_model_dir(url_or_dir) if pinned is None else None
    if local is not None:
        yield _local_source(local)
        return
    if pinned is None:
        pinned = resolve(url_or_dir, version, storage_options=storage_options, filesystem=filesystem)
    fs, root = open_store(pinned.url, storage_options, filesystem)
    if pinned.manifest is not None:
        yield _Source(fs, root, pinned.manifest, pinned.url)
        return
    with tempfile.TemporaryDirectory(prefix="hdfs-models-pack-") as tmp:
        _download(fs, root, pinned, tmp)
        yield _local_source(tmp, name=pinned.name, version=pinned.version, label=pinned.url)


def _local_source(
    path: str, *, name: str | None = None, version: int | None = None, label: str | None = None
) -> _Source:
    fs = fsspec.filesystem("file")
    manifest_path = os.path.join(path, MANIFEST_NAME)
    if os.path.isfile(manifest_path):
        with open(manifest_path, "rb") as fh:
            manifest = Manifest.from_json(fh.read(), manifest_path)
        return _Source(fs, os.path.abspath(path), manifest, label or path)
    base = os.path.basename(os.path.abspath(path))
    if version is None:
        version = int(base) if base.isdigit() else 0
    if name is None:
        name = os.path.basename(os.path.dirname(os.path.abspath(path))) if base.isdigit() else base
    built = build_manifest(path, name, version)
    # No published manifest: fix what would vary between two packs of the same files.
    built = dataclasses.replace(
        built,
        created_at=_FIXED_CREATED_AT,
        files=tuple(dataclasses.replace(e, mtime=None) for e in built.files),
    )
    log.info("%s has no %s; packing one built from its files", label or path, MANIFEST_NAME)
    return _Source(fs, os.path.abspath(path), built, label or path)


def _download(fs: Any, root: str, pinned: PinnedVersion, tmp: str) -> None:
    for entry in pinned.files:
        local = os.path.join(tmp, normalise_name(entry.path))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        fs.get_file(f"{root.rstrip('/')}/{entry.path}", local)
        if os.path.getsize(local) != entry.size:
            raise IntegrityError(
                f"{pinned.url}/{entry.path}: read {os.path.getsize(local)} bytes, listed {entry.size}",
                url=pinned.url,
                reason="size changed while packing",
            )
    for d in pinned.empty_dirs:
        os.makedirs(os.path.join(tmp, normalise_name(d)), exist_ok=True)


class _Hashing:
    """A reader that hashes, counts and ``report``-s what passes through it."""

    def __init__(self, raw: IO[bytes], report: Callable[[int], None] | None = None) -> None:
        self.raw = raw
        self.report = report
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha.update(data)
        self.size += len(data)
        if self.report is not None and data:
            self.report(len(data))
        return data


def _check_packed(src: _Source, name: str, reader: _Hashing, size: int, sha: str | None) -> None:
    extra = reader.raw.read(1)
    if reader.size != size or extra or (sha and reader.sha.hexdigest() != sha):
        raise IntegrityError(
            f"{src.label}/{name} does not match its manifest entry (size {size}, sha256 {sha}); "
            "not packing a corrupt version",
            url=src.label,
            reason="manifest mismatch",
            member=name,
        )


def _write_tar(
    src: _Source,
    members: list[tuple[str, str, int, str | None]],
    fh: IO[bytes],
    gz: bool,
    report: Callable[[int], None],
) -> None:
    raw: IO[bytes] = gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) if gz else fh  # type: ignore[assignment]
    with contextlib.ExitStack() as stack:
        if gz:
            stack.enter_context(raw)
        tar = stack.enter_context(tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT))
        for name, kind, size, sha in members:
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = FIXED_MTIME, 0, 0, "", ""
            if kind == DIR:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif name == MANIFEST_NAME:
                data = src.manifest.to_json()
                info.mode, info.size = 0o644, len(data)
                tar.addfile(info, _Hashing(_BytesReader(data)))  # type: ignore[arg-type]
            else:
                info.mode, info.size = 0o644, size
                with src.open(name) as f:
                    reader = _Hashing(f, report)
                    tar.addfile(info, reader)
                    _check_packed(src, name, reader, size, sha)


def _write_zip(
    src: _Source, members: list[tuple[str, str, int, str | None]], fh: IO[bytes], report: Callable[[int], None]
) -> None:
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, kind, size, sha in members:
            info = zipfile.ZipInfo(name + ("/" if kind == DIR else ""), date_time=_FIXED_DATE)
            info.create_system = 3  # Unix, so external_attr carries the mode
            if kind == DIR:
                info.external_attr = (0o40755 << 16) | 0x10
                zf.writestr(info, b"")
                continue
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            if name == MANIFEST_NAME:
                zf.writestr(info, src.manifest.to_json())
                continue
            info.file_size = size
            with src.open(name) as f, zf.open(info, "w", force_zip64=size > 2**31) as dst:
                reader = _Hashing(f, report)
                while chunk := reader.read(_CHUNK):
                    dst.write(chunk)
                _check_packed(src, name, reader, size, sha)


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.pos + n
        chunk, self.pos = self.data[self.pos : end], min(end, len(self.data))
        return chunk
