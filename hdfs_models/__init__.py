"""hdfs-models: get TensorFlow SavedModel versions from HDFS (or any fsspec
store) onto local disk once per node, verified and atomically.

Importing this package imports neither TensorFlow, pyspark nor pyarrow.
"""

from __future__ import annotations

from hdfs_models.errors import (
    CacheError,
    DistributionError,
    HdfsModelsError,
    IncompleteVersionError,
    IntegrityError,
    InvalidModelError,
    LockTimeoutError,
    MiniDFSError,
    ModelNotFoundError,
    PublishError,
    SourceChangedError,
    StoreError,
    StorePermissionError,
    UnsafeArchiveError,
    UnsafeNameError,
    UnsupportedProtocolError,
)

__version__ = "0.1.0"

__all__ = [
    "CacheError",
    "DistributionError",
    "HdfsModelsError",
    "IncompleteVersionError",
    "IntegrityError",
    "InvalidModelError",
    "LockTimeoutError",
    "MiniDFSError",
    "ModelNotFoundError",
    "PublishError",
    "SourceChangedError",
    "StoreError",
    "StorePermissionError",
    "UnsafeArchiveError",
    "UnsafeNameError",
    "UnsupportedProtocolError",
    "__version__",
]
