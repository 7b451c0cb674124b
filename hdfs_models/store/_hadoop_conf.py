"""Reading a Hadoop client configuration directory (``HADOOP_CONF_DIR``). Pure but for file reads.

Hadoop's clients look for ``core-site.xml`` and ``hdfs-site.xml`` in
``HADOOP_CONF_DIR``, else in ``$HADOOP_HOME/etc/hadoop``; hdfs-native does the
same. This module answers the questions hdfs-models asks of that directory:
which properties are set, what the default file system is, and which
NameNode RPC addresses stand behind an ``hdfs://`` authority (a host:port, an
HA nameservice, or the links of a ``viewfs://`` mount table).
"""

from __future__ import annotations

import dataclasses
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_NAMENODE_PORT",
    "SITE_FILES",
    "NameNode",
    "client_properties",
    "conf_dir",
    "shipped_conf_dir",
    "namenodes",
    "read_site_file",
    "site_properties",
]

SITE_FILES = ("core-site.xml", "hdfs-site.xml")
DEFAULT_NAMENODE_PORT = 8020


@dataclasses.dataclass(frozen=True)
class NameNode:
    """One NameNode RPC address; ``key`` is the property (or URL) that named it."""

    host: str
    port: int
    key: str
    nameservice: str | None = None
    node_id: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


#: Where spark-submit on YARN puts the submitter's HADOOP_CONF_DIR files in every container.
SPARK_SHIPPED_CONF = os.path.join("__spark_conf__", "__hadoop_conf__")


def conf_dir(env: Mapping[str, str] = os.environ) -> str | None:
    """``HADOOP_CONF_DIR``, else ``$HADOOP_HOME/etc/hadoop``, else :func:`shipped_conf_dir`, else ``None``."""
    if env.get("HADOOP_CONF_DIR"):
        return env["HADOOP_CONF_DIR"]
    if env.get("HADOOP_HOME"):
        return os.path.join(env["HADOOP_HOME"], "etc", "hadoop")
    return shipped_conf_dir(env)


def shipped_conf_dir(env: Mapping[str, str] = os.environ, cwd: str | None = None) -> str | None:
    """In a YARN container that has neither ``HADOOP_CONF_DIR`` nor ``HADOOP_HOME``: the Hadoop
    configuration spark-submit shipped with the job (``__spark_conf__/__hadoop_conf__`` in the
    container's working directory, where Spark's Python workers run), if it holds a core-site.xml.

    A NodeManager passes its own ``HADOOP_CONF_DIR`` to containers only when it has one and
    ``yarn.nodemanager.env-whitelist`` lets it through; without any, an executor would not know
    that the cluster uses Kerberos, HA nameservices or viewfs mounts.
    """
    if env.get("HADOOP_CONF_DIR") or env.get("HADOOP_HOME") or not env.get("CONTAINER_ID"):
        return None
    path = os.path.abspath(os.path.join(cwd or os.getcwd(), SPARK_SHIPPED_CONF))
    return path if os.path.isfile(os.path.join(path, "core-site.xml")) else None


def read_site_file(path: str) -> dict[str, str]:
    """The ``<property>`` name → value pairs of one ``*-site.xml``.

    Raises ``OSError`` when it cannot be read and ``ValueError`` naming the
    path when it is not well-formed XML.
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{path}: not well-formed XML ({exc})") from exc
    out: dict[str, str] = {}
    for prop in root.iter("property"):
        name = (prop.findtext("name") or "").strip()
        if name:
            out[name] = (prop.findtext("value") or "").strip()
    return out


def client_properties(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """:func:`site_properties` of :func:`conf_dir`; ``{}`` when there is none or it cannot be read."""
    directory = conf_dir(env)
    if not directory or not os.path.isdir(directory):
        return {}
    try:
        return site_properties(directory)
    except (OSError, ValueError):
        return {}


def site_properties(directory: str) -> dict[str, str]:
    """Properties of ``directory``'s core-site.xml then hdfs-site.xml (later wins); absent files are skipped."""
    out: dict[str, str] = {}
    for name in SITE_FILES:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            out.update(read_site_file(path))
    return out


def _split_list(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    return host.strip("[]"), int(port)


def namenodes(url: str, props: Mapping[str, str]) -> list[NameNode]:
    """The NameNodes serving ``url`` (``hdfs://`` or ``viewfs://``) under ``props``. Pure.

    An authority listed in ``dfs.nameservices`` (or with a
    ``dfs.ha.namenodes.<ns>`` entry) expands to its HA NameNodes; a plain
    ``host[:port]`` is one NameNode (port 8020 by default); a ``viewfs://``
    mount table expands to the NameNodes of its ``hdfs://`` links. Raises
    ``ValueError`` naming the missing property when an HA NameNode has no
    RPC address, or when the URL has no authority and no default FS.
    """
    parts = urlsplit(url)
    scheme, authority = parts.scheme.lower(), parts.netloc
    if not authority:
        default = props.get("fs.defaultFS", "")
        if default and urlsplit(default).netloc and urlsplit(default).scheme.lower() == scheme:
            return namenodes(default, props)
        raise ValueError(f"{url}: no host in the URL and no {scheme}:// fs.defaultFS to take it from")
    if scheme == "viewfs":
        return _viewfs_namenodes(authority, props)
    if scheme != "hdfs":
        return []
    return _hdfs_namenodes(authority, props)


def _hdfs_namenodes(authority: str, props: Mapping[str, str]) -> list[NameNode]:
    ids_key = f"dfs.ha.namenodes.{authority}"
    if authority in _split_list(props.get("dfs.nameservices")) or ids_key in props:
        out = []
        ids = _split_list(props.get(ids_key))
        if not ids:
            raise ValueError(f"nameservice {authority}: {ids_key} is not set")
        for node_id in ids:
            key = f"dfs.namenode.rpc-address.{authority}.{node_id}"
            if not props.get(key):
                raise ValueError(f"nameservice {authority}: {key} is not set")
            host, port = _host_port(props[key], DEFAULT_NAMENODE_PORT)
            out.append(NameNode(host, port, key, nameservice=authority, node_id=node_id))
        return out
    host, port = _host_port(authority, DEFAULT_NAMENODE_PORT)
    return [NameNode(host, port, f"the address hdfs://{authority}")]


def _viewfs_namenodes(table: str, props: Mapping[str, str]) -> list[NameNode]:
    prefix = f"fs.viewfs.mounttable.{table}.link"
    out: list[NameNode] = []
    for key, target in sorted(props.items()):
        if not key.startswith(prefix) or not target.lower().startswith("hdfs://"):
            continue
        for node in _hdfs_namenodes(urlsplit(target).netloc, props):
            if node not in out:
                out.append(node)
    return out
