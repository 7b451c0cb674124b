"""The executor side of :func:`~hdfs_models.distribute`: a :class:`ModelHandle` finds its version, verified.

``fetch`` localizes into the node cache; the Spark strategies find the tree
Spark shipped (``SparkFiles`` root or the working dir), rebuild it when it
came file by file, and check it once per process: an lstat audit (no links,
nothing outside; for trees Spark unpacked, no FIFO, device, setuid bit or
hard link either, P9) and the ``MANIFEST.json`` inside (sizes, sha256, no extra
files), which must also match the pinned digest.

A Spark Connect client has no copy of what Spark shipped, so
:meth:`ModelHandle.submitted` there asks one task for the archive's manifest
(:class:`_ManifestProbe`: an executor verifies its copy and sends the
manifest back); the handle carries it (``shipped``), and every executor's
copy must then have that manifest's digest.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hdfs_models._manifest import MANIFEST_NAME, Manifest
from hdfs_models._names import validate_name
from hdfs_models._runtime import connect_client, is_connect
from hdfs_models._tree import compare_tree
from hdfs_models._versions import PinnedVersion
from hdfs_models.archive._read import Extracted
from hdfs_models.archive._unpack import audit_tree, scan_tree, verify_extracted
from hdfs_models.cache import CacheOptions, hold
from hdfs_models.errors import DistributionError, IntegrityError, MissingExtraError, ModelNotFoundError

__all__ = ["ModelHandle", "link_or_copy", "reset_verified"]

_verified_lock = threading.Lock()
_verified: dict[tuple[int, str], Any] = {}  # (pid, local dir) -> Manifest, per process
_HOW_TO_SHIP = (
    "ship it with `spark-submit --archives model.tar.gz#{alias}` (make the archive with "
    "`hdfs-models pack`) or with hdfs_models.distribute(spark, url, strategy='archive')"
)


@dataclass(frozen=True)
class ModelHandle:
    """A model version shipped to executors; ``local_path()`` finds it there.

    ``url``: the version dir URL (``None`` for ``submitted``); ``pinned``:
    the :class:`~hdfs_models._versions.PinnedVersion` resolved on the
    driver (``None`` for ``submitted``). ``cache_dir`` and ``options`` (a
    :class:`~hdfs_models.CacheOptions`): how a ``fetch`` handle localizes on
    each executor (``None``: the executor's ``HDFS_MODELS_*`` and defaults).
    ``shipped``: for ``submitted`` on a Spark Connect client, the manifest
    an executor read from the shipped archive (the client has no copy).
    Pickles without any connection.
    The ``Scorer`` accepts a handle (``local_path()``, ``version``, ``digest``).
    """

    strategy: str
    url: str | None = None
    alias: str | None = None
    pinned: PinnedVersion | None = field(default=None, repr=False)
    cache_dir: str | None = None
    expected_version: int | None = None
    options: CacheOptions | None = None
    #: ``files`` of a local directory, shipped one by one as ``<alias>.<i>``: relative paths, in that order
    flat_files: tuple[str, ...] = ()
    shipped: Manifest | None = field(default=None, repr=False)

    @classmethod
    def submitted(cls, alias: str, version: int | None = None, *, spark: Any = None) -> ModelHandle:
        """A handle for an archive shipped as ``#alias``: ``spark-submit --archives ARCHIVE#alias``.

        ``version``: when given, the archive's manifest must name it. On a
        Spark Connect client (``spark`` a Connect session, or none given and
        this process a Connect client: the active session is used), where the
        archive reached the executors with ``spark.addArtifacts("ARCHIVE#alias",
        archive=True)`` or the server's ``--archives``, one task reads and
        verifies the shipped copy's manifest now (:class:`DistributionError`
        naming the alias when it cannot); elsewhere nothing is read until used.
        """
        validate_name(alias, "archive alias")
        handle = cls("submitted", alias=alias, expected_version=version)
        session = spark if spark is not None and is_connect(spark) else None
        if session is None and spark is None and connect_client():
            session = _active_session(alias)
        return handle if session is None else _ask_an_executor(session, handle)

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
            # once per process: the claim is kept until the model cache ends it (release, C9)
            return hold(self.pinned, self.cache_dir, options=self.options)
        return self._shipped()[0]

    def _shipped_manifest(self) -> Any:
        """The manifest an executor sent (Spark Connect), else the local shipped copy's, verified."""
        return self.shipped if self.shipped is not None else self._shipped()[1]

    def _shipped(self) -> tuple[str, Any]:
        if self.flat_files:
            path = _assemble_flat(str(self.alias), self.flat_files)
        else:
            path = _find_shipped(self._dir_name(), self.strategy)
        manifest = _verify_once(path, self)
        return path, manifest

    def _dir_name(self) -> str:
        if self.strategy == "files" and not self.flat_files:
            return str(self.url).rstrip("/").rsplit("/", 1)[-1]
        return str(self.alias)


@dataclass(frozen=True)
class _ManifestProbe:
    """A one-task ``mapInArrow`` body: verify the shipped copy of ``handle`` and send back its manifest."""

    handle: ModelHandle

    def __call__(self, batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        for _ in batches:
            pass
        manifest = self.handle._shipped()[1]
        yield pa.RecordBatch.from_pydict(
            {"manifest": [manifest.to_json()]}, schema=pa.schema([("manifest", pa.binary())])
        )


def _ask_an_executor(spark: Any, handle: ModelHandle) -> ModelHandle:
    """``handle`` with the manifest one task of ``spark`` (a Connect session) read from its shipped copy."""
    alias = str(handle.alias)
    try:
        rows = spark.range(0, 1, 1, 1).mapInArrow(_ManifestProbe(handle), "manifest binary").collect()
    except Exception as exc:
        cause = next((line for line in str(exc).splitlines() if "Error: " in line), str(exc).split("\n")[0])
        raise DistributionError(
            f"model alias {alias!r}: an executor could not read the archive shipped as #{alias}: {cause.strip()}; "
            f"on Spark Connect ship it with spark.addArtifacts('model.tar#{alias}', archive=True) or the "
            "server's --archives",
            reason="executor check failed",
            alias=alias,
        ) from exc
    manifest = Manifest.from_json(bytes(rows[0]["manifest"]), f"#{alias} (shipped to an executor)")
    return ModelHandle("submitted", alias=alias, expected_version=handle.expected_version, shipped=manifest)


def _active_session(alias: str) -> Any:
    """The active Spark Connect session of this client; :class:`DistributionError` when there is none."""
    from pyspark.sql import SparkSession

    try:
        session = SparkSession.getActiveSession()
    except ImportError:  # Connect's own dependencies (grpc) missing: there is no session either
        session = None
    if session is None:
        raise DistributionError(
            f"model alias {alias!r}: this Spark Connect client has no active session to ask an executor for "
            "the shipped archive's manifest; pass ModelHandle.submitted(alias, spark=spark)",
            reason="spark connect",
            alias=alias,
        )
    return session


def link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem, or links not allowed: copy
        shutil.copyfile(src, dst)


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
    if connect_client():
        raise DistributionError(
            f"model {name!r} (strategy {strategy!r}) is looked up on a Spark Connect client, which has "
            "no SparkFiles directory and no copy of what Spark shipped; use strategy='fetch'",
            reason="spark connect",
            alias=name,
        )
    raise DistributionError(
        f"model {name!r} (strategy {strategy!r}) is looked up outside Spark: there is no task "
        "context and no SparkContext, so no SparkFiles directory; call local_path() inside a "
        "Spark task or on the driver of a running job, or use strategy='fetch' outside Spark",
        reason="outside Spark",
        alias=name,
    )


def _assemble_flat(alias: str, rels: tuple[str, ...]) -> str:
    """Rebuild a version added file by file (:func:`_add_files_flat`) as ``<SparkFiles root>/<alias>``.

    Built under a process-unique temp name next to the added files and
    renamed into place, so a worker never sees half a tree; when another
    worker of the executor won the rename, its tree is used.
    """
    roots = _spark_roots("files", alias)
    root = roots[0]
    final = os.path.join(root, alias)
    if os.path.isdir(final):
        return final
    parts = [os.path.join(root, f"{alias}.{i}") for i in range(len(rels))]
    missing = [p for p in parts if not os.path.isfile(p)]
    if missing:
        raise ModelNotFoundError(
            f"model {alias!r} was not shipped to this Spark process: {missing[0]} is missing; "
            + _HOW_TO_SHIP.format(alias=alias),
            path=missing[0],
            reason="alias not shipped",
            alias=alias,
        )
    tmp = os.path.join(root, f".{alias}.{uuid.uuid4().hex}.tmp")
    try:
        for part, rel in zip(parts, rels):
            target = os.path.join(tmp, *rel.split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            link_or_copy(part, target)
        try:
            os.rename(tmp, final)
        except OSError:
            if not os.path.isdir(final):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


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
    # P9: Spark unpacks --archives / addArchive itself (Java for .tar and .zip, GNU tar for
    # .tar.gz, which keeps symlinks, FIFOs, devices and setuid bits); refuse what it left.
    unpacked = handle.strategy in ("archive", "submitted")
    label = f"shipped as #{handle._dir_name()} (unpacked by Spark into {path})" if unpacked else path
    audit_tree(path, label, fresh=unpacked, refusing="to serve it")
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
    shipped = handle.shipped
    if shipped is not None and manifest.digest != shipped.digest:
        raise DistributionError(
            f"shipped model {path} holds manifest {manifest.digest[:16]}, but the Spark Connect client was "
            f"sent {shipped.digest[:16]} for #{handle.alias} (executors hold different archives)",
            path=path,
            reason="digest mismatch",
        )
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
    """Forget which shipped trees this process verified (tests)."""
    with _verified_lock:
        _verified.clear()
