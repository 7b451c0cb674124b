"""hdfs-models: get TensorFlow SavedModel versions from HDFS (or any fsspec
store) onto local disk once per node, verified and atomically.

Importing this package imports neither TensorFlow, pyspark nor pyarrow.
"""

from __future__ import annotations

from hdfs_models._distribute import ModelHandle, distribute
from hdfs_models._manifest import MANIFEST_NAME, FileEntry, Manifest
from hdfs_models._publish import publish
from hdfs_models._signatures import read_signatures
from hdfs_models._version import __version__
from hdfs_models._versions import PinnedVersion, list_versions, resolve
from hdfs_models.archive import pack, unpack
from hdfs_models.cache import (
    CacheOptions,
    CacheStats,
    LocalModel,
    cache_stats,
    discard,
    evict,
    localize,
    release,
)
from hdfs_models.errors import (
    CacheError,
    DistributionError,
    EncryptionZoneError,
    ExtraFilesWarning,
    HdfsModelsError,
    HdfsModelsWarning,
    IncompleteVersionError,
    IntegrityError,
    InvalidModelError,
    LockTimeoutError,
    MissingExtraError,
    ModelNotFoundError,
    PublishError,
    SourceChangedError,
    StoreAuthError,
    StoreError,
    StorePermissionError,
    UnsafeArchiveError,
    UnsafeNameError,
    UnsupportedProtocolError,
    UnsupportedSparkError,
)
from hdfs_models.store import open_store

__all__ = [
    "CacheError",
    "CacheOptions",
    "CacheStats",
    "DistributionError",
    "EncryptionZoneError",
    "ExtraFilesWarning",
    "FileEntry",
    "HdfsModelsError",
    "HdfsModelsWarning",
    "IncompleteVersionError",
    "IntegrityError",
    "InvalidModelError",
    "LocalModel",
    "LockTimeoutError",
    "MANIFEST_NAME",
    "Manifest",
    "MissingExtraError",
    "ModelHandle",
    "ModelNotFoundError",
    "PinnedVersion",
    "PublishError",
    "SourceChangedError",
    "StoreAuthError",
    "StoreError",
    "StorePermissionError",
    "UnsafeArchiveError",
    "UnsafeNameError",
    "UnsupportedProtocolError",
    "UnsupportedSparkError",
    "cache_stats",
    "discard",
    "distribute",
    "evict",
    "list_versions",
    "localize",
    "open_store",
    "pack",
    "publish",
    "read_signatures",
    "release",
    "resolve",
    "unpack",
    "__version__",
]
