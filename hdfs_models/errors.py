"""Exceptions raised by :mod:`hdfs_models`.

Every error names the URL or local path involved and the reason, both as
attributes and in the message, and pickles (errors cross the executor →
driver boundary in Spark). Leaves also subclass the builtin a caller would
naturally catch::

    HdfsModelsError(DetailedError(Exception))
    ├── ModelNotFoundError(FileNotFoundError)      URL / version / alias does not exist
    ├── InvalidModelError(ValueError)              not a SavedModel (B2, B3, B4, B10)
    │   └── IncompleteVersionError                 version without manifest/_SUCCESS/complete files
    ├── UnsafeNameError(ValueError)                name/version/child name escapes its root (B5, B6)
    ├── UnsupportedProtocolError(ValueError)       unknown URL scheme
    ├── MissingExtraError(ImportError)             the extra that provides a feature is not installed
    ├── IntegrityError(OSError)                    size/digest mismatch, source changed (B7, F3-F5)
    │   └── SourceChangedError                     the store changed during a download
    ├── StoreError(OSError)                        a store operation failed after retries (F2)
    │   ├── StorePermissionError(PermissionError)  the store refused access (F12)
    │   ├── StoreAuthError                         no valid Kerberos ticket or token (K1, K2, K4)
    │   └── EncryptionZoneError                    a file in an encryption zone this client cannot decrypt (P12)
    ├── CacheError(OSError)                        the local cache root is unusable (F6, F7)
    ├── LockTimeoutError(TimeoutError)             a cache lock was not acquired in time (C7)
    ├── UnsafeArchiveError(ValueError)             an archive member is unsafe (S1-S12)
    ├── PublishError(OSError)                      publishing a version failed
    ├── DistributionError(RuntimeError)            shipping a model to executors failed
    └── UnsupportedSparkError(RuntimeError)        pyspark older than 3.5.0, or Spark Connect for a classic-only API

    HdfsModelsWarning(UserWarning)
    └── ExtraFilesWarning                          the store holds files the manifest does not list (B8)

``hdfs_models.testing.MiniDFSError`` (the test cluster) also derives from
:class:`HdfsModelsError`. The fields each error carries are declared on its
class (``None`` when not given), so type checkers and IDEs see them.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CacheError",
    "DetailedError",
    "DistributionError",
    "EncryptionZoneError",
    "ExtraFilesWarning",
    "HdfsModelsError",
    "HdfsModelsWarning",
    "IncompleteVersionError",
    "IntegrityError",
    "InvalidModelError",
    "LockTimeoutError",
    "MissingExtraError",
    "ModelNotFoundError",
    "PublishError",
    "SourceChangedError",
    "StoreAuthError",
    "StoreError",
    "StorePermissionError",
    "UnsafeArchiveError",
    "UnsafeNameError",
    "UnsupportedProtocolError",
    "UnsupportedSparkError",
]


def _rebuild(cls: type[DetailedError], message: str, attrs: dict[str, Any]) -> DetailedError:
    err = cls.__new__(cls)
    DetailedError.__init__(err, message, **attrs)
    return err


class DetailedError(Exception):
    """An exception whose context travels with it: named fields plus ``details``.

    Subclasses list their named fields in ``_fields`` (each becomes an
    attribute, ``None`` when not given); any other keyword lands in
    ``details`` and is readable as an attribute too (``err.attempts``). A
    field declared on the class (``attempts: int | None``) but not given
    reads as ``None``; any other missing name is an ``AttributeError``.
    Pickles with everything (errors cross the executor → driver boundary).
    Shared by :class:`HdfsModelsError` and ``scoring.ScoringError``.
    """

    _fields: tuple[str, ...] = ()

    def __init__(self, message: str, **attrs: Any) -> None:
        super().__init__(message)
        self.message = message
        for name in self._fields:
            setattr(self, name, attrs.pop(name, None))
        self.details = attrs

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        attrs = {name: getattr(self, name) for name in self._fields}
        return (_rebuild, (type(self), self.message, {**attrs, **self.details}))

    def __getattr__(self, name: str) -> Any:
        details = self.__dict__.get("details", {})
        if name in details:
            return details[name]
        if not name.startswith("__") and any(name in vars(k).get("__annotations__", {}) for k in type(self).__mro__):
            return None
        raise AttributeError(name)


class HdfsModelsError(DetailedError):
    """Base class of every error raised by :mod:`hdfs_models`.

    Attributes: ``message``, ``url`` (the store URL, if any), ``path`` (a
    local path, if any), ``reason`` (a short cause) and ``details`` (any
    further keyword arguments). ``version``, ``attempts`` and ``elapsed``
    are there when known (:func:`~hdfs_models.localize` adds them to every
    error it raises, with ``local_path``).
    """

    _fields: tuple[str, ...] = ("url", "path", "reason")
    url: str | None
    path: str | None
    reason: str | None
    version: int | None
    attempts: int | None
    elapsed: float | None
    local_path: str | None

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        path: str | None = None,
        reason: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, url=url, path=path, reason=reason, **details)


class ModelNotFoundError(HdfsModelsError, FileNotFoundError):
    """The model URL, version or shipped alias (``alias``) does not exist."""

    alias: str | None


class InvalidModelError(HdfsModelsError, ValueError):
    """The directory is not a (complete) SavedModel; ``missing`` lists what it lacks."""

    missing: list[str] | None


class IncompleteVersionError(InvalidModelError):
    """A version directory has neither a manifest, a ``_SUCCESS`` marker nor a complete SavedModel."""


class UnsafeNameError(HdfsModelsError, ValueError):
    """A model name, version or listed child name would escape its root directory.

    ``what`` says which kind of name it was (``"model name"``, ``"version"`` …).
    """

    what: str | None


class UnsupportedProtocolError(HdfsModelsError, ValueError):
    """The URL scheme (``scheme``) is unknown to hdfs-models and fsspec."""

    scheme: str | None


class MissingExtraError(HdfsModelsError, ImportError):
    """A feature needs a package that is not installed; ``extra`` is what to ``pip install``.

    E.g. ``hdfs://`` without hdfs-native: ``extra`` is ``hdfs-models[hdfs]``.
    An ``ImportError``, as fsspec raises for a protocol whose package is missing.
    """

    extra: str | None
    scheme: str | None


class IntegrityError(HdfsModelsError, OSError):
    """Bytes do not match the manifest or the listing (size, sha256).

    ``file``: the file (a download); ``member``: the archive member;
    ``files``/``problems``: every path or problem found, when several.
    """

    file: str | None
    member: str | None
    files: list[str] | None
    problems: list[str] | None


class SourceChangedError(IntegrityError):
    """The model changed on the store while it was being downloaded."""


class StoreError(HdfsModelsError, OSError):
    """A store operation failed after bounded retries (``file``: the file being read)."""

    file: str | None


class StorePermissionError(StoreError, PermissionError):
    """The store refused access to the URL."""


class StoreAuthError(StoreError):
    """The store could not authenticate the caller: no Kerberos ticket, an expired one, or a refused token.

    Never retried. ``principal`` names who the caller was (or None), the
    message names the fix (``kinit`` or the token file).
    """

    principal: str | None
    keytab: str | None
    token_file: str | None


class EncryptionZoneError(StoreError):
    """A file is in an HDFS encryption zone and this client has no KMS to decrypt it with.

    Never retried (it is the client's configuration, not push-back); the
    message names the file and the fix: give the client the cluster's key
    provider, or read through ``webhdfs://``, whose DataNodes decrypt.
    """


class CacheError(HdfsModelsError, OSError):
    """The local cache root is not usable (read-only, full, missing); ``file``: the file being written."""

    file: str | None


class LockTimeoutError(HdfsModelsError, TimeoutError):
    """A cache lock (``path``) could not be acquired within ``timeout`` seconds."""

    timeout: float | None


class UnsafeArchiveError(HdfsModelsError, ValueError):
    """An archive (``path``) holds a member (``member``; ``None``: the archive itself) unsafe to extract."""

    member: str | None


class PublishError(HdfsModelsError, OSError):
    """Publishing a model version to the store failed."""


class DistributionError(HdfsModelsError, RuntimeError):
    """A model could not be shipped to, or found on, a Spark executor (``alias``: its Spark alias)."""

    alias: str | None


class UnsupportedSparkError(HdfsModelsError, RuntimeError):
    """The Spark in use cannot run this (``found``/``needed``: pyspark versions, or ``"connect"``/``"classic"``).

    Raised when pyspark is older than the floor, and (``reason="spark connect"``)
    when an API that needs a SparkContext is used under Spark Connect.
    """

    found: str | None
    needed: str | None


class HdfsModelsWarning(UserWarning):
    """Base class of every warning issued by :mod:`hdfs_models`."""


class ExtraFilesWarning(HdfsModelsWarning):
    """The store holds files that the version's manifest does not list; they are not downloaded (B8)."""
