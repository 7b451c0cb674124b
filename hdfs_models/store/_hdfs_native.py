"""hdfs-native's fsspec filesystems, able to log in from a keytab. Imports hdfs-native (the 'hdfs' extra).

hdfs-native's own fsspec classes hand every storage option to the client as
Hadoop configuration, so a keytab login (``hdfs_native.Client``'s
``kerberos_principal`` / ``kerberos_keytab`` / ``kerberos_cache``) cannot be
asked for through fsspec. These subclasses take those three storage options
and pass them where they belong; the rest stays Hadoop configuration.
"""

from __future__ import annotations

import os
from typing import Any

from hdfs_native import Client
from hdfs_native.fsspec import HdfsFileSystem, ViewfsFileSystem

from hdfs_models.errors import StoreAuthError
from hdfs_models.store._auth import KERBEROS_OPTIONS

__all__ = ["KerberosHdfsFileSystem", "KerberosViewfsFileSystem", "filesystem_class"]


class _KeytabLogin:
    """Mixin: split the Kerberos options off and give them to ``hdfs_native.Client``."""

    client: Any
    protocol: Any
    host: str | None
    port: int | None

    def __init__(self, host: str | None = None, port: int | None = None, *args: Any, **options: Any) -> None:
        login = {k: options.pop(k) for k in KERBEROS_OPTIONS if options.get(k) is not None}
        super().__init__(host, port, *args, **options)  # type: ignore[call-arg]
        if login:
            _check_keytab(self._url(), login)
            config = {"hadoop.security.authentication": "kerberos", **options}
            self.client = Client(self._url(), {k: str(v) for k, v in config.items()}, **login)

    def _url(self) -> str:
        protocol = self.protocol if isinstance(self.protocol, str) else self.protocol[0]
        url = f"{protocol}://{self.host or ''}"
        return f"{url}:{self.port}" if self.host and self.port else url


def _check_keytab(url: str, login: dict[str, Any]) -> None:
    keytab = login.get("kerberos_keytab")
    if keytab is not None and not os.access(str(keytab), os.R_OK):
        principal = login.get("kerberos_principal")
        raise StoreAuthError(
            f"{url}: cannot log in {principal or 'a principal'} from keytab {keytab}: "
            f"{'no such file' if not os.path.exists(str(keytab)) else 'not readable'}; "
            f"fix the kerberos_keytab storage option, or kinit {principal or '<principal>'}",
            url=url,
            reason="keytab unreadable",
            principal=principal,
            keytab=str(keytab),
        )


class KerberosHdfsFileSystem(_KeytabLogin, HdfsFileSystem):
    """``hdfs://`` with optional ``kerberos_principal`` + ``kerberos_keytab`` (or ``kerberos_cache``)."""


class KerberosViewfsFileSystem(_KeytabLogin, ViewfsFileSystem):
    """``viewfs://`` with optional ``kerberos_principal`` + ``kerberos_keytab`` (or ``kerberos_cache``)."""


def filesystem_class(scheme: str) -> Any:
    """The fsspec class for ``hdfs`` or ``viewfs``."""
    return KerberosHdfsFileSystem if scheme == "hdfs" else KerberosViewfsFileSystem
