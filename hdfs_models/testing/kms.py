"""The KMS side of :class:`~hdfs_models.testing.MiniDFS` (``kms=True``): HDFS encryption zones.

The launcher JVM starts Hadoop's MiniKMS (from hadoop-kms's test jar, in a
class loader of its own: ``Kms.java``) before the MiniDFSCluster, points the
NameNode and DataNodes at it (``hadoop.security.key.provider.path`` and
``dfs.encryption.key.provider.uri`` = ``kms://http@127.0.0.1:PORT/kms``),
creates one key (``models``), and writes the same settings into the client
conf dir's ``core-site.xml`` and ``hdfs-site.xml``, so a client reading
``HADOOP_CONF_DIR`` finds the KMS. Simple authentication only (not with
``kerberos=True``). The first ``kms=True`` cluster resolves MiniKMS's
classpath with Maven (:func:`~hdfs_models.testing.launcher.ensure_kms_classpath`).
"""

from __future__ import annotations

from typing import Any

from hdfs_models.testing.launcher import MiniDFSError, ensure_kms_classpath

__all__ = ["KmsMixin", "kms_launcher_args"]


def kms_launcher_args(enabled: bool, hadoop_version: str) -> list[str]:
    """The launcher's command-line options for MiniKMS (none when disabled; resolves its classpath)."""
    return ["--kms", ensure_kms_classpath(hadoop_version=hadoop_version)] if enabled else []


class KmsMixin:
    """Encryption-zone commands of a started MiniDFS (``kms=True``)."""

    info: dict[str, Any]

    def command(self, *words: str) -> Any:  # provided by MiniDFS
        raise NotImplementedError

    @property
    def kms(self) -> dict[str, Any]:
        """``uri`` (the key provider, ``kms://http@127.0.0.1:PORT/kms``) and ``key`` (the key it created)."""
        info = self.info.get("kms")
        if not info:
            raise MiniDFSError("this MiniDFS was started without kms=True", reason="no kms")
        return dict(info)

    def create_zone(self, path: str, key: str | None = None) -> dict[str, Any]:
        """Create the empty directory ``path`` and make it an encryption zone of ``key`` (default: the one created)."""
        return dict(self.command("create-zone", path, key or self.kms["key"]))

    def encryption(self, path: str) -> dict[str, Any]:
        """What HDFS holds for the file ``path``: ``zone``, ``key``, ``encrypted`` (its status says so),
        ``length`` and ``raw_sha256`` (the sha256 of its bytes at rest, read through ``/.reserved/raw``)."""
        return dict(self.command("encryption", path))
