"""Ship one model version to Spark executors; find it there, verified.

:func:`distribute` runs on the driver: it resolves ``latest`` once, pins
the version, prepares what the strategy needs and returns a
:class:`ModelHandle`, a small frozen record (URL, pinned version, digest,
strategy, alias; never a filesystem object) that pickles into tasks.
``handle.local_path()`` on an executor returns a verified local SavedModel
directory:

``fetch``      :func:`hdfs_models.localize` into the node cache (one download per node).
``archive``    the version packed once into ``BASE/_archives/<v>-<digest16>.tar``
               (temp name + rename, reused when present), ``sc.addArchive(uri#alias)``;
               Spark unpacks it into each executor's SparkFiles directory.
``files``      ``sc.addFile(version_dir, recursive=True)``; empty dirs recreated.
``submitted``  :meth:`ModelHandle.submitted`: the job was started with
               ``spark-submit --archives model.tar.gz#alias``.

Spark ignores a path added twice, so archive names and aliases carry the
version and digest. Trees Spark unpacked are checked once per process: an
lstat audit (no links, nothing outside) and the ``MANIFEST.json`` inside
(sizes, sha256, no extra files), which must also match the pinned digest.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping

from hdfs_models.archive import pack
from hdfs_models.archive._read import Extracted
from hdfs_models.archive._unpack import audit_tree, scan_tree, verify_extracted
from hdfs_models.cache import holds, localize
from hdfs_models._manifest import MANIFEST_NAME
from hdfs_models._names import sanitize_name, validate_name
from hdfs_models.store import join_url, open_store, translate_errors
from hdfs_models._tree import compare_tree
from hdfs_models._versions import ARCHIVES_DIR, PinnedVersion, resolve
from hdfs_models.errors import DistributionError, IntegrityError, MissingExtraError, ModelNotFoundError

__all__ = ["ARCHIVE_STATS", "STRATEGIES", "ModelHandle", "archive_name", "distribute"]

log = logging.getLogger(__name__)

STRATEGIES = ("fetch", "archive", "files", "submitted")
#: Archives built / reused by :func:`distribute` in this process (observability, tests).
ARCHIVE_STATS = {"built": 0, "reused": 0}

_verified_lock = threading.Lock()
_verified: dict[tuple[int, str], Any] = {}  # (pid, local dir) -> Manifest, per process
_fetched_models: dict[tuple[int, str, str | None], Any] = {}  # (pid, digest, cache) -> LocalModel
_HOW_TO_SHIP = (
    "ship it with `spark-submit --archives model.tar.gz#{alias}` (make the archive with "
    "`hdfs-models pack`) or with hdfs_models.distribute(spark, url, strategy='archive')"
)


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


@dataclass(frozen=True)
class ModelHandle:
    """A model version shipped to executors; ``local_path()`` finds it there.

    ``url``: the version dir URL (``None`` for ``submitted``); ``pinned``:
    the :class:`~hdfs_models._versions.PinnedVersion` resolved on the
    driver (``None`` for ``submitted``). Pickles without any connection.
    The ``Scorer`` accepts a handle (``local_path()``, ``version``, ``digest``).
    """

    strategy: str
    url: str | None = None
    alias: str | None = None
    pinned: PinnedVersion | None = field(default=None, repr=False)
    cache_dir: str | None = None
    expected_version: int | None = None

    @classmethod
    def submitted(cls, alias: str, version: int | None = None) -> "ModelHandle":
        """A handle for an archive shipped with ``spark-submit --archives ARCHIVE#alias``.

        ``version``: when given, the archive's manifest must name it.
        """
        validate_name(alias, "archive alias")
        return cls("submitted", alias=alias, expected_version=version)

    @property
    def version(self) -> int:
        """The pinned version (``submitted``: read from the shipped manifest)."""
        if self.pinned is not None:
            return int(self.pinned.version)
        return int(self._shipped_manifest().version)

    @property
    def digest(self) -> str:
        """The pinned digest (``submitted``: the shipped manifest's digest)."""
        if self.pinned is not None:
            return str(self.pinned.digest)
        return str(self._shipped_manifest().digest)

    @property
    def signatures(self) -> dict[str, Any]:
        """Serving signatures from the manifest (empty when the version has none)."""
        if self.pinned is not None:
            return dict(self.pinned.signatures)
        return dict(self._shipped_manifest().signatures)

    def local_path(self) -> str:
        """A verified local SavedModel directory for this version, in this process.

        Raises :class:`ModelNotFoundError` for an alias that was never
        shipped, :class:`DistributionError` outside Spark (for the Spark
        strategies), :class:`IntegrityError` when the shipped copy does
        not match its manifest or the pinned digest.
        """
        if self.strategy == "fetch":
            if self.pinned is None:
                raise DistributionError("a fetch handle without a pinned version", reason="not pinned")
            return _fetched(self.pinned, self.cache_dir)
        return self._shipped()[0]

    def _shipped_manifest(self) -> Any:
        return self._shipped()[1]

    def _shipped(self) -> tuple[str, Any]:
        path = _find_shipped(self._dir_name(), self.strategy)
        manifest = _verify_once(path, self)
        return path, manifest

    def _dir_name(self) -> str:
        if self.strategy == "files":
            return str(self.url).rstrip("/").rsplit("/", 1)[-1]
        return str(self.alias)


# ---------------------------------------------------------------- driver side


def distribute(
    spark: Any,
    url: str,
    version: int | str = "latest",
    strategy: str = "fetch",
    cache_dir: str | os.PathLike[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> ModelHandle:
    """Pin ``version`` of the model at ``url`` and ship it to ``spark``'s executors.

    ``spark``: a SparkSession or SparkContext (unused by ``fetch``).
    ``strategy``: ``fetch``, ``archive`` or ``files`` (module docstring);
    ``submitted`` handles come from :meth:`ModelHandle.submitted`.
    ``cache_dir``: the node cache root for ``fetch`` (default: see
    :func:`hdfs_models.localize`). Returns a picklable :class:`ModelHandle`.
    """
    if strategy not in STRATEGIES[:3]:
        hint = " (use ModelHandle.submitted(alias))" if strategy == "submitted" else ""
        raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES[:3])}{hint}")
    pinned = resolve(url, version, storage_options=storage_options)
    log.info("distributing %s version %d (%s) by %s", pinned.url, pinned.version, pinned.digest[:16], strategy)
    if strategy == "fetch":
        root = os.fspath(cache_dir) if cache_dir is not None else None
        return ModelHandle("fetch", url=pinned.url, pinned=pinned, cache_dir=root)
    sc = getattr(spark, "sparkContext", spark)
    if strategy == "files":
        _spark_call(sc.addFile, spark_uri(pinned.url), True, what=f"addFile({pinned.url})")
        return ModelHandle("files", url=pinned.url, pinned=pinned)
    stored = ensure_archive(pinned, storage_options)
    alias = alias_for(pinned.name, pinned.version, pinned.digest)
    _spark_call(sc.addArchive, f"{spark_uri(stored)}#{alias}", what=f"addArchive({stored})")
    return ModelHandle("archive", url=pinned.url, alias=alias, pinned=pinned)


def spark_uri(url: str) -> str:
    """A URI Spark's Hadoop client understands: plain local paths become ``file://``. Pure."""
    return url if "://" in url else "file://" + os.path.abspath(url)


def _spark_call(method: Any, *args: Any, what: str) -> None:
    try:
        method(*args)
    except Exception as exc:  # py4j wraps the JVM's exception; translate it once, here
        raise DistributionError(f"Spark refused {what}: {exc}", url=what, reason="spark") from exc


def ensure_archive(pinned: PinnedVersion, storage_options: Mapping[str, Any] | None = None) -> str:
    """The URL of ``BASE/_archives/<v>-<digest16>.tar``, packing it if absent.

    Packed locally, uploaded under a temp name and renamed; when another job
    wins the race its archive is used (pack is deterministic, so both are
    the same bytes). Counts builds and reuses in :data:`ARCHIVE_STATS`.
    """
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
            fs.put_file(local, tmp_path)
            _rename_or_reuse(fs, tmp_path, path, target)
    ARCHIVE_STATS["built"] += 1
    log.info("packed %s into %s", pinned.url, target)
    return target


def _rename_or_reuse(fs: Any, tmp_path: str, path: str, target: str) -> None:
    try:
        fs.mv(tmp_path, path)
    except Exception:
        if not fs.exists(path):
            raise
        log.info("%s appeared meanwhile (another job); using it", target)
    if fs.exists(tmp_path):
        fs.rm(tmp_path)


# ---------------------------------------------------------------- executor side


def _fetched(pinned: PinnedVersion, cache_dir: str | None) -> str:
    """Localize once per process; keep the LocalModel so its in-use claim lasts (no eviction).

    The claim lasts until the process ends it with :func:`hdfs_models.release`
    (the scoring model cache does when it drops the version); the next call
    then claims the entry again (a cache hit, or a download if it was evicted).
    """
    key = (os.getpid(), str(pinned.digest), cache_dir)
    with _verified_lock:
        model = _fetched_models.get(key)
    # claim again after the worker's model cache ended the claim (hdfs_models.release, C9)
    if model is None or not os.path.isdir(model.path) or not holds(model.path):
        model = localize(pinned.url, pinned=pinned, cache_dir=cache_dir)
        with _verified_lock:
            _fetched_models[key] = model
    return str(model.path)


def _spark_roots(strategy: str, name: str) -> list[str]:
    """Directories where Spark puts shipped files in this process, most specific first."""
    try:
        from pyspark import SparkContext, SparkFiles, TaskContext
    except ImportError as exc:
        raise MissingExtraError(
            f"strategy {strategy!r} needs pyspark: pip install 'hdfs-models[spark]'",
            reason="no pyspark",
            extra="hdfs-models[spark]",
        ) from exc
    on_worker = bool(getattr(SparkFiles, "_is_running_on_worker", False)) or TaskContext.get() is not None
    if on_worker:
        return [SparkFiles.getRootDirectory(), os.getcwd()]
    if SparkContext._active_spark_context is not None:
        return [SparkFiles.getRootDirectory(), os.getcwd()]
    raise DistributionError(
        f"model {name!r} (strategy {strategy!r}) is looked up outside Spark: there is no task "
        "context and no SparkContext, so no SparkFiles directory; call local_path() inside a "
        "Spark task or on the driver of a running job, or use strategy='fetch' outside Spark",
        reason="outside Spark",
        alias=name,
    )


def _find_shipped(name: str, strategy: str) -> str:
    roots = _spark_roots(strategy, name)
    for root in roots:
        candidate = os.path.join(root, name)
        if os.path.isdir(candidate):
            return candidate
    raise ModelNotFoundError(
        f"model alias {name!r} was not shipped to this Spark process (looked in "
        f"{', '.join(dict.fromkeys(roots))}); " + _HOW_TO_SHIP.format(alias=name),
        path=roots[0],
        reason="alias not shipped",
        alias=name,
    )


def _verify_once(path: str, handle: ModelHandle) -> Any:
    key = (os.getpid(), os.path.realpath(path))
    with _verified_lock:
        manifest = _verified.get(key)
        if manifest is None:
            manifest = _verify_tree(path, handle)
            _verified[key] = manifest
    _check_identity(manifest, handle, path)
    return manifest


def _verify_tree(path: str, handle: ModelHandle) -> Any:
    audit_tree(path, path)
    extracted = scan_tree(path)
    if MANIFEST_NAME not in extracted.files and handle.pinned is not None and handle.pinned.manifest is None:
        return _listing_manifest(path, extracted, handle.pinned)
    try:
        return verify_extracted(path, extracted, path)
    except IntegrityError as exc:
        if exc.reason == f"missing {MANIFEST_NAME}":
            raise DistributionError(
                f"shipped model {path} has no {MANIFEST_NAME}, so it cannot be verified; "
                + _HOW_TO_SHIP.format(alias=os.path.basename(path)),
                path=path,
                reason="no manifest",
            ) from exc
        raise


def _listing_manifest(path: str, extracted: Extracted, pinned: PinnedVersion) -> Any:
    """A version published without a manifest, shipped by ``files``: check sizes against the pin."""
    if compare_tree(pinned.files, {p: size for p, (size, _) in extracted.files.items()}):
        raise IntegrityError(
            f"shipped model {path} differs from the pinned listing of {pinned.url}",
            path=path,
            url=pinned.url,
            reason="listing mismatch",
        )
    for d in pinned.empty_dirs:
        os.makedirs(os.path.join(path, d), exist_ok=True)
    return _PinnedAsManifest(pinned)


@dataclass(frozen=True)
class _PinnedAsManifest:
    """Manifest-like view of a pinned manifest-less version."""

    pinned: PinnedVersion

    @property
    def version(self) -> int:
        return int(self.pinned.version)

    @property
    def digest(self) -> str:
        return str(self.pinned.digest)

    @property
    def signatures(self) -> dict[str, Any]:
        return {}


def _check_identity(manifest: Any, handle: ModelHandle, path: str) -> None:
    pinned = handle.pinned
    if pinned is not None and pinned.manifest is not None and manifest.digest != pinned.digest:
        raise DistributionError(
            f"shipped model {path} holds manifest {manifest.digest[:16]}, but the job pinned "
            f"{pinned.url} at {pinned.digest[:16]}",
            path=path,
            url=pinned.url,
            reason="digest mismatch",
        )
    expected = handle.expected_version
    if expected is not None and manifest.version != expected:
        raise DistributionError(
            f"shipped model {path} is version {manifest.version}, not the expected {expected}",
            path=path,
            reason="version mismatch",
        )


def reset_verified() -> None:
    """Forget which shipped trees this process verified or fetched (tests)."""
    with _verified_lock:
        _verified.clear()
        _fetched_models.clear()
