"""The store: a model URL → an fsspec filesystem, as the right identity, with its errors translated.

==================  =========================================================
``_open``           :func:`open_store` (scheme → client, cached per process
                    and identity), :func:`translate_errors`, URL helpers
``_auth``           who a client acts as (ticket cache, keytab, token file)
                    and authentication failures as ``StoreAuthError``
``_tokens``         Hadoop delegation token files (both formats)
``_hdfs_native``    the hdfs-native client (imported only for ``hdfs://``)
``_hadoop_conf``    ``HADOOP_CONF_DIR`` site files: NameNodes, HA, viewfs
``_replication``    the replication a write asks for (HDFS stores only; P13)
==================  =========================================================
"""

from __future__ import annotations

from hdfs_models.store._open import (
    Filesystem,
    clear_store_cache,
    join_url,
    open_store,
    split_scheme,
    translate_errors,
)
from hdfs_models.store._replication import DEFAULT_REPLICATION, cap_replication, resolve_replication, write_options

__all__ = [
    "DEFAULT_REPLICATION",
    "Filesystem",
    "cap_replication",
    "clear_store_cache",
    "join_url",
    "open_store",
    "resolve_replication",
    "split_scheme",
    "translate_errors",
    "write_options",
]
