"""Fill one cache entry: plan, check, download into a temp dir, verify, commit.

Called by :func:`~hdfs_models.cache.localize` while it holds the entry's download
lock (or without one when locking is off: the atomic rename keeps that safe).
On any failure the temp dir is removed and nothing is committed.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from hdfs_models._manifest import MANIFEST_NAME
from hdfs_models._progress import Progress, ProgressCounter
from hdfs_models._retry import Deadline, RetryPolicy
from hdfs_models._savedmodel import SAVED_MODEL_PB, check_complete, check_graph_file
from hdfs_models._versions import PinnedVersion, list_tree
from hdfs_models.cache._disk import commit_entry, finalize_tree, make_temp, remove_tree, verify_tree
from hdfs_models.cache._download import DownloadJob, download_tree
from hdfs_models.cache._options import CacheOptions
from hdfs_models.cache._plan import Plan, changed_files, extra_files, plan_download
from hdfs_models.errors import CacheError, ExtraFilesWarning, IntegrityError, SourceChangedError
from hdfs_models.store import Filesystem, open_store

__all__ = ["fill_entry"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _listing(fs: Any, src: str, url: str) -> dict[str, tuple[int, float | None]]:
    files, _empty = list_tree(fs, src, url)
    return {f.path: (f.size, f.mtime) for f in files}


def _list_extras(fs: Any, src: str, pinned: PinnedVersion) -> list[str]:
    """Files on the store that the manifest does not list (one recursive listing)."""
    return extra_files((f.path for f in pinned.files), _listing(fs, src, pinned.url))


def _report_extras(extras: list[str], pinned: PinnedVersion, strict: bool) -> None:
    """B8: unlisted files → a warning (they are not downloaded), or an error in strict mode."""
    if not extras:
        return
    message = f"{pinned.url}: {len(extras)} file(s) not listed in the manifest: {extras[:5]}"
    if strict:
        raise IntegrityError(message + " (strict mode)", url=pinned.url, reason="unlisted files", files=extras)
    logger.warning("%s; they are not downloaded", message)
    warnings.warn(message + "; they are not downloaded", ExtraFilesWarning, stacklevel=4)


def _in_background(fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
    """Start ``fn(*args)`` on its own thread; the caller collects ``.result()``."""
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hdfs-models-listing")
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)


def _check_unchanged(fs: Any, src: str, pinned: PinnedVersion, tmp: str) -> None:
    """F5: a manifest-less version must list the same after the download."""
    before = {f.path: (f.size, f.mtime) for f in pinned.files}
    after = _listing(fs, src, pinned.url)
    changed = changed_files(before, after)
    if changed:
        raise SourceChangedError(
            f"{pinned.url} changed during the download ({len(changed)} path(s), e.g. {changed[:3]}); "
            "nothing was cached, try again",
            url=pinned.url,
            path=tmp,
            reason="source changed",
            files=changed,
        )


def _write_manifest(tmp: str, data: bytes, root: str) -> None:
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


def fill_entry(
    pinned: PinnedVersion,
    root: str,
    key: str,
    opts: CacheOptions,
    *,
    filesystem: Filesystem | None = None,
    progress: Progress | None = None,
) -> tuple[int, bool]:
    """Download ``pinned`` into ``<root>/<key>``; return (bytes fetched, committed by us).

    Completeness (B3, B4, B10) and name safety (B6) are checked on the plan
    before any byte is downloaded; integrity per file during the download.
    """
    plan = plan_download(((f.path, f.size, f.sha256) for f in pinned.files), pinned.empty_dirs, pinned.url)
    check_complete(plan.sizes(), pinned.url)
    fs, src = open_store(pinned.url, pinned.storage_options, filesystem)
    has_manifest = pinned.manifest is not None
    # B8 needs one recursive listing: it runs beside the download, not before it.
    extras = _in_background(_list_extras, fs, src, pinned) if has_manifest else None
    tmp = make_temp(root, key)
    try:
        job = DownloadJob(
            fs=fs,
            src=src,
            url=pinned.url,
            dest=tmp,
            cache_root=root,
            policy=RetryPolicy(attempts=opts.attempts, backoff=opts.backoff, backoff_max=opts.backoff_max),
            deadline=Deadline(opts.deadline),
            manifest=has_manifest,
            file_mode=opts.file_mode,
            progress=ProgressCounter(progress, plan.total_bytes),
        )
        nbytes = download_tree(job, plan, opts.parallelism)
        if extras is not None:
            _report_extras(extras.result(), pinned, opts.strict)
        if pinned.manifest is not None:
            _write_manifest(tmp, pinned.manifest.to_json(), root)
        else:
            _check_unchanged(fs, src, pinned, tmp)
        _seal(tmp, plan, pinned.url, root, opts)
        won = commit_entry(tmp, os.path.join(root, key))
    except BaseException:
        remove_tree(tmp)
        raise
    return nbytes, won


def _seal(tmp: str, plan: Plan, url: str, root: str, opts: CacheOptions) -> None:
    """Last checks before the commit: exact tree, sound graph; then modes and fsync (C8)."""
    verify_tree(tmp, plan, url, extra_ok=(MANIFEST_NAME,))
    # B4: a manifest catches a corrupt graph by digest; a listing-only version needs this.
    check_graph_file(tmp, f"{url}/{SAVED_MODEL_PB}")
    try:
        finalize_tree(tmp, opts.dir_mode, opts.file_mode)
    except OSError as exc:
        raise CacheError(f"cannot write to the cache root {root}: {exc}", path=root, reason=str(exc)) from exc
