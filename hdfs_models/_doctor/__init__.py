"""``hdfs-models doctor``: what breaks on real clusters, checked one line at a time.

Each check is a small function of a :class:`World` (environment, clocks,
processes, sockets, files: the real machine by default) returning one
:class:`Check`: ``ok``, ``warn``, ``fail`` (with its fix) or ``skip``.
:func:`run_checks` runs them in a fixed order; the command exits 1 when one
fails. Nothing here imports TensorFlow, pyspark or pyarrow: versions come
from package metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hdfs_models._doctor._hadoop import hadoop_conf, kerberos, namenode_checks, parse_klist, token_file
from hdfs_models._doctor._host import bfloat16, cache_root_check, cache_space, java, package_versions
from hdfs_models._doctor._world import Check, Status, World
from hdfs_models._versions import PinnedVersion, resolve
from hdfs_models.cache import cache_root
from hdfs_models.errors import (
    HdfsModelsError,
    MissingExtraError,
    ModelNotFoundError,
    StoreAuthError,
    StorePermissionError,
    UnsupportedProtocolError,
)

__all__ = ["Check", "Status", "World", "exit_status", "model_check", "parse_klist", "render", "run_checks"]

Resolver = Callable[..., PinnedVersion]


def _fix_for(exc: BaseException, url: str) -> str:
    if isinstance(exc, ModelNotFoundError):
        return f"check the URL and version; `hdfs-models versions {url}` lists the versions"
    if isinstance(exc, StoreAuthError):
        return "kinit (or kinit -kt KEYTAB PRINCIPAL), or set HADOOP_TOKEN_FILE_LOCATION to a token file"
    if isinstance(exc, StorePermissionError):
        return "ask for read access to the model directory, or run as a user who has it"
    if isinstance(exc, MissingExtraError):
        return f"pip install '{exc.extra}'"
    if isinstance(exc, UnsupportedProtocolError):
        return "use a supported URL scheme"
    return "see the message; rerun with -v for the client's log"


def model_check(
    url: str, version: str, storage_options: Mapping[str, Any] | None = None, resolver: Resolver = resolve
) -> tuple[Check, int | None]:
    """Resolve ``version`` of the model at ``url``; the check and the version's size in bytes."""
    try:
        pinned = resolver(url, version, storage_options=dict(storage_options or {}))
    except (HdfsModelsError, OSError, ValueError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        return Check("model", "fail", message, _fix_for(exc, url)), None
    kind = "manifest" if pinned.manifest is not None else "no manifest"
    return Check(
        "model",
        "ok",
        f"{pinned.url}: version {pinned.version}, {len(pinned.files)} files, {pinned.total_bytes} bytes ({kind})",
    ), pinned.total_bytes


def run_checks(
    url: str | None = None,
    *,
    version: str = "latest",
    cache: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    world: World | None = None,
    resolver: Resolver = resolve,
) -> list[Check]:
    """Every check, in report order. ``url`` adds the NameNodes behind it and the model itself.

    Without ``url`` the NameNodes of the default FS are checked. The model
    is not resolved when no NameNode answered (that would only wait out the
    client's failover).
    """
    world = world or World()
    conf, props = hadoop_conf(world)
    checks = [conf, kerberos(props, world), token_file(world)]
    nodes = namenode_checks(url, props, world)
    checks += nodes
    needed = None
    if url is not None:
        if any(c.status == "fail" for c in nodes):
            checks.append(Check("model", "skip", f"{url}: not resolved, its NameNode did not answer"))
        else:
            check, needed = model_check(url, version, storage_options, resolver)
            checks.append(check)
    root = cache_root(cache, world.env)
    checks += [cache_root_check(root, world), cache_space(root, needed, world)]
    return checks + package_versions(world) + [bfloat16(world), java(world)]


def exit_status(checks: Sequence[Check]) -> int:
    """1 when a check failed, else 0."""
    return 1 if any(c.status == "fail" for c in checks) else 0


def render(checks: Sequence[Check]) -> str:
    """One line per check: ``STATUS name: detail (fix: ...)``."""
    lines = []
    for c in checks:
        fix = f" (fix: {c.fix})" if c.fix and c.status in ("warn", "fail") else ""
        lines.append(f"{c.status.upper():<4} {c.name}: {c.detail}{fix}")
    return "\n".join(lines)
