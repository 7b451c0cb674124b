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

Capped at the live DataNode count (:func:`cap_replication`): the NameNode places at most one
replica per live DataNode, so on a cluster with fewer than ``r`` DataNodes a file asked at ``r``
is reported under-replicated (``hdfs fsck``, the ``UnderReplicatedBlocks`` metric) for as long
as it lives. Neither hdfs-native nor WebHDFS's REST API can ask for the DataNode count, so the
cap asks the NameNode's HTTP server: ``/jmx``'s ``FSNamesystemState.NumLiveDataNodes`` (the
figure ``hdfs dfsadmin -report`` prints), at the ``dfs.namenode.http[s]-address`` of the
client's ``hdfs-site.xml`` (9870 / 9871 by default) or the WebHDFS URL's own host, with SPNEGO
when the cluster is Kerberized (``requests-kerberos``, the ``kerberos`` extra). When it cannot
be asked (no HTTP access, a delegation token and no ticket, no ``requests``), the replication
stays as asked, with a debug log line.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from hdfs_models.store._hadoop_conf import client_properties, namenodes

__all__ = [
    "DEFAULT_REPLICATION",
    "REPLICATION_ENV",
    "cap_replication",
    "live_datanodes",
    "namenode_http_addresses",
    "resolve_replication",
    "write_options",
]

logger = logging.getLogger(__name__)

#: MapReduce's job-jar replication (``mapreduce.client.submit.file.replication``).
DEFAULT_REPLICATION = 10
REPLICATION_ENV = "HDFS_MODELS_REPLICATION"
# HDFS keeps a file's replication in a 16-bit field; the NameNode refuses more
# than dfs.replication.max (512 by default) with a clear error of its own.
_MAX = 32767
# Modules whose fsspec classes accept ``open(..., "wb", replication=)``.
_HDFS_WRITERS = ("hdfs_native.fsspec", "fsspec.implementations.webhdfs")
_JMX = "/jmx?qry=Hadoop:service=NameNode,name=FSNamesystemState"
_HTTP_TIMEOUT_S = 5.0


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


def cap_replication(replication: int, url: str, fs: Any, env: Mapping[str, str] = os.environ) -> int:
    """``replication`` capped at the live DataNode count of ``url``'s NameNode, when it can be asked.

    Only for HDFS writers (:func:`write_options`) and ``replication`` > 1; one HTTP request.
    """
    if replication <= 1 or not write_options(fs, replication):
        return replication
    live = live_datanodes(url, fs, env)
    if live is None or not 1 <= live < replication:
        return replication
    logger.info("%s: replication %d capped at the %d live DataNodes", url, replication, live)
    return live


def live_datanodes(url: str, fs: Any, env: Mapping[str, str] = os.environ) -> int | None:
    """``NumLiveDataNodes`` from the first NameNode of ``url`` whose ``/jmx`` answers; ``None`` if none does."""
    web = getattr(fs, "url", "") if "webhdfs" in type(fs).__module__ else ""
    if web:  # WebHDFS's own host, through its session (its auth comes along)
        bases, session, kerberos = [web.split("/webhdfs/", 1)[0]], getattr(fs, "session", None), False
    else:
        props = client_properties(env)
        bases, session = namenode_http_addresses(url, props), None
        kerberos = props.get("hadoop.security.authentication", "").lower() == "kerberos"
    for base in bases:
        try:
            beans = json.loads(_get(base + _JMX, session, kerberos))["beans"]
            return int(beans[0]["NumLiveDataNodes"])
        except Exception as exc:  # any failure: the cap is best effort, the write goes on uncapped
            logger.debug("%s: no live DataNode count from %s (%s: %s)", url, base, type(exc).__name__, exc)
    return None


def namenode_http_addresses(url: str, props: Mapping[str, str]) -> list[str]:
    """``http[s]://host:port`` of each NameNode behind an ``hdfs://`` ``url`` under ``props``. Pure.

    ``dfs.namenode.http-address[.<ns>.<nn>]`` (``https-`` under ``dfs.http.policy=HTTPS_ONLY``),
    else the RPC host on port 9870 (9871). ``[]`` for a URL with no NameNodes.
    """
    https = props.get("dfs.http.policy", "").upper() == "HTTPS_ONLY"
    kind, port = ("https", 9871) if https else ("http", 9870)
    try:
        nodes = namenodes(url, props)
    except ValueError:
        return []
    out = []
    for node in nodes:
        key = f"dfs.namenode.{kind}-address"
        if node.nameservice and node.node_id:
            key = f"{key}.{node.nameservice}.{node.node_id}"
        address = props.get(key) or f"{node.host}:{port}"
        host, _, number = address.rpartition(":")
        if host in ("0.0.0.0", ""):  # a wildcard bind address: the RPC host serves it
            address = f"{node.host}:{number}"
        out.append(f"{kind}://{address}")
    return out


def _get(url: str, session: Any, kerberos: bool) -> bytes:
    if session is not None:  # WebHDFS's own session: its auth (SPNEGO, a user name) comes along
        resp = session.get(url, timeout=_HTTP_TIMEOUT_S)
        resp.raise_for_status()
        return bytes(resp.content)
    if kerberos:
        import requests
        from requests_kerberos import OPTIONAL, HTTPKerberosAuth

        resp = requests.get(url, auth=HTTPKerberosAuth(mutual_authentication=OPTIONAL), timeout=_HTTP_TIMEOUT_S)
        resp.raise_for_status()
        return bytes(resp.content)
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"not an HTTP URL: {url}")
    with urllib.request.urlopen(url, timeout=_HTTP_TIMEOUT_S) as reply:
        return bytes(reply.read())
