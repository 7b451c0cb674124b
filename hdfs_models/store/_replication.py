"""How many DataNodes hold each block a write makes (RELIABILITY P13).

A published version (and its ``_archives/`` tar) is read by every executor of
a job at once, typically at the same second. At HDFS's default replication
of 3, three DataNodes serve every one of those reads; MapReduce ships its job
jar at ``mapreduce.client.submit.file.replication`` = 10 for the same reason,
and :data:`DEFAULT_REPLICATION` follows it.

Only HDFS clients take a replication: hdfs-native's and fsspec WebHDFS's
``open(path, "wb", replication=r)``. For every other store (local disks,
``memory://``, object stores, pyarrow's libhdfs wrapper, whose replication
is a constructor argument) the option does not apply and is dropped quietly.

Not capped here: the NameNode places at most one replica per live DataNode,
so on a cluster with fewer than ``r`` DataNodes every DataNode gets one and
the file is reported under-replicated (``hdfs fsck``, the ``UnderReplicatedBlocks``
metric) until more join. Capping needs the live DataNode count, which neither
hdfs-native nor WebHDFS can ask the NameNode for; pass ``replication`` no
larger than the DataNode count on a small cluster.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

__all__ = ["DEFAULT_REPLICATION", "REPLICATION_ENV", "resolve_replication", "write_options"]

#: MapReduce's job-jar replication (``mapreduce.client.submit.file.replication``).
DEFAULT_REPLICATION = 10
REPLICATION_ENV = "HDFS_MODELS_REPLICATION"
# HDFS keeps a file's replication in a 16-bit field; the NameNode refuses more
# than dfs.replication.max (512 by default) with a clear error of its own.
_MAX = 32767
# Modules whose fsspec classes accept ``open(..., "wb", replication=)``.
_HDFS_WRITERS = ("hdfs_native.fsspec", "fsspec.implementations.webhdfs")


def resolve_replication(value: int | None = None, env: Mapping[str, str] = os.environ) -> int:
    """Explicit ``value`` > ``HDFS_MODELS_REPLICATION`` > :data:`DEFAULT_REPLICATION`. Pure.

    Raises ValueError for a value that is not a whole number from 1 to 32767.
    """
    source = "replication"
    if value is None and env.get(REPLICATION_ENV):
        source, raw = REPLICATION_ENV, env[REPLICATION_ENV]
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{REPLICATION_ENV}={raw!r} is not a whole number") from None
    if value is None:
        return DEFAULT_REPLICATION
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX:
        raise ValueError(f"{source} must be a whole number from 1 to {_MAX}, got {value!r}")
    return value


def write_options(fs: Any, replication: int) -> dict[str, Any]:
    """The keyword arguments for ``fs.open(path, "wb", ...)`` that ask for ``replication``.

    ``{"replication": r}`` for hdfs-native and WebHDFS filesystems (and their
    subclasses); ``{}`` for every other store.
    """
    if any(cls.__module__ in _HDFS_WRITERS for cls in type(fs).__mro__):
        return {"replication": replication}
    return {}
