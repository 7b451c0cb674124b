"""Ship one model version to Spark executors; find it there, verified.

:func:`distribute` runs on the driver: it resolves ``latest`` once, pins
the version, prepares what the strategy needs and returns a
:class:`ModelHandle`, a small frozen record (URL, pinned version, digest,
strategy, alias; never a filesystem object) that pickles into tasks.
``handle.local_path()`` on an executor returns a verified local SavedModel
directory:

``fetch``      :func:`hdfs_models.localize` into the node cache (one download per node).
``archive``    the version packed once into ``BASE/_archives/<v>-<digest16>.tar``
               (temp name + rename, reused when present; uploaded at HDFS replication 10,
               P13), ``sc.addArchive(uri#alias)``; Spark unpacks it into each executor's
               SparkFiles directory.
``files``      ``sc.addFile(version_dir, recursive=True)``; empty dirs recreated.
               A local directory goes file by file as ``<alias>.<i>``
               (Spark 3.5 refuses a local directory outside ``local[N]``)
               and executors rebuild the tree.
``submitted``  :meth:`ModelHandle.submitted`: the job was started with
               ``spark-submit --archives model.tar.gz#alias``.

Under Spark Connect only ``fetch`` ships: ``archive`` and ``files`` raise a
:class:`~hdfs_models.errors.DistributionError` naming it (see :func:`distribute`).

Spark ignores a path added twice, so archive names and aliases carry the
version and digest. Trees Spark unpacked are checked once per process: an
lstat audit (no link, FIFO, device, setuid bit or hard link: Spark's own
unpack keeps some of them, P9) and the ``MANIFEST.json`` inside
(sizes, sha256, no extra files), which must also match the pinned digest.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from hdfs_models._distribute._handle import ModelHandle, link_or_copy, reset_verified
from hdfs_models._names import sanitize_name
from hdfs_models._runtime import is_connect, require_spark, spark_context
from hdfs_models._tree import store_rename_noreplace, walk_tree
from hdfs_models._versions import ARCHIVES_DIR, PinnedVersion, resolve
from hdfs_models.archive import pack
from hdfs_models.cache import CacheOptions
from hdfs_models.errors import DistributionError
from hdfs_models.store import (
    cap_replication,
    join_url,
    open_store,
    resolve_replication,
    translate_errors,
    write_options,
)

__all__ = [
    "ARCHIVE_STATS",
    "STRATEGIES",
    "ModelHandle",
    "alias_for",
    "archive_name",
    "archive_url",
    "distribute",
    "ensure_archive",
    "reset_verified",
    "spark_uri",
]

log = logging.getLogger(__name__)

STRATEGIES = ("fetch", "archive", "files", "submitted")
#: Archives built / reused by :func:`distribute` in this process (observability, tests).
ARCHIVE_STATS = {"built": 0, "reused": 0}
_files_lock = threading.Lock()
_files_names: dict[tuple[str, str], str] = {}  # (application id, shipped dir name) -> its URL
_flat_added: dict[tuple[str, str], tuple[str, ...]] = {}  # (application id, alias) -> files added


def archive_name(version: int, digest: str) -> str:
    """``<version>-<digest16>.tar``: the stored archive of one version. Pure."""
    return f"{version}-{digest[:16]}.tar"


def archive_url(base_url: str, version_url: str, name: str, version: int, digest: str) -> str:
    """Where the archive of a version is stored. Pure.

    ``BASE/_archives/<v>-<digest16>.tar`` for the ``BASE/<v>/`` layout; for a
    version dir that is not numbered (``url`` is the SavedModel itself), next
    to it as ``PARENT/_archives/<name>-<v>-<digest16>.tar``, never inside it
    (that would change the version's listing).
    """
    if base_url.rstrip("/") != version_url.rstrip("/"):
        return join_url(base_url, ARCHIVES_DIR, archive_name(version, digest))
    parent = version_url.rstrip("/").rsplit("/", 1)[0]
    return join_url(parent, ARCHIVES_DIR, f"{name}-{archive_name(version, digest)}")


def alias_for(name: str, version: int, digest: str) -> str:
    """A Spark alias naming model, version and digest (safe as a directory name). Pure."""
    return f"{sanitize_name(name)}-v{version}-{digest[:16]}"


def distribute(
    spark: Any,
    url: str,
    version: int | str = "latest",
    strategy: str = "fetch",
    cache_dir: str | os.PathLike[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    options: CacheOptions | None = None,
    replication: int | None = None,
) -> ModelHandle:
    """Pin ``version`` of the model at ``url`` and ship it to ``spark``'s executors.

    ``spark``: a SparkSession or SparkContext (unused by ``fetch``).
    ``strategy``: ``fetch``, ``archive`` or ``files`` (module docstring);
    ``submitted`` handles come from :meth:`ModelHandle.submitted`.
    ``cache_dir``: the node cache root for ``fetch`` (default: see
    :func:`hdfs_models.localize`); ``options``: a
    :class:`~hdfs_models.CacheOptions` the handle carries to every executor
    (limits, trust, lock timeout, retries; ``cache_dir`` wins over
    ``options.cache_dir``). Without them each executor uses its own
    ``HDFS_MODELS_*`` variables. ``replication``: of the ``archive`` strategy's
    uploaded tar (HDFS stores only; see :func:`hdfs_models.publish`).
    Returns a picklable :class:`ModelHandle`.

    Under Spark Connect only ``fetch`` works: ``archive`` and ``files`` raise
    :class:`DistributionError` (``reason="spark connect"``) before anything is
    packed. Connect's ``addArtifacts`` uploads from the client's own disk,
    per session, so every session would first pull the whole version to the
    client and push it through gRPC; ``fetch`` reads the store on each node,
    once per node, shared across sessions and jobs.
    """
    if strategy not in STRATEGIES[:3]:
        hint = " (use ModelHandle.submitted(alias))" if strategy == "submitted" else ""
        raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES[:3])}{hint}")
    if strategy != "fetch" and is_connect(spark):
        raise DistributionError(
            f"strategy {strategy!r} cannot ship {url} under Spark Connect: it adds files through the "
            "SparkContext, and a Connect client has none; use strategy='fetch' (each executor reads "
            "the version from the store into its node cache)",
            url=url,
            reason="spark connect",
        )
    pinned = resolve(url, version, storage_options=storage_options)
    log.info("distributing %s version %d (%s) by %s", pinned.url, pinned.version, pinned.digest[:16], strategy)
    if strategy == "fetch":
        root = os.fspath(cache_dir) if cache_dir is not None else None
        if options is not None and not isinstance(options, CacheOptions):
            raise TypeError(f"options must be a CacheOptions, not {type(options).__name__}")
        return ModelHandle("fetch", url=pinned.url, pinned=pinned, cache_dir=root, options=options)
    require_spark("distribute")
    sc = spark_context(spark, "distribute", "use strategy='fetch'")
    if strategy == "files":
        if _is_local_dir(pinned.url):
            alias = alias_for(pinned.name, pinned.version, pinned.digest)
            shipped = _add_files_flat(sc, pinned.url, alias)
            return ModelHandle("files", url=pinned.url, alias=alias, pinned=pinned, flat_files=shipped)
        _claim_files_name(sc, pinned.url)
        _spark_call(sc.addFile, spark_uri(pinned.url), True, what=f"addFile({pinned.url})")
        return ModelHandle("files", url=pinned.url, pinned=pinned)
    stored = ensure_archive(pinned, storage_options, replication=replication)
    alias = alias_for(pinned.name, pinned.version, pinned.digest)
    _spark_call(sc.addArchive, f"{spark_uri(stored)}#{alias}", what=f"addArchive({stored})")
    return ModelHandle("archive", url=pinned.url, alias=alias, pinned=pinned)


def spark_uri(url: str) -> str:
    """A URI Spark's Hadoop client understands: plain local paths become ``file://``. Pure."""
    return url if "://" in url else "file://" + os.path.abspath(url)


def _claim_files_name(sc: Any, url: str) -> None:
    """Refuse a second store directory of the same name in one SparkContext.

    ``addFile(dir, recursive=True)`` puts a directory at ``./<its name>`` on
    every executor, so two models' ``.../1`` would meet at ``./1``: Spark
    then fails the tasks ("exists and does not match contents") or, for a
    path it saw before, ships nothing new.
    """
    name = url.rstrip("/").rsplit("/", 1)[-1]
    key = (str(getattr(sc, "applicationId", id(sc))), name)
    with _files_lock:
        first = _files_names.setdefault(key, url)
    if first.rstrip("/") != url.rstrip("/"):
        raise DistributionError(
            f"strategy 'files' cannot ship {url}: this Spark application already ships {first} as "
            f"./{name}, and Spark names a shipped directory by its last component; use "
            "strategy='archive' (named by version and digest) or 'fetch'",
            url=url,
            reason="files name taken",
        )


def _is_local_dir(url: str) -> bool:
    return ("://" not in url or url.startswith("file://")) and os.path.isdir(url.removeprefix("file://"))


def _add_files_flat(sc: Any, url: str, alias: str) -> tuple[str, ...]:
    """Add every file of the local version dir ``url`` as ``<alias>.<i>``; return the relative paths.

    Why file by file: Spark 3.5 refuses ``addFile`` of a local directory
    outside ``local[N]`` (``UNSUPPORTED_ADD_FILE.LOCAL_DIRECTORY``), and a
    directory is shipped under its last name (``./1``), which two models'
    versions share; ``<alias>.<i>`` carries the version and digest.

    Spark serves added files from the driver's disk for the session's life,
    so they are hard links (copies across filesystems) in a staging dir that
    lives as long as this process. A second call for the same version in the
    same application adds nothing (Spark refuses a file name registered with
    another path).
    """
    key = (str(getattr(sc, "applicationId", id(sc))), alias)
    with _files_lock:
        known = _flat_added.get(key)
    if known is not None:
        return known
    root = url.removeprefix("file://")
    rels = tuple(sorted(walk_tree(root).files))  # relative posix paths, no link followed
    staging = tempfile.mkdtemp(prefix=f"hdfs-models-files-{alias}-")
    for i, rel in enumerate(rels):
        staged = os.path.join(staging, f"{alias}.{i}")
        link_or_copy(os.path.join(root, rel), staged)
        _spark_call(sc.addFile, spark_uri(staged), what=f"addFile({url}/{rel})")
    with _files_lock:
        _flat_added[key] = rels
    return rels


def _spark_call(method: Any, *args: Any, what: str) -> None:
    try:
        method(*args)
    except Exception as exc:  # py4j wraps the JVM's exception; translate it once, here
        raise DistributionError(f"Spark refused {what}: {exc}", url=what, reason="spark") from exc


def ensure_archive(
    pinned: PinnedVersion, storage_options: Mapping[str, Any] | None = None, *, replication: int | None = None
) -> str:
    """The URL of ``BASE/_archives/<v>-<digest16>.tar``, packing it if absent.

    Packed locally, uploaded under a temp name and renamed; when another job
    wins the race its archive is used (pack is deterministic, so both are
    the same bytes). Counts builds and reuses in :data:`ARCHIVE_STATS`.
    ``replication``: of the upload (HDFS stores; explicit >
    ``HDFS_MODELS_REPLICATION`` > 10); a reused archive keeps its own.
    """
    copies = resolve_replication(replication)
    target = archive_url(pinned.base_url, pinned.url, pinned.name, pinned.version, pinned.digest)
    fs, path = open_store(target, storage_options)
    with translate_errors(target, "checking the stored archive"):
        exists = fs.exists(path)
    if exists:
        ARCHIVE_STATS["reused"] += 1
        log.info("reusing %s", target)
        return target
    with tempfile.TemporaryDirectory(prefix="hdfs-models-archive-") as tmp:
        local = pack(pinned.url, os.path.join(tmp, "model.tar"), "tar", pinned=pinned, storage_options=storage_options)
        tmp_path = f"{path.rsplit('/', 1)[0]}/.{uuid.uuid4().hex}.tmp"
        with translate_errors(target, "uploading the archive"):
            fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            fs.put_file(local, tmp_path, **write_options(fs, cap_replication(copies, target, fs)))
            _rename_or_reuse(fs, tmp_path, path, target)
    ARCHIVE_STATS["built"] += 1
    log.info("packed %s into %s", pinned.url, target)
    return target


def _rename_or_reuse(fs: Any, tmp_path: str, path: str, target: str) -> None:
    """Move the uploaded archive into place without replacing one another job put there first."""
    try:
        store_rename_noreplace(fs, tmp_path, path)
    except Exception:
        if not fs.exists(path):
            raise
        log.info("%s appeared meanwhile (another job); using it", target)
    if fs.exists(tmp_path):
        fs.rm(tmp_path)
