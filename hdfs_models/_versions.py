"""TF Serving version layout: list versions, resolve ``latest`` to a pinned version.

``BASE/<integer>/`` holds one version; other names (``_tmp-…``, ``_logs``)
are ignored (RELIABILITY H5). A version is complete when it holds
``MANIFEST.json``, a ``_SUCCESS`` marker, or a SavedModel passing
:func:`~hdfs_models._savedmodel.check_complete`; ``latest`` skips incomplete
versions (H2): a manifest-less version is incomplete while any file in it
still has the ``._COPYING_`` name ``hdfs dfs -put`` writes under. A job
resolves once, on the driver, and ships the :class:`PinnedVersion`
(picklable, no filesystem inside) to its tasks (H1).
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hdfs_models._manifest import MANIFEST_NAME, FileEntry, Manifest, listing_digest
from hdfs_models._names import safe_join, validate_name, validate_url
from hdfs_models._savedmodel import check_complete, is_saved_model_listing
from hdfs_models.errors import (
    IncompleteVersionError,
    InvalidModelError,
    ModelNotFoundError,
    UnsafeNameError,
)
from hdfs_models.store import Filesystem, join_url, open_store, translate_errors
from hdfs_models.store._access import check_readable

__all__ = [
    "ARCHIVES_DIR",
    "authorize",
    "version_files",
    "SUCCESS_MARKER",
    "TEMP_PREFIX",
    "PinnedVersion",
    "base_name",
    "list_children",
    "list_tree",
    "list_versions",
    "modified_time",
    "resolve",
    "version_numbers",
]

logger = logging.getLogger(__name__)

#: publish uploads into ``BASE/_tmp-<uuid>/`` and renames it to the next version.
TEMP_PREFIX = "_tmp-"
#: distribute's packed versions, ``BASE/_archives/<v>-<digest16>.tar``, uploaded as ``.<uuid>.tmp`` there.
ARCHIVES_DIR = "_archives"

SUCCESS_MARKER = "_SUCCESS"
# `hdfs dfs -put` and `-cp` write each file as `<name>._COPYING_` and rename it when done.
COPYING_SUFFIX = "._COPYING_"
_VERSION_NAME = re.compile(r"0|[1-9][0-9]{0,17}")


@dataclass(frozen=True)
class PinnedVersion:
    """One resolved version: where it is and exactly what it holds.

    ``digest`` is the manifest digest, or for a manifest-less version the
    listing fingerprint (sha256 over sorted path, size, mtime). Holds no
    filesystem, so it pickles into Spark tasks.
    """

    base_url: str
    name: str
    version: int
    url: str
    digest: str
    files: tuple[FileEntry, ...]
    empty_dirs: tuple[str, ...] = ()
    manifest: Manifest | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        """Sum of file sizes."""
        return sum(f.size for f in self.files)

    @property
    def signatures(self) -> dict[str, Any]:
        """Serving signatures from the manifest (empty without one)."""
        return self.manifest.signatures if self.manifest is not None else {}


def parse_version(version: int | str) -> int | None:
    """``None`` for ``"latest"``, else a non-negative int; :class:`UnsafeNameError` otherwise. Pure."""
    if isinstance(version, bool):
        raise UnsafeNameError(f"invalid version {version!r}", reason="not an integer", what="version")
    if isinstance(version, int):
        if version < 0:
            raise UnsafeNameError(f"invalid version {version!r}: negative", reason="negative", what="version")
        return version
    validate_name(version, "version")
    if version == "latest":
        return None
    if not version.isascii() or not version.isdigit():
        raise UnsafeNameError(
            f"invalid version {version!r}: expected 'latest' or an integer", reason="not an integer", what="version"
        )
    return int(version)


def _child(parent: str, listed: str, url: str) -> str:
    """Relative path of a listed entry under ``parent``; :class:`UnsafeNameError` if outside (B6)."""
    rel = listed
    prefix = parent.rstrip("/") + "/"
    if listed.startswith(prefix):
        rel = listed[len(prefix) :]
    elif listed.startswith("/"):
        raise UnsafeNameError(
            f"{url}: listing returned {listed!r}, outside {parent}", url=url, reason="listed name outside parent"
        )
    rel = rel.rstrip("/")
    try:
        joined = safe_join(parent, rel)
    except UnsafeNameError as exc:
        raise UnsafeNameError(
            f"{url}: listing returned unsafe name {listed!r} ({exc.reason})", url=url, reason="unsafe child name"
        ) from exc
    if joined == posixpath.normpath(parent) or any(p in ("", ".", "..") for p in rel.split("/")):
        raise UnsafeNameError(f"{url}: listing returned unsafe name {listed!r}", url=url, reason="unsafe child name")
    return rel


def list_children(fs: Any, path: str, url: str) -> dict[str, dict[str, Any]]:
    """``{child name: info}`` of a directory; B1/B2 errors naming ``url``."""
    with translate_errors(url, "listing"):
        info = fs.info(path)
        if info.get("type") != "directory":
            raise InvalidModelError(f"{url}: is a file, not a directory", url=url, reason="not a directory")
        entries = fs.ls(path, detail=True)
    out: dict[str, dict[str, Any]] = {}
    for entry in entries:
        rel = _child(path, fs._strip_protocol(entry["name"]), url)
        if "/" in rel:
            raise UnsafeNameError(f"{url}: listing returned nested name {rel!r}", url=url, reason="unsafe child name")
        out[rel] = entry
    return out


def modified_time(info: Mapping[str, Any]) -> float | None:
    """Modification time in seconds from the keys different backends use."""
    for key, scale in (("mtime", 1.0), ("modification_time", 1e-3), ("modificationTime", 1e-3), ("created", 1.0)):
        value = info.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value) * scale
        timestamp = getattr(value, "timestamp", None)
        if callable(timestamp):
            return float(timestamp())
    return None


def list_tree(fs: Any, path: str, url: str) -> tuple[tuple[FileEntry, ...], tuple[str, ...]]:
    """Recursive listing: files (path, size, mtime) and empty dirs, relative to ``path`` (B6-checked)."""
    with translate_errors(url, "listing"):
        found = fs.find(path, withdirs=True, detail=True)
    files: list[FileEntry] = []
    dirs: set[str] = set()
    for name, info in found.items():
        stripped = fs._strip_protocol(name)
        if stripped.rstrip("/") == path.rstrip("/"):
            continue
        rel = _child(path, stripped, url)
        if info.get("type") == "directory":
            dirs.add(rel)
        else:
            files.append(FileEntry(rel, int(info.get("size") or 0), None, modified_time(info)))
    occupied = {posixpath.dirname(f.path) for f in files} | {posixpath.dirname(d) for d in dirs}
    occupied = {p for o in occupied for p in _ancestors(o)}
    empty = tuple(sorted(d for d in dirs if d not in occupied))
    return tuple(sorted(files, key=lambda f: f.path)), empty


def _ancestors(rel: str) -> list[str]:
    parts = rel.split("/") if rel else []
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def version_numbers(children: Mapping[str, Mapping[str, Any]]) -> list[int]:
    """Integer-named child directories, ascending; other names ignored (H5). Pure."""
    return sorted(
        int(name)
        for name, info in children.items()
        if _VERSION_NAME.fullmatch(name) and info.get("type") == "directory"
    )


def _incomplete_reason(fs: Any, vpath: str, vurl: str, names: Mapping[str, Any]) -> str | None:
    """``None`` if the version dir is complete, else why not (H2)."""
    if MANIFEST_NAME in names or SUCCESS_MARKER in names:
        return None
    if not is_saved_model_listing(names):
        return f"no {MANIFEST_NAME}, {SUCCESS_MARKER} or saved_model.pb"
    files, _ = list_tree(fs, vpath, vurl)
    copying = [f.path for f in files if f.path.endswith(COPYING_SUFFIX)]
    if copying:  # the SavedModel may look complete while an asset is still arriving
        return f"still being copied ({copying[0]} is being written)"
    try:
        check_complete({f.path: f.size for f in files}, vurl)
    except InvalidModelError as exc:
        return exc.message.removeprefix(f"{vurl}: ")
    return None


def list_versions(
    base: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    filesystem: Filesystem | None = None,
    complete_only: bool = True,
) -> list[int]:
    """Integer versions under ``base``, ascending; incomplete ones left out unless ``complete_only=False``.

    Raises :class:`ModelNotFoundError` if ``base`` does not exist (B1),
    :class:`InvalidModelError` if it is a file (B2), :class:`UnsafeNameError`
    for an unsafe URL (before any I/O, B5) or listed name (B6).
    """
    validate_url(base)
    fs, path = open_store(base, storage_options, filesystem)
    children = list_children(fs, path, base)
    versions = version_numbers(children)
    if not complete_only:
        return versions
    out = []
    for number in versions:
        vpath, vurl = f"{path.rstrip('/')}/{number}", join_url(base, str(number))
        reason = _incomplete_reason(fs, vpath, vurl, list_children(fs, vpath, vurl))
        if reason is None:
            out.append(number)
        else:
            logger.debug("skipping incomplete version %s: %s", vurl, reason)
    return out


@dataclass(frozen=True)
class _Where:
    """A version dir being pinned: its store path, URL, base URL, name and number."""

    path: str
    url: str
    base_url: str
    name: str
    version: int | None  # None: a dir not named by an integer (take the manifest's, else 0)


def _pin(fs: Any, where: _Where, names: Mapping[str, Any], options: dict[str, Any]) -> PinnedVersion:
    """Pin a version dir from its manifest, or its listing when it has none."""
    if MANIFEST_NAME in names:
        murl = join_url(where.url, MANIFEST_NAME)
        with translate_errors(murl, "reading manifest"):
            data = fs.cat_file(f"{where.path.rstrip('/')}/{MANIFEST_NAME}")
        manifest = Manifest.from_json(data, murl)
        number = manifest.version if where.version is None else where.version
        if manifest.version != number:
            logger.warning("%s names version %d; using the directory's %d", murl, manifest.version, number)
        return PinnedVersion(
            where.base_url,
            manifest.name,
            number,
            where.url,
            manifest.digest,
            manifest.files,
            manifest.empty_dirs,
            manifest,
            options,
        )
    number = where.version or 0
    reason = _incomplete_reason(fs, where.path, where.url, names)
    if reason is not None:
        raise IncompleteVersionError(
            f"{where.url}: version {number} is incomplete: {reason}",
            url=where.url,
            reason=reason,
            version=number,
        )
    files, empty = list_tree(fs, where.path, where.url)
    return PinnedVersion(
        where.base_url,
        where.name,
        number,
        where.url,
        listing_digest(files),
        files,
        empty,
        None,
        options,
    )


def base_name(url: str) -> str:
    """The model name a URL implies: its last path component (validated), else ``model``."""
    tail = posixpath.basename(url.split("://", 1)[-1].rstrip("/"))
    return validate_name(tail, "model name") if tail and "/" not in tail else "model"


def _resolve_version_dir(
    fs: Any, path: str, url: str, names: Mapping[str, Any], wanted: int | None, options: dict[str, Any]
) -> PinnedVersion:
    """``url`` is itself a version dir (holds saved_model.pb or a manifest)."""
    tail = posixpath.basename(path.rstrip("/"))
    numbered = bool(_VERSION_NAME.fullmatch(tail))
    base_url = url.rstrip("/").rsplit("/", 1)[0] if numbered else url
    number = int(tail) if numbered else None
    if wanted is not None and number is not None and wanted != number:
        raise _not_that_version(url, number, wanted)
    pinned = _pin(fs, _Where(path, url, base_url, base_name(base_url), number), names, options)
    if wanted is not None and pinned.version != wanted:
        raise _not_that_version(url, pinned.version, wanted)
    return pinned


def _not_that_version(url: str, number: int, wanted: int) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"{url}: is version {number} itself; version {wanted} was asked for", url=url, reason="version mismatch"
    )


def resolve(
    url: str,
    version: int | str = "latest",
    *,
    storage_options: Mapping[str, Any] | None = None,
    filesystem: Filesystem | None = None,
) -> PinnedVersion:
    """Pin ``version`` (``"latest"`` or an integer) of the model at ``url``.

    ``url`` is a base dir (``BASE/<n>/`` layout) or a version dir itself.
    ``latest`` is the highest complete version (H2). Inputs are validated
    before any I/O (B5). Raises :class:`ModelNotFoundError` (URL or version
    missing, B1), :class:`InvalidModelError` (a file, B2),
    :class:`IncompleteVersionError` (an incomplete version asked for
    explicitly), :class:`UnsafeNameError` (B5, B6).
    """
    validate_url(url)
    wanted = parse_version(version)
    options = dict(storage_options or {})
    fs, path = open_store(url, options, filesystem)
    names = list_children(fs, path, url)
    if is_saved_model_listing(names) or MANIFEST_NAME in names:
        return _resolve_version_dir(fs, path, url, names, wanted, options)
    versions = version_numbers(names)
    if wanted is not None and wanted not in versions:
        raise ModelNotFoundError(
            f"{url}: version {wanted} not found (versions: {versions or 'none'})",
            url=url,
            reason="version not found",
            version=wanted,
        )
    skipped = []
    for number in [wanted] if wanted is not None else reversed(versions):
        vpath, vurl = f"{path.rstrip('/')}/{number}", join_url(url, str(number))
        where = _Where(vpath, vurl, url, base_name(url), number)
        try:
            return _pin(fs, where, list_children(fs, vpath, vurl), options)
        except IncompleteVersionError as exc:
            if wanted is not None:
                raise
            logger.info("latest: skipping %s", exc.message)
            skipped.append(number)
    raise ModelNotFoundError(
        f"{url}: no complete version (no integer-named version dirs)"
        if not skipped
        else f"{url}: no complete version (incomplete: {sorted(skipped)})",
        url=url,
        reason="no complete version",
    )


def version_files(pinned: PinnedVersion) -> list[str]:
    """The files :func:`authorize` reads: the manifest (when there is one), then every file of the version."""
    return ([MANIFEST_NAME] if pinned.manifest is not None else []) + sorted(f.path for f in pinned.files)


def authorize(pinned: PinnedVersion, filesystem: Filesystem | None = None, cached: str | None = None) -> None:
    """May the caller read every file of ``pinned`` now? Raises the store's refusal, naming the file (K5, P10).

    The node cache asks before it serves a pinned hit (it is not an
    authority: docs/security.md). ``cached``: the caller's entry for
    ``pinned`` when it exists. A version deleted from the store since it was
    pinned (not found, as opposed to refused) then keeps serving the job that
    pinned it (H4): the entry is in this user's own root (K6), downloaded
    while the store allowed it; a new resolution still fails.
    """
    fs, root = open_store(pinned.url, pinned.storage_options, filesystem)
    gone = check_readable(fs, root, pinned.url, version_files(pinned), "checking access to the cached version")
    if gone is not None and cached is None:
        raise gone
    if gone is not None:
        logger.warning("%s is gone from the store; the pinned job keeps using the cached copy %s", pinned.url, cached)
