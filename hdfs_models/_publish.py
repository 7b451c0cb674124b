"""Atomic publish of a local SavedModel as ``BASE/<next integer>/``.

Steps: check the local tree (completeness, a well-formed ``saved_model.pb``,
signatures when TensorFlow is importable) → upload every file into
``BASE/_tmp-<uuid>/`` hashing as it goes → write ``MANIFEST.json`` last →
rename to ``BASE/<n>/``. If another publisher took ``n`` the rename fails (or
the post-check sees a foreign manifest) and we retry with ``n + 1``; an
existing version is never overwritten. The temp dir is removed on failure.

The rename is atomic and refuses an existing target on HDFS (hdfs-native,
WebHDFS with ``renameoptions=NONE``) and on local disks
(:func:`~hdfs_models._tree.rename_noreplace`). Other fsspec stores get a check-then-move, which
is best effort under concurrency.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from hdfs_models._manifest import MANIFEST_NAME, FileEntry, Manifest, make_manifest
from hdfs_models._names import validate_name, validate_url
from hdfs_models._progress import Progress, ProgressCounter
from hdfs_models._retry import Deadline, RetryExhausted, RetryPolicy, call_with_retry, retry_transient
from hdfs_models._savedmodel import check_local_model
from hdfs_models._signatures import publish_signatures
from hdfs_models._tree import store_rename_noreplace
from hdfs_models._versions import TEMP_PREFIX, PinnedVersion, base_name, list_children, resolve, version_numbers
from hdfs_models.errors import (
    ModelNotFoundError,
    PublishError,
    StoreAuthError,
    StoreError,
    StorePermissionError,
)
from hdfs_models.store import (
    Filesystem,
    cap_replication,
    join_url,
    open_store,
    resolve_replication,
    translate_errors,
    write_options,
)

__all__ = ["publish"]

logger = logging.getLogger(__name__)

_CHUNK = 4 << 20
_MAX_ATTEMPTS = 100
# Per-file upload retries: HDFS writes can fail transiently (a DataNode
# pipeline breaking, "Failed to complete file in time" on a busy NameNode, a
# NameNode failover). The waits add up to 31.5 s (0.5, 1, 2, 4, then 8 s), so a
# 30 s failover is ridden out even when every attempt fails at once (P3).
_UPLOAD_POLICY = RetryPolicy(attempts=8, backoff=0.5, backoff_max=8.0)
_UPLOAD_DEADLINE_S = 600.0
_sleep = time.sleep


def _copy_file(
    fs: Any, src_path: str, dst_path: str, report: Callable[[int], None], opts: Mapping[str, Any] | None = None
) -> tuple[int, str]:
    """Stream one local file to the store; returns (bytes, sha256). ``report(chunk bytes)``.

    ``opts``: extra ``fs.open`` arguments (:func:`~hdfs_models.store.write_options`: the replication).
    """
    digest, size = hashlib.sha256(), 0
    with open(src_path, "rb") as src, fs.open(dst_path, "wb", **(opts or {})) as dst:
        for chunk in iter(lambda: src.read(_CHUNK), b""):
            dst.write(chunk)
            digest.update(chunk)
            size += len(chunk)
            report(len(chunk))
    return size, digest.hexdigest()


def _retryable(exc: BaseException) -> int:
    """Attempts allowed for an upload failure: transient store errors only."""
    if isinstance(exc, (StorePermissionError, StoreAuthError, ModelNotFoundError, PublishError)):
        return 0
    return _UPLOAD_POLICY.attempts if isinstance(exc, StoreError) else 0


def _upload_one(
    fs: Any, url: str, src_path: str, dst_path: str, counter: ProgressCounter, opts: Mapping[str, Any] | None = None
) -> tuple[int, str]:
    """:func:`_copy_file` with bounded retries (a write rewrites the file from scratch)."""

    deadline = Deadline(_UPLOAD_DEADLINE_S)  # time without progress (P4): a long healthy upload keeps its retries

    def attempt(_: int) -> tuple[int, str]:
        with translate_errors(url, f"uploading {posixpath.basename(dst_path)}"), counter.attempt() as report:

            def sent(nbytes: int) -> None:
                report(nbytes)
                deadline.progressed()

            return _copy_file(fs, src_path, dst_path, sent, opts)

    try:
        return call_with_retry(
            attempt,
            policy=_UPLOAD_POLICY,
            deadline=deadline,
            classify=_retryable,
            sleep=_sleep,
            what=f"upload of {dst_path}",
        )
    except RetryExhausted as exc:
        last = exc.last
        raise StoreError(
            f"{last} (gave up after {exc.attempts} attempts)",
            url=url,
            reason=getattr(last, "reason", None),
            attempts=exc.attempts,
        ) from last


def _upload(
    fs: Any,
    url: str,
    local_dir: str,
    tmp: str,
    sizes: Mapping[str, int],
    empty: tuple[str, ...],
    progress: Progress | None,
    opts: Mapping[str, Any] | None = None,
) -> tuple[FileEntry, ...]:
    """Copy files (hashing each) and empty dirs into ``tmp``; return the manifest entries."""
    total = sum(sizes.values())
    counter = ProgressCounter(progress, total)
    entries = []
    for parent in sorted({posixpath.dirname(f"{tmp}/{rel}") for rel in sizes} | {f"{tmp}/{rel}" for rel in empty}):
        with translate_errors(url, "creating directories"):
            fs.makedirs(parent, exist_ok=True)
    for rel in sorted(sizes):
        size, sha = _upload_one(fs, url, os.path.join(local_dir, *rel.split("/")), f"{tmp}/{rel}", counter, opts)
        if size != sizes[rel]:
            raise PublishError(f"{local_dir}/{rel}: changed while publishing", path=local_dir, reason="source changed")
        entries.append(FileEntry(rel, size, sha))
    if progress is not None and total == 0:
        progress(0, 0)
    return tuple(entries)


def _ours(fs: Any, dst: str, manifest_bytes: bytes) -> bool:
    """True when ``dst`` holds exactly the manifest we wrote (the rename really was ours)."""
    try:
        return bool(fs.cat_file(f"{dst}/{MANIFEST_NAME}") == manifest_bytes)
    except (FileNotFoundError, OSError):
        return False


def _commit(
    fs: Any, base_path: str, tmp: str, manifest: Manifest, url: str, opts: Mapping[str, Any] | None = None
) -> int:
    """Write the manifest and rename ``tmp`` to the next free version; returns it."""
    number = manifest.version
    for _ in range(_MAX_ATTEMPTS):
        data = manifest.with_version(number).to_json()

        def write(data: bytes = data) -> None:
            with translate_errors(url, "writing manifest"):
                fs.pipe_file(f"{tmp}/{MANIFEST_NAME}", data, **(opts or {}))

        retry_transient(write, what=f"writing the manifest of {url}")
        dst = f"{base_path}/{number}"
        try:
            store_rename_noreplace(fs, tmp, dst)
        except (OSError, RuntimeError) as exc:
            if not fs.exists(dst) or not fs.exists(tmp):
                with translate_errors(url, f"renaming into version {number}"):
                    raise
            logger.info("%s: version %d was taken by another publisher (%s); trying %d", url, number, exc, number + 1)
            number += 1
            continue
        if _ours(fs, dst, data):
            return number
        raise PublishError(
            f"{url}: rename into {dst} did not produce our version (a concurrent writer?)",
            url=url,
            reason="rename clash",
            version=number,
        )
    raise PublishError(f"{url}: no free version number after {_MAX_ATTEMPTS} tries", url=url, reason="too many clashes")


def _next_version(fs: Any, base_path: str, base: str) -> int:
    """One more than the highest integer name, complete or not; 1 for an empty base."""
    try:
        versions = version_numbers(list_children(fs, base_path, base))
    except ModelNotFoundError:
        versions = []
    return (versions[-1] + 1) if versions else 1


def publish(
    local_dir: str,
    base: str,
    *,
    name: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    filesystem: Filesystem | None = None,
    progress: Progress | None = None,
    signatures: bool = True,
    replication: int | None = None,
) -> PinnedVersion:
    """Publish ``local_dir`` as the next integer version under ``base``; returns it pinned.

    ``progress(done_bytes, total_bytes)`` is called as bytes upload
    (:data:`~hdfs_models._progress.Progress`).
    ``signatures=False`` skips reading them with TensorFlow. ``replication``:
    how many DataNodes hold each block of every file (HDFS stores only;
    explicit > ``HDFS_MODELS_REPLICATION`` > 10, MapReduce's job-jar
    replication, so a version read by many executors at once is not served
    by three DataNodes; :mod:`hdfs_models.store._replication`). Raises
    :class:`InvalidModelError` for an incomplete or corrupt local model
    (nothing is uploaded), :class:`PublishError` when no version could be
    committed, and the store errors of :func:`translate_errors`.
    """
    validate_url(base)
    model_name = validate_name(name, "model name") if name is not None else base_name(base)
    sizes, empty = check_local_model(local_dir)
    sigs = publish_signatures(local_dir) if signatures else {}
    copies = resolve_replication(replication)
    fs, base_path = open_store(base, storage_options, filesystem)
    opts = write_options(fs, cap_replication(copies, base, fs))
    base_path = base_path.rstrip("/") or "/"

    def make_base() -> None:
        with translate_errors(base, "creating base dir"):
            fs.makedirs(base_path, exist_ok=True)

    # P1/P3: a publish started while the NameNode fails over waits for it (metadata calls, 60 s)
    retry_transient(make_base, what=f"creating {base}")
    tmp = f"{base_path.rstrip('/')}/{TEMP_PREFIX}{uuid.uuid4().hex}"
    try:
        files = _upload(fs, join_url(base, tmp.rsplit("/", 1)[1]), local_dir, tmp, sizes, empty, progress, opts)
        following = retry_transient(lambda: _next_version(fs, base_path, base), what=f"listing {base}")
        manifest = make_manifest(model_name, following, files, empty, sigs)
        number = _commit(fs, base_path.rstrip("/"), tmp, manifest, base, opts)
    except BaseException:
        _remove_quietly(fs, tmp, base)
        raise
    logger.info(
        "published %s as %s (%d files, %d bytes)",
        local_dir,
        join_url(base, str(number)),
        len(files),
        manifest.total_bytes,
    )
    return resolve(join_url(base, str(number)), storage_options=storage_options, filesystem=filesystem)


def _remove_quietly(fs: Any, tmp: str, base: str) -> None:
    try:
        if fs.exists(tmp):
            fs.rm(tmp, recursive=True)
    except Exception as exc:  # the original failure matters more; say what is left behind
        logger.warning("%s: could not remove temp dir %s: %s", base, tmp, exc)
