"""Reading tar and zip archives for :func:`~hdfs_models.unpack` (the I/O shell).

Two passes per archive. The first reads only headers (tar headers, the zip
central directory and local headers) into :class:`Member` records and runs
them through a :class:`Planner`, so that every unsafe member and every cap
is refused before a byte of data is written. The second pass re-checks each
member with a fresh planner (the file could have changed in between) and
streams its data, counting bytes against the declared size and the caps
(headers can lie) and hashing them for the manifest check.

Files are created with ``O_EXCL | O_NOFOLLOW`` inside a directory this
process just made, so nothing can redirect a write.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from hdfs_models._progress import Progress, ProgressCounter
from hdfs_models.archive._check import DIR, FILE, Limits, Member, Planner, check_spans, kind_of_mode, unsafe

__all__ = ["Extracted", "extract_into", "sniff_format"]

_CHUNK = 1 << 20
_LOCAL_HEADER = struct.Struct("<4s5H3I2H")  # zip local file header, 30 bytes


@dataclass
class Extracted:
    """What was written: relative file path → (size, sha256 hex); directories."""

    files: dict[str, tuple[int, str]] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)


def sniff_format(archive: str) -> str:
    """``"zip"``, ``"tar.gz"`` or ``"tar"`` from the leading bytes, never the name."""
    try:
        with open(archive, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        raise unsafe(archive, None, f"cannot read it: {exc.strerror or exc}") from exc
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "tar.gz"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    raise unsafe(archive, None, "not a tar, tar.gz or zip archive")


def extract_into(archive: str, kind: str, root: str, limits: Limits, progress: Progress | None = None) -> Extracted:
    """Check every member of ``archive``, then extract them under ``root``.

    ``progress(done_bytes, total_bytes)`` counts the bytes written against
    the uncompressed size the headers declare.
    """
    size = os.path.getsize(archive)
    members = _zip_members if kind == "zip" else _tar_members
    with _unreadable(archive):
        planner = Planner(archive, limits)
        for member, _ in members(archive, with_data=False):
            planner.add(member)
        planner.finish(size)
        counter = ProgressCounter(progress, planner.total)
        out = Extracted()
        check = Planner(archive, limits)
        for member, data in members(archive, with_data=True):
            rel = check.add(member)
            if member.kind == DIR:
                _mkdirs(root, rel, out)
            else:
                assert data is not None
                out.files[rel] = _write(archive, root, rel, member, data, out, counter.add)
        check.finish(size)
    return out


@contextlib.contextmanager
def _unreadable(archive: str) -> Iterator[None]:
    """Corrupt or truncated archive data → UnsafeArchiveError; real I/O errors pass."""
    try:
        yield
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise unsafe(archive, None, f"unreadable archive: {exc}") from exc
    except OSError as exc:
        if exc.errno is not None:  # disk full, permission: not the archive's fault
            raise
        raise unsafe(archive, None, f"unreadable archive: {exc}") from exc


def _mkdirs(root: str, rel: str, out: Extracted) -> None:
    parts = rel.split("/") if rel else []
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        if sub not in out.dirs:
            path = os.path.join(root, sub)
            if not os.path.isdir(path):
                os.mkdir(path, 0o755)
            out.dirs.add(sub)


def _write(
    archive: str,
    root: str,
    rel: str,
    member: Member,
    data: IO[bytes],
    out: Extracted,
    report: Callable[[int], None] | None = None,
) -> tuple[int, str]:
    _mkdirs(root, os.path.dirname(rel), out)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    mode = 0o755 if member.mode & 0o100 else 0o644
    fd = os.open(os.path.join(root, rel), flags, mode)
    sha, written = hashlib.sha256(), 0
    with os.fdopen(fd, "wb") as fh:
        while chunk := data.read(_CHUNK):
            written += len(chunk)
            if written > member.size:
                raise unsafe(archive, member.name, f"holds more data than its header's {member.size} bytes")
            fh.write(chunk)
            sha.update(chunk)
            if report is not None:
                report(len(chunk))
    if written != member.size:
        raise unsafe(archive, member.name, f"truncated: {written} of {member.size} bytes")
    os.chmod(os.path.join(root, rel), mode)  # not subject to the umask
    return written, sha.hexdigest()


# ---------------------------------------------------------------- tar

_TAR_KINDS = {
    tarfile.REGTYPE: FILE,
    tarfile.AREGTYPE: FILE,
    tarfile.DIRTYPE: DIR,
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
    tarfile.CHRTYPE: "device",
    tarfile.BLKTYPE: "device",
    tarfile.FIFOTYPE: "fifo",
}


def _tar_member(info: tarfile.TarInfo) -> Member:
    return Member(info.name, _TAR_KINDS.get(info.type, "other"), info.size, info.mode & 0o7777)


def _tar_members(archive: str, *, with_data: bool) -> Iterator[tuple[Member, IO[bytes] | None]]:
    # Stream mode: one forward pass, no seeking back into a compressed stream.
    with tarfile.open(archive, mode="r|*") as tar:
        while True:
            info = tar.next()
            if info is None:
                return
            member = _tar_member(info)
            data = tar.extractfile(info) if with_data and member.kind == FILE else None
            yield member, data  # the planner's member cap bounds tarfile's header list


# ---------------------------------------------------------------- zip


def _zip_kind(info: zipfile.ZipInfo) -> tuple[str, int]:
    mode = info.external_attr >> 16 if info.create_system == 3 else 0
    kind = kind_of_mode(mode)
    if kind == DIR or (kind == FILE and info.orig_filename.endswith("/")):
        return DIR, mode & 0o7777 or 0o755
    if kind == FILE:
        return FILE, mode & 0o7777 or 0o644
    return kind, mode & 0o7777


def _zip_member(info: zipfile.ZipInfo) -> Member:
    kind, mode = _zip_kind(info)
    # orig_filename is the raw name: ZipInfo.filename is already cut at NUL.
    return Member(
        info.orig_filename,
        kind,
        info.file_size,
        mode,
        compressed=info.compress_size,
        encrypted=bool(info.flag_bits & 0x1),
    )


def _zip_spans(archive: str, fh: IO[bytes], infos: list[zipfile.ZipInfo]) -> Iterator[tuple[str, int, int]]:
    for info in infos:
        fh.seek(info.header_offset)
        raw = fh.read(_LOCAL_HEADER.size)
        if len(raw) != _LOCAL_HEADER.size or raw[:4] != b"PK\x03\x04":
            raise unsafe(archive, info.orig_filename, "bad local header")
        fields = _LOCAL_HEADER.unpack(raw)
        start = info.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10]
        yield info.orig_filename, info.header_offset, start + info.compress_size


def _zip_members(archive: str, *, with_data: bool) -> Iterator[tuple[Member, IO[bytes] | None]]:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if not with_data:
            with open(archive, "rb") as fh:
                check_spans(archive, _zip_spans(archive, fh, infos), os.path.getsize(archive))
        for info in infos:
            member = _zip_member(info)
            if with_data and member.kind == FILE:
                with zf.open(info) as data:
                    yield member, data
            else:
                yield member, None
