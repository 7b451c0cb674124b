""":func:`localize` a model version onto local disk once per node: the protocol, the fill, the counters.

Protocol (names under the root in :mod:`._layout`, locks in :mod:`._state`)::

    resolve the version (or take the caller's ``pinned=``)      one listing/manifest read
    pinned: open each file in the store, as the caller          (K5, P10; not with trust_cache)
    shared flock <key>.use                                       held by the LocalModel
    <key>/ exists?  → hit, done                                  no further store I/O (L4)
    <key>/ damaged (a file missing or of the wrong size)?  → download it again (H7)
    exclusive flock <key>.lock (wait while the holder progresses, C10)  one downloader per node (C1)
    <key>/ exists now?  → another process finished it, done
    sweep temp dirs of dead processes                            (C4)
    check completeness of the plan                               before any byte moves (B3, B10)
    download into .tmp-<key>-<pid>-<rand>/ inside the root       verified per file (F1-F4, B7)
    disk full?  → evict LRU entries nobody holds, download once more  (P6)
    manifest-less: list the source again, compare                (F5)
    fsync, chmod, rename tmp to <key> without replacing         atomic commit; loser uses the winner (C5)
    evict LRU entries nobody holds (max_versions 8 by default)   (C6, C9)

Correctness comes from the rename, not the locks: with ``locking=False``
processes may download the same version twice, but never expose a partial
tree (C2, C3); nothing is then evicted, swept or made room for, because
nothing tells which entries are in use. A root whose flock does not exclude
(NFS, Lustre) is refused at first use unless ``locking=False`` (P5).

Two lock files per entry: readers hold ``<key>.use`` while they use the model,
so downloads serialise on ``<key>.lock`` instead.

The node cache is not an authority (docs/security.md): before it serves a
*pinned* version, :func:`~hdfs_models._versions.authorize` opens each of
the version's files in the store as the caller (K5, P10); a refused caller
gets the store's error naming the file and nothing is written locally. ``trust_cache=True``
skips it (offline reruns). A version ``localize`` resolved itself needs no
extra call: the resolution read the store as the caller.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from hdfs_models._download import DownloadJob, download_tree
from hdfs_models._manifest import changed_files, extra_files, plan_download
from hdfs_models._progress import Progress, ProgressCounter
from hdfs_models._retry import Deadline, RetryPolicy, retry_transient
from hdfs_models._savedmodel import check_complete
from hdfs_models._tree import FileLock
from hdfs_models._versions import PinnedVersion, authorize, list_tree, resolve
from hdfs_models.cache._layout import (
    LOCK_SUFFIX,
    USE_SUFFIX,
    commit_entry,
    entry_damage,
    entry_key,
    evict_entries,
    make_temp,
    remove_entry,
    remove_tree,
    seal_tree,
    sweep_temps,
    write_manifest,
)
from hdfs_models.cache._options import (
    CacheOptions,
    cache_root,
    check_locking,
    ensure_user_root,
    merge_options,
    user_root,
)
from hdfs_models.cache._state import (
    Lease,
    LocalModel,
    claim,
    count,
    holds,
    make_room,
    no_room,
    sweep_condemned,
    touch_use,
    wait_for_download,
)
from hdfs_models.errors import (
    CacheError,
    ExtraFilesWarning,
    HdfsModelsError,
    IntegrityError,
    SourceChangedError,
)
from hdfs_models.store import Filesystem, open_store

__all__ = ["fill_entry", "hold", "localize"]

logger = logging.getLogger(__name__)


def localize(
    url: str,
    version: int | str = "latest",
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
    filesystem: Filesystem | None = None,
    pinned: PinnedVersion | None = None,
    progress: Progress | None = None,
    options: CacheOptions | None = None,
    **fields: Any,
) -> LocalModel:
    """Make one model version available on local disk, once per node; return it.

    ``url`` is a base dir (``BASE/<n>/`` layout) or a version dir; ``version``
    is ``"latest"`` or an integer. ``pinned`` (a :class:`~hdfs_models.PinnedVersion`
    from :func:`~hdfs_models.resolve`, e.g. resolved on the Spark driver)
    skips the resolution, so a cached version costs no store I/O at all.
    ``options``: a :class:`~hdfs_models.CacheOptions` (explicit as a whole);
    ``fields``: :class:`~hdfs_models.CacheOptions` fields, over ``options``
    when both are given, else over ``HDFS_MODELS_*`` (unknown names raise
    ``TypeError``); ``progress(done_bytes, total_bytes)``
    is called as bytes arrive (:data:`~hdfs_models._progress.Progress`).
    The cache root is ``cache_dir`` > ``options.cache_dir`` > ``HDFS_MODELS_CACHE`` >
    YARN ``LOCAL_DIRS`` (or ``LOCAL_USER_DIRS``, by ``HDFS_MODELS_CACHE_SCOPE``) >
    ``SPARK_LOCAL_DIRS`` > ``~/.cache/hdfs-models`` (:func:`~hdfs_models.cache._options.cache_root`).

    Errors carry ``url``, ``version``, ``path`` (local), ``elapsed`` and, for
    downloads, ``attempts``. Nothing partial is ever visible under the root.
    """
    start = time.monotonic()
    opts = merge_options(options, fields)
    configured = cache_root(cache_dir if cache_dir is not None else opts.cache_dir)
    try:
        root = user_root(configured)
        if pinned is None:
            pinned = retry_transient(
                lambda: resolve(url, version, storage_options=storage_options, filesystem=filesystem),
                what=f"resolving {url}",
                window=opts.store_window,
            )
        elif not opts.trust_cache:
            known = pinned
            check_complete({f.path: f.size for f in known.files}, known.url)  # B3, B10: before any store I/O
            cached = os.path.join(root, entry_key(known.name, known.version, known.digest))
            # K5: the cache serves no one the store would refuse; H4: a deleted version keeps serving;
            # P14: a NameNode's push-back or failover is retried, never a task failure at once
            retry_transient(
                lambda: authorize(known, filesystem, cached if os.path.isdir(cached) else None),
                what=f"checking access to {known.url}",
                window=opts.store_window,
            )
    except BaseException:
        count(errors=1)
        raise
    key = entry_key(pinned.name, pinned.version, pinned.digest)
    entry = os.path.join(root, key)
    try:
        return _localize_pinned(pinned, configured, key, opts, filesystem, progress, start)
    except BaseException as exc:
        count(errors=1)
        if isinstance(exc, HdfsModelsError):
            _annotate(exc, pinned.url, pinned.version, entry, start)
        raise


def hold(pinned: PinnedVersion, cache_dir: str | None = None, *, options: CacheOptions | None = None) -> str:
    """The local path of ``pinned``'s entry, localized once per process and claimed until :func:`release`.

    For callers that ask again and again in one long-lived process (a
    ``fetch`` :class:`~hdfs_models.ModelHandle` on an executor, once per
    task): while this process holds its claim on the entry (the one registry
    of entries in use, :mod:`._state`) and the entry is there, it is returned
    with no store I/O and no lock. Otherwise it is localized (a hit, or a
    download after :func:`release` let eviction take it) and the claim is
    kept: the :class:`LocalModel` is never released here.
    """
    opts = merge_options(options, {})
    root = user_root(cache_root(cache_dir if cache_dir is not None else opts.cache_dir))
    entry = os.path.join(root, entry_key(pinned.name, pinned.version, pinned.digest))
    if holds(entry) and os.path.isdir(entry):
        return entry
    return localize(pinned.url, pinned=pinned, cache_dir=cache_dir, options=opts).path


def _localize_pinned(
    pinned: PinnedVersion,
    configured: str,
    key: str,
    opts: CacheOptions,
    filesystem: Filesystem | None,
    progress: Progress | None,
    start: float,
) -> LocalModel:
    root = ensure_user_root(configured)
    if opts.locking:
        check_locking(root)  # P5: a root whose flock does not exclude is refused, naming the fix
    entry = os.path.join(root, key)
    try:
        lease = claim(entry + USE_SUFFIX, locking=opts.locking, timeout=opts.lock_timeout)
    except CacheError as exc:
        raise CacheError(f"cache root {root} is not usable: {exc}", path=root, reason=exc.reason) from exc
    try:
        if not os.path.isdir(entry) or entry_damage(entry, pinned.files, pinned.empty_dirs) is not None:
            downloaded = _download_once(pinned, root, key, opts, filesystem, progress, start)
        else:
            downloaded = None
            touch_use(entry + USE_SUFFIX)
            ms = (time.monotonic() - start) * 1e3
            logger.info("cache hit: %s v%s at %s (%.1f ms)", pinned.name, pinned.version, entry, ms)
    except BaseException:
        lease.release()
        raise
    if downloaded is None:
        count(hits=1)
    else:
        count(misses=1, nbytes=downloaded, seconds=time.monotonic() - start)
    bounded = opts.max_versions is not None or opts.max_bytes is not None
    if downloaded is not None and bounded and opts.locking:  # without locks nothing in use can be told apart (P5)
        evict_entries(root, opts.max_versions, opts.max_bytes)  # only a download adds an entry
    return _model(pinned, entry, lease)


def _download_once(
    pinned: PinnedVersion,
    root: str,
    key: str,
    opts: CacheOptions,
    filesystem: Filesystem | None,
    progress: Progress | None,
    start: float,
) -> int | None:
    """Under the entry's download lock, download it unless another process did; the bytes, or None."""
    entry = os.path.join(root, key)
    lock = FileLock(entry + LOCK_SUFFIX, enabled=opts.locking)
    wait_for_download(lock, root, key, opts.lock_timeout)  # C10: waits while the holder makes progress
    try:
        if os.path.isdir(entry):
            damage = entry_damage(entry, pinned.files, pinned.empty_dirs)
            if damage is None:
                ms = (time.monotonic() - start) * 1e3
                logger.info("cache hit after waiting: %s v%s at %s (%.1f ms)", pinned.name, pinned.version, entry, ms)
                return None
            # H7: removed or truncated since it was committed (a tmp cleaner?). Its holders'
            # files are damaged already; replace it for everyone.
            logger.warning("cache entry %s is damaged (%s); downloading it again", entry, damage)
            remove_entry(root, key)
        if opts.locking:  # without locks another node's live download could be swept (P5)
            sweep_temps(root, locking=True, held={key})
            sweep_condemned(root)
        try:
            nbytes, won = fill_entry(pinned, root, key, opts, filesystem=filesystem, progress=progress)
        except CacheError as exc:  # P6: a full disk evicts unused entries (LRU) and tries once more
            if exc.reason != "ENOSPC" or not opts.locking or not make_room(root, pinned, exc):
                raise
            try:
                nbytes, won = fill_entry(pinned, root, key, opts, filesystem=filesystem, progress=progress)
            except CacheError as again:
                raise no_room(root, pinned, again) if again.reason == "ENOSPC" else again from again
    finally:
        lock.release()
    seconds = time.monotonic() - start
    logger.info(
        "cache miss: %s v%s downloaded %d bytes in %.2f s (%.1f MB/s) to %s%s",
        pinned.name,
        pinned.version,
        nbytes,
        seconds,
        nbytes / 1e6 / max(seconds, 1e-9),
        entry,
        "" if won else " (another process committed first; using its copy)",
    )
    return nbytes


def _model(pinned: PinnedVersion, entry: str, lease: Lease) -> LocalModel:
    return LocalModel(entry, pinned.name, int(pinned.version), pinned.digest, pinned.url, lease)


def _annotate(exc: HdfsModelsError, url: str, version: int, path: str, start: float) -> None:
    """Add what L3 asks every error to carry, without overwriting what it has."""
    if exc.url is None:
        exc.url = url
    if exc.path is None:
        exc.path = path
    exc.details.setdefault("version", version)
    exc.details.setdefault("local_path", path)
    exc.details.setdefault("elapsed", time.monotonic() - start)
    exc.details.setdefault("attempts", exc.details.get("attempts", 1))


T = TypeVar("T")


def _listing(fs: Any, src: str, url: str) -> dict[str, tuple[int, float | None]]:
    files, _empty = list_tree(fs, src, url)
    return {f.path: (f.size, f.mtime) for f in files}


def _list_extras(fs: Any, src: str, pinned: PinnedVersion, window: float) -> list[str]:
    """Files on the store that the manifest does not list (one recursive listing, beside the download,
    so a failover or push-back is retried for ``window`` seconds: P3, P14)."""
    listing = retry_transient(lambda: _listing(fs, src, pinned.url), what=f"listing {pinned.url}", window=window)
    return extra_files((f.path for f in pinned.files), listing)


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
    extras = _in_background(_list_extras, fs, src, pinned, opts.store_window) if has_manifest else None
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
            store_window=opts.store_window,  # P3: an open meets a failover like any metadata call
        )
        nbytes = download_tree(job, plan, opts.parallelism)
        if extras is not None:
            _report_extras(extras.result(), pinned, opts.strict)
        if pinned.manifest is not None:
            write_manifest(tmp, pinned.manifest.to_json(), root)
        else:
            _check_unchanged(fs, src, pinned, tmp)
        seal_tree(tmp, plan, pinned.url, root, opts)
        won = commit_entry(tmp, os.path.join(root, key))
    except BaseException:
        remove_tree(tmp)
        raise
    return nbytes, won
