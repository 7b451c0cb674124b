"""hdfs-models: get TensorFlow SavedModel versions from HDFS (or any fsspec
store) onto local disk once per node, verified and atomically.

Importing this package imports neither TensorFlow, pyspark nor pyarrow.
"""

from __future__ import annotations

from hdfs_models._distribute import ModelHandle, distribute
from hdfs_models._manifest import MANIFEST_NAME, FileEntry, Manifest
from hdfs_models._publish import publish
from hdfs_models._runtime import BFLOAT16_FLAGS, CpuInfo, read_cpu
from hdfs_models._signatures import import_tensorflow, read_signatures
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
    "BFLOAT16_FLAGS",
    "CacheError",
    "CacheOptions",
    "CacheStats",
    "CpuInfo",
    "DistributionError",
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
    "import_tensorflow",
    "list_versions",
    "localize",
    "open_store",
    "pack",
    "publish",
    "read_cpu",
    "read_signatures",
    "release",
    "resolve",
    "unpack",
    "__version__",
]
