"""Pure checks on archive members, run before any byte is written (S1-S10).

An archive is described member by member as :class:`Member` records (built
by :mod:`._read` from tar headers or zip
central-directory entries). A :class:`Planner` checks each record as it
arrives, so that caps on the member count and on the total bytes stop a
hostile archive early, and returns the normalised relative path to extract
it to. Nothing here touches the filesystem.

Policy: reject, never sanitise. A name that another tool would "fix"
(strip a leading ``/``, drop ``..``) is an error naming the archive and the
member, because an archive that needs fixing was not made by ``pack``.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hdfs_models.errors import UnsafeArchiveError

__all__ = [
    "DIR",
    "FILE",
    "Limits",
    "Member",
    "Planner",
    "check_spans",
    "kind_of_mode",
    "member_error",
    "normalise_name",
    "resolve_limits",
    "unsafe",
]

FILE = "file"
DIR = "dir"

_DRIVE = re.compile(r"^[A-Za-z]:")
_SPECIAL_BITS = 0o7000  # setuid, setgid, sticky

DEFAULT_MAX_BYTES = 64 * 1024**3
DEFAULT_MAX_MEMBERS = 100_000
# Deflate cannot exceed ~1032:1, so a legitimate archive stays under this;
# bombs get past it only with overlapping or nested entries (checked apart).
DEFAULT_MAX_RATIO = 1000.0


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Caps checked before extraction and enforced while streaming (S9).

    ``max_bytes``: total uncompressed bytes; ``max_members``: member count;
    ``max_ratio``: uncompressed / compressed size, per zip entry and for the
    whole archive.
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    max_members: int = DEFAULT_MAX_MEMBERS
    max_ratio: float = DEFAULT_MAX_RATIO


_ENV = {
    "max_bytes": ("HDFS_MODELS_UNPACK_MAX_BYTES", int),
    "max_members": ("HDFS_MODELS_UNPACK_MAX_MEMBERS", int),
    "max_ratio": ("HDFS_MODELS_UNPACK_MAX_RATIO", float),
}


def resolve_limits(
    *,
    max_bytes: int | None = None,
    max_members: int | None = None,
    max_ratio: float | None = None,
    env: Mapping[str, str] = os.environ,
) -> Limits:
    """Resolve the unpack caps: explicit argument > environment > default.

    Environment: ``HDFS_MODELS_UNPACK_MAX_BYTES``, ``…_MAX_MEMBERS``,
    ``…_MAX_RATIO``. A non-positive or unparsable value raises ValueError.
    """
    explicit = {"max_bytes": max_bytes, "max_members": max_members, "max_ratio": max_ratio}
    values: dict[str, float | int] = {}
    for key, value in explicit.items():
        var, kind = _ENV[key]
        if value is None and env.get(var):
            try:
                value = kind(env[var])
            except ValueError as exc:
                raise ValueError(f"{var}={env[var]!r} is not a number") from exc
        if value is not None:
            if value <= 0:
                raise ValueError(f"{key} must be positive, got {value!r}")
            values[key] = value
    return Limits(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Member:
    """One archive entry as its headers describe it.

    ``kind``: ``file``, ``dir``, ``symlink``, ``hardlink``, ``device``,
    ``fifo`` or ``other``; ``mode``: permission bits including
    setuid/setgid/sticky; ``compressed``: the zip entry's compressed size.
    """

    name: str
    kind: str
    size: int = 0
    mode: int = 0o644
    compressed: int | None = None
    encrypted: bool = False


def unsafe(archive: str, member: str | None, reason: str, *, refusing: str = "to extract it") -> UnsafeArchiveError:
    """The error for an unsafe ``member`` of ``archive`` (``None``: the archive itself).

    ``refusing``: what is refused (``to serve it`` for a tree Spark unpacked).
    """
    where = f"member {member!r} of archive {archive}" if member is not None else f"archive {archive}"
    return UnsafeArchiveError(
        f"unsafe {where}: {reason}; refusing {refusing}",
        path=archive,
        reason=reason,
        member=member,
    )


def normalise_name(raw: str) -> str:
    """Return the posix relative path for a raw member name, ``""`` for the root.

    Raises ValueError (with the reason) for names that are absolute, use
    ``..``, backslashes, drive letters, NUL or control characters, or are
    not valid UTF-8 (:func:`hdfs_models._names.require_utf8`). A leading
    ``./`` and doubled or trailing slashes are harmless and accepted (``tar
    -C dir .`` writes them).
    """
    if not raw:
        raise ValueError("empty name")
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in raw):
        raise ValueError("control character or NUL in the name")
    if "\\" in raw:
        raise ValueError("backslash in the name")
    try:
        raw.encode("utf-8")  # tarfile decodes undecodable bytes to lone surrogates
    except UnicodeEncodeError:
        raise ValueError("name is not valid UTF-8 (hdfs-models refuses such names everywhere)") from None
    if _DRIVE.match(raw):
        raise ValueError("drive letter in the name")
    if raw.startswith("/"):
        raise ValueError("absolute name")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError("'..' in the name escapes the target")
    return "/".join(parts)


_MODE_KINDS = {
    stat.S_IFREG: FILE,
    stat.S_IFDIR: DIR,
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "device",
    stat.S_IFBLK: "device",
    stat.S_IFIFO: "fifo",
}


def kind_of_mode(mode: int) -> str:
    """The :class:`Member` kind of a Unix mode's file type bits (no type bits: ``file``). Pure."""
    fmt = stat.S_IFMT(mode)
    return FILE if fmt == 0 else _MODE_KINDS.get(fmt, "other")


def member_error(member: Member) -> str | None:
    """Why ``member``'s kind or mode is unsafe (links, devices, FIFOs, setuid ...), or None. Pure."""
    if member.kind in ("symlink", "hardlink"):
        return f"{member.kind} member (a SavedModel never needs links)"
    if member.kind in ("device", "fifo", "other"):
        return f"{member.kind} member (only regular files and directories are allowed)"
    if member.mode & _SPECIAL_BITS:
        return f"setuid/setgid/sticky mode {member.mode:o}"
    if member.encrypted:
        return "encrypted entry"
    if member.size < 0:
        return "negative size"
    return None


def _ratio_error(member: Member, limits: Limits) -> str | None:
    if member.compressed is None or member.kind != FILE or member.size == 0:
        return None
    if member.compressed <= 0 or member.size / member.compressed > limits.max_ratio:
        return f"compression ratio {member.size}/{member.compressed} exceeds {limits.max_ratio:g} (zip bomb?)"
    return None


@dataclass
class Planner:
    """Checks members one at a time; collects the extraction plan.

    ``add`` raises :class:`UnsafeArchiveError` at the first unsafe member;
    ``finish`` checks the whole-archive caps. State: the seen paths and the
    running count and byte total.
    """

    archive: str
    limits: Limits = field(default_factory=Limits)
    count: int = 0
    total: int = 0
    kinds: dict[str, str] = field(default_factory=dict)

    def add(self, member: Member) -> str:
        """Check ``member``; return its normalised relative path (``""``: the root)."""
        try:
            path = normalise_name(member.name)
        except ValueError as exc:
            raise unsafe(self.archive, member.name, str(exc)) from None
        reason = member_error(member) or _ratio_error(member, self.limits)
        if reason:
            raise unsafe(self.archive, member.name, reason)
        self.count += 1
        if self.count > self.limits.max_members:
            raise unsafe(self.archive, member.name, f"more than {self.limits.max_members} members")
        self.total += member.size
        if self.total > self.limits.max_bytes:
            raise unsafe(self.archive, member.name, f"more than {self.limits.max_bytes} uncompressed bytes")
        if path == "":
            if member.kind != DIR:
                raise unsafe(self.archive, member.name, "a file named like the root")
            return path
        self._claim(member, path)
        return path

    def _claim(self, member: Member, path: str) -> None:
        if path in self.kinds:
            raise unsafe(self.archive, member.name, f"duplicate member name (as {path!r})")
        parent = posixpath.dirname(path)
        while parent:
            if self.kinds.get(parent) == FILE:
                raise unsafe(self.archive, member.name, f"parent {parent!r} is a file member")
            self.kinds.setdefault(parent, DIR)
            parent = posixpath.dirname(parent)
        self.kinds[path] = member.kind

    def finish(self, archive_size: int) -> None:
        """Check the whole-archive ratio once every header was seen."""
        if self.total and self.total / max(archive_size, 1) > self.limits.max_ratio:
            raise unsafe(
                self.archive,
                None,
                f"{self.total} uncompressed bytes from {archive_size} bytes exceeds ratio "
                f"{self.limits.max_ratio:g} (bomb?)",
            )


def check_spans(archive: str, spans: Iterable[tuple[str, int, int]], archive_size: int) -> None:
    """Reject zip entries whose byte ranges overlap or run past the file (S9).

    ``spans``: (name, start, end) of each entry's local header and data.
    Overlapping entries are how the worst zip bombs reuse one compressed
    stream many times; a zip made by any normal tool never has them.
    """
    previous: tuple[str, int, int] | None = None
    for name, start, end in sorted(spans, key=lambda s: (s[1], s[2])):
        if start < 0 or end > archive_size:
            raise unsafe(archive, name, "entry data lies outside the file")
        if previous is not None and start < previous[2]:
            raise unsafe(archive, name, f"entry overlaps {previous[0]!r} (zip bomb?)")
        previous = (name, start, end)
