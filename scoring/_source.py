"""Where a scorer's model comes from (a local dir, a URL, or a distribution
handle), and reading its serving signatures.

A source is built on the driver (:func:`model_source`), pickled into tasks,
and asked on the executor for :meth:`localize`, which returns the local
SavedModel path, the version the rows are tagged with, and the key of the
per-worker model cache. URL sources are pinned on the driver, so every task
scores the same version.

:func:`inspect_signatures` returns the ``MANIFEST.json`` signatures format
(``docs/api.md``), read from ``MANIFEST.json`` when the model has one
and otherwise parsed from ``saved_model.pb`` (no variables are loaded).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol, Union, runtime_checkable

from hdfs_models._savedmodel import check_local_model
from hdfs_models._signatures import model_signatures, version_signatures
from hdfs_models._versions import PinnedVersion, resolve
from hdfs_models.cache import CacheOptions, discard, localize
from scoring.errors import SignatureError

__all__ = [
    "HandleSource",
    "LocalSource",
    "Localized",
    "ModelRef",
    "Source",
    "SupportsLocalPath",
    "UrlSource",
    "dir_version",
    "inspect_signatures",
    "model_source",
]


@runtime_checkable
class SupportsLocalPath(Protocol):
    """A model handle: ``local_path()`` gives a local SavedModel dir on the executor.

    Optional attributes the scorer uses when present: ``version``, ``digest``,
    ``signatures``, ``url``, ``strategy`` (as :class:`hdfs_models.ModelHandle` has).
    """

    def local_path(self) -> str: ...


ModelRef = Union[str, "os.PathLike[str]", SupportsLocalPath]
"""What a scorer accepts as its model: a local dir, a URL, or a handle."""


@dataclass(frozen=True)
class Localized:
    """A model on local disk: ``key`` identifies the exact files (path + digest or mtime)."""

    path: str
    version: int | None
    key: str


def dir_version(path: str) -> int | None:
    """The integer version a plain directory stands for: its name if numeric, else None."""
    name = os.path.basename(os.path.normpath(path))
    return int(name) if name.isdigit() else None


@dataclass(frozen=True)
class LocalSource:
    """A SavedModel directory on a filesystem every worker can read (same path)."""

    path: str

    def describe(self) -> str:
        return self.path

    @property
    def version(self) -> int | None:
        """The version rows are tagged with (the directory's name when it is an integer)."""
        return dir_version(self.path)

    def signatures(self) -> dict[str, Any]:
        check_local_model(self.path)
        return _some(model_signatures(self.path), self.path)

    def localize(self) -> Localized:
        check_local_model(self.path)
        stat = os.stat(os.path.join(self.path, "saved_model.pb"))
        key = f"{os.path.realpath(self.path)}@{stat.st_mtime_ns}:{stat.st_size}"
        return Localized(self.path, dir_version(self.path), key)

    def discard(self, local: Localized) -> None:
        """A user's own directory is never deleted: nothing to do."""


@dataclass(frozen=True)
class UrlSource:
    """A model URL, localized into the node cache by each executor."""

    url: str
    pinned: PinnedVersion | None = None
    options: CacheOptions | None = None  # None: each executor's HDFS_MODELS_* and defaults

    def describe(self) -> str:
        return self.url

    @property
    def version(self) -> int | None:
        """The version pinned on the driver (None when not pinned)."""
        return None if self.pinned is None else int(self.pinned.version)

    def signatures(self) -> dict[str, Any]:
        """From the pinned manifest, else from the version's ``saved_model.pb`` alone (no variables)."""
        pinned = self.pinned if self.pinned is not None else resolve(self.url)
        return _some(version_signatures(pinned), pinned.url)

    def localize(self) -> Localized:
        local = localize(self.url, pinned=self.pinned, options=self.options)
        return Localized(local.path, local.version, f"{local.digest}:{local.path}")

    def discard(self, local: Localized) -> None:
        """Drop a node-cache entry TensorFlow could not load, so a retry downloads it again (L2)."""
        discard(local.path)


@dataclass(frozen=True)
class HandleSource:
    """Any object with ``local_path()`` (and ``version`` / ``digest``), e.g. a ModelHandle."""

    handle: SupportsLocalPath

    def describe(self) -> str:
        return str(getattr(self.handle, "url", None) or self.handle)

    @property
    def version(self) -> int | None:
        """The handle's version, when it has one."""
        version = getattr(self.handle, "version", None)
        return None if version is None else int(version)

    def signatures(self) -> dict[str, Any]:
        for owner in (self.handle, getattr(self.handle, "pinned", None)):
            sigs = getattr(owner, "signatures", None)
            if sigs:
                return dict(sigs)
        path = self.handle.local_path()
        return _some(model_signatures(path), path)

    def localize(self) -> Localized:
        path = self.handle.local_path()
        version = getattr(self.handle, "version", None)
        digest = getattr(self.handle, "digest", None)
        key = f"{digest}:{path}" if digest else LocalSource(path).localize().key
        return Localized(path, None if version is None else int(version), key)

    def discard(self, local: Localized) -> None:
        """For a ``fetch`` handle, drop the node-cache entry (L2); Spark-shipped copies stay."""
        if getattr(self.handle, "strategy", None) == "fetch":
            discard(local.path)


Source = LocalSource | UrlSource | HandleSource


def model_source(model: ModelRef, cache: CacheOptions | None = None) -> Source:
    """Classify ``model`` (local path, ``file://`` or other URL, or handle) on the driver.

    ``cache``: how executors localize a model URL. A local directory is not
    cached, and a handle carries its own options (``distribute(options=)``),
    so for those ``cache`` is a ``ValueError`` rather than silently ignored.
    """
    if cache is not None and not isinstance(cache, CacheOptions):
        raise TypeError(f"cache must be a CacheOptions, not {type(cache).__name__}")
    source = _classify(model)
    if cache is None:
        return source
    if not isinstance(source, UrlSource):
        where = (
            "a handle carries its own: distribute(..., options=)"
            if isinstance(source, HandleSource)
            else ("a local directory is used in place, never cached")
        )
        raise ValueError(f"cache= applies to a model URL, not to {source.describe()}: {where}")
    return UrlSource(source.url, source.pinned, cache)


def _classify(model: ModelRef) -> Source:
    if isinstance(model, SupportsLocalPath):
        return HandleSource(model)
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if not isinstance(model, str):
        raise TypeError(f"model must be a path, a URL or a handle with local_path(), not {model!r}")
    if model.startswith("file://"):
        return LocalSource(model[len("file://") :])
    if "://" not in model:
        return LocalSource(os.path.abspath(model))
    return UrlSource(model, resolve(model))


def _some(signatures: dict[str, Any], where: str) -> dict[str, Any]:
    """``signatures``, or SignatureError naming ``where`` when the model has none."""
    if not signatures:
        raise SignatureError(f"{where} holds no serving signature", path=where, reason="no signatures")
    return signatures


def inspect_signatures(model: ModelRef) -> dict[str, Any]:
    """Serving signatures of ``model`` in the manifest format.

    ``model``: a local SavedModel directory, a model URL (its manifest is read
    through ``hdfs_models`` when it has one, else the version is localized),
    or a handle with ``local_path()``. Raises SignatureError when the model
    holds no signatures, and ``hdfs_models`` errors for missing models.
    """
    return model_source(model).signatures()
