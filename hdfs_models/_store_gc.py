"""Store hygiene: remove what killed publishers left under a base dir (RELIABILITY F13).

``publish`` uploads into ``BASE/_tmp-<uuid>/`` and renames it to the next
version; ``distribute(strategy="archive")`` uploads ``BASE/_archives/.<uuid>.tmp``
and renames it. A process killed in between leaves the temp behind. Nothing
sweeps them implicitly: a store is shared by many writers and a temp may
belong to a publisher that is still uploading, so :func:`sweep_store` runs
only when asked (``hdfs-models gc --store BASE --older-than 1h``) and removes a
temp only when *nothing* in it (the dir itself or any file or dir below) was
modified within ``older_than`` seconds. A temp whose times the store does not
report is kept.

Choose ``older_than`` longer than the longest single-file upload: HDFS
updates a file's modification time when it is created and when it is
closed, so a publisher writing one huge file shows no change meanwhile. The
CLI's default, one hour, covers a 100 GB file at 30 MB/s.

Ages are judged by the store's clock, not this host's (RELIABILITY P7): the
sweep first writes and removes an empty probe file (``BASE/.clock-<uuid>``)
and takes its modification time as the store's "now", so a client whose clock
runs hours ahead never mistakes a live upload for an old one. Only where the
probe cannot be written (a read-only caller) does it fall back to the local
clock, with a warning.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from hdfs_models._versions import ARCHIVES_DIR, TEMP_PREFIX, modified_time
from hdfs_models.errors import HdfsModelsError
from hdfs_models.store import Filesystem, join_url, open_store, translate_errors

__all__ = ["StaleTemp", "is_temp_name", "stale", "store_time", "sweep_store"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class StaleTemp:
    """One temp under the base: its URL, age in seconds (``None``: unknown), bytes, and what happened."""

    url: str
    age: float | None
    bytes: int
    removed: bool

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


def is_temp_name(name: str, in_archives: bool = False) -> bool:
    """Whether a child name is a publisher's temp (``_tmp-*``; ``.*.tmp`` inside ``_archives``). Pure."""
    if in_archives:
        return name.startswith(".") and name.endswith(".tmp")
    return name.startswith(TEMP_PREFIX)


def stale(age: float | None, older_than: float) -> bool:
    """A temp may go only when its newest modification is known and older than the bound. Pure."""
    return age is not None and age > older_than


def _newest_mtime(fs: Any, path: str, url: str) -> tuple[float | None, int]:
    """(newest modification time of ``path`` or anything below it, total bytes)."""
    with translate_errors(url, "listing a temp"):
        info = fs.info(path)
        found = fs.find(path, withdirs=True, detail=True) if info.get("type") == "directory" else {}
    times = [modified_time(info)] + [modified_time(child) for child in found.values()]
    size = int(info.get("size") or 0) if info.get("type") != "directory" else 0
    size += sum(int(c.get("size") or 0) for c in found.values() if c.get("type") != "directory")
    if any(t is None for t in times):
        return None, size
    return max(t for t in times if t is not None), size


def store_time(fs: Any, base_path: str, base: str) -> float | None:
    """The store's clock: the modification time of an empty probe written under ``base`` and
    removed at once; ``None`` when the store will not take it or reports no time."""
    probe = f"{base_path.rstrip('/')}/.clock-{uuid.uuid4().hex}"
    try:
        with translate_errors(base, "asking the store for its time"):
            fs.pipe_file(probe, b"")
            try:
                return modified_time(fs.info(probe))
            finally:
                fs.rm(probe)
    except HdfsModelsError as exc:
        logger.warning("%s: cannot read the store's clock (%s); judging ages by this host's clock", base, exc)
        return None


def _temps(fs: Any, base_path: str, base: str) -> list[str]:
    """Paths of the temps directly under ``base_path`` and under its ``_archives``."""
    with translate_errors(base, "listing the base dir"):
        children = fs.ls(base_path, detail=False)
        out = [c for c in children if is_temp_name(c.rstrip("/").rsplit("/", 1)[-1])]
        archives = f"{base_path.rstrip('/')}/{ARCHIVES_DIR}"
        if fs.isdir(archives):
            out += [
                c
                for c in fs.ls(archives, detail=False)
                if is_temp_name(c.rstrip("/").rsplit("/", 1)[-1], in_archives=True)
            ]
    return sorted(fs._strip_protocol(c).rstrip("/") for c in out)


def sweep_store(
    base: str,
    older_than: float,
    *,
    dry_run: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    filesystem: Filesystem | None = None,
    clock: Callable[[], float] = time.time,
) -> list[StaleTemp]:
    """Remove the temps under ``base`` untouched for more than ``older_than`` seconds.

    Returns every temp found, each marked ``removed`` (or, with ``dry_run``,
    whether it would be). Ages count from the store's clock (:func:`store_time`);
    ``clock`` (this host's) is used only when the store's cannot be read. Store errors are those of
    :func:`~hdfs_models.store.translate_errors` (a missing base is
    :class:`~hdfs_models.errors.ModelNotFoundError`). Raises ``ValueError``
    for a negative bound.
    """
    if older_than < 0:
        raise ValueError(f"older_than must be >= 0 seconds, got {older_than}")
    fs, base_path = open_store(base, storage_options, filesystem)
    temps = _temps(fs, base_path, base)
    if not temps:
        return []
    store_now = store_time(fs, base_path, base)
    now = clock() if store_now is None else store_now
    out = []
    for path in temps:
        url = join_url(base, path[len(base_path.rstrip("/")) + 1 :])
        newest, size = _newest_mtime(fs, path, url)
        age = None if newest is None else max(now - newest, 0.0)
        go = stale(age, older_than)
        if go and not dry_run:
            with translate_errors(url, "removing a stale temp"):
                fs.rm(path, recursive=True)
            logger.info("removed %s (untouched for %.0f s, %d bytes)", url, age, size)
        out.append(StaleTemp(url, age, size, go))
    return out
