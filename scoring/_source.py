"""Where a scorer's model comes from: a local dir, a URL, or a distribution handle.

A source is built on the driver (:func:`model_source`), pickled into tasks,
and asked on the executor for :meth:`localize`, which returns the local
SavedModel path, the version the rows are tagged with, and the key of the
per-worker model cache. URL sources are pinned on the driver when
``hdfs_models`` can resolve them, so every task scores the same version.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from hdfs_models.errors import InvalidModelError, ModelNotFoundError

from scoring._signature import read_local_signatures

__all__ = ["HandleSource", "LocalSource", "Localized", "UrlSource", "model_source"]

log = logging.getLogger(__name__)


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

    def signatures(self) -> dict[str, Any]:
        check_local_dir(self.path)
        return read_local_signatures(self.path)

    def localize(self) -> Localized:
        check_local_dir(self.path)
        stat = os.stat(os.path.join(self.path, "saved_model.pb"))
        key = f"{os.path.realpath(self.path)}@{stat.st_mtime_ns}:{stat.st_size}"
        return Localized(self.path, dir_version(self.path), key)

    def discard(self, local: Localized) -> None:
        """A user's own directory is never deleted: nothing to do."""


@dataclass(frozen=True)
class UrlSource:
    """A model URL, localized into the node cache by each executor."""

    url: str
    pinned: Any = None

    def describe(self) -> str:
        return self.url

    def signatures(self) -> dict[str, Any]:
        sigs = getattr(self.pinned, "signatures", None)
        if sigs:
            return dict(sigs)
        return read_local_signatures(self.localize().path)

    def localize(self) -> Localized:
        from hdfs_models._cache import localize

        if self.pinned is not None:
            local = localize(self.url, pinned=self.pinned)
        else:
            local = localize(self.url)
        return Localized(local.path, local.version, f"{local.digest}:{local.path}")

    def discard(self, local: Localized) -> None:
        """Drop a node-cache entry TensorFlow could not load, so a retry downloads it again (L2)."""
        from hdfs_models._cache import discard

        discard(local.path)


@dataclass(frozen=True)
class HandleSource:
    """Any object with ``local_path()`` (and ``version`` / ``digest``), e.g. a ModelHandle."""

    handle: Any

    def describe(self) -> str:
        return str(getattr(self.handle, "url", None) or self.handle)

    def signatures(self) -> dict[str, Any]:
        for owner in (self.handle, getattr(self.handle, "pinned", None)):
            sigs = getattr(owner, "signatures", None)
            if sigs:
                return dict(sigs)
        return read_local_signatures(self.handle.local_path())

    def localize(self) -> Localized:
        path = self.handle.local_path()
        version = getattr(self.handle, "version", None)
        digest = getattr(self.handle, "digest", None)
        key = f"{digest}:{path}" if digest else LocalSource(path).localize().key
        return Localized(path, None if version is None else int(version), key)

    def discard(self, local: Localized) -> None:
        """For a ``fetch`` handle, drop the node-cache entry (L2); Spark-shipped copies stay."""
        if getattr(self.handle, "strategy", None) == "fetch":
            from hdfs_models._cache import discard

            discard(local.path)


Source = LocalSource | UrlSource | HandleSource


def model_source(model: Any) -> Source:
    """Classify ``model`` (local path, ``file://`` or other URL, or handle) on the driver."""
    if hasattr(model, "local_path"):
        return HandleSource(model)
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if not isinstance(model, str):
        raise TypeError(f"model must be a path, a URL or a handle with local_path(), not {model!r}")
    if model.startswith("file://"):
        return LocalSource(model[len("file://") :])
    if "://" not in model:
        return LocalSource(os.path.abspath(model))
    return UrlSource(model, _pin(model))


def _pin(url: str) -> Any:
    """Resolve ``url`` to a pinned version on the driver, or None when core cannot yet."""
    try:
        from hdfs_models._versions import resolve
    except ImportError:
        log.debug("hdfs_models._versions unavailable; %s is resolved on each executor", url)
        return None
    return resolve(url)


def check_local_dir(path: str) -> None:
    """ModelNotFoundError / InvalidModelError naming ``path`` before TensorFlow is touched."""
    if not os.path.exists(path):
        raise ModelNotFoundError(f"model {path} does not exist", path=path, reason="not found")
    if not os.path.isdir(path):
        raise InvalidModelError(
            f"model {path} is a file, not a SavedModel directory", path=path, reason="not a dir"
        )
    for required in ("saved_model.pb", "variables"):
        if not os.path.exists(os.path.join(path, required)):
            raise InvalidModelError(
                f"model {path} has no {required}: not a SavedModel directory",
                path=path,
                reason=f"missing {required}",
            )
