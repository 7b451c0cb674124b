"""CLI commands of the node cache: ``fetch`` and ``gc``.

``hdfs-models fetch URL [--version V] [--cache DIR]`` localizes a version and
prints its local path (progress in bytes and MB/s on stderr when stderr is a
terminal). ``hdfs-models gc [--keep N] [--max-bytes B] [--cache DIR]`` sweeps
dead downloads and evicts least recently used entries nobody uses.
"""

from __future__ import annotations

import argparse
from typing import Any

from hdfs_models import cli

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Register ``fetch`` and ``gc`` on the hdfs-models parser."""
    fetch = cli.add_command(subparsers, "fetch", _fetch, _render_fetch,
                            help="download a model version into the node cache; print its local path")
    fetch.add_argument("url", help="base dir (BASE/<n>/ layout) or version dir URL")
    fetch.add_argument("--version", default="latest", help="'latest' (default) or an integer")
    fetch.add_argument("--cache", default=None, metavar="DIR", help="cache root (default: $HDFS_MODELS_CACHE, ...)")
    collect = cli.add_command(subparsers, "gc", _gc, _render_gc,
                              help="remove dead downloads and evict cached versions nobody uses")
    collect.add_argument("--keep", type=_non_negative, default=None, metavar="N", help="keep at most N versions")
    collect.add_argument("--max-bytes", type=_non_negative, default=None, metavar="B", help="keep at most B bytes")
    collect.add_argument("--cache", default=None, metavar="DIR", help="cache root (default: $HDFS_MODELS_CACHE, ...)")


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _fetch(args: argparse.Namespace) -> dict[str, Any]:
    from hdfs_models._cache import localize
    from hdfs_models._versions import resolve

    pinned = resolve(args.url, args.version)
    bar = cli.progress_bar(args)
    try:
        model = localize(args.url, cache_dir=args.cache, pinned=pinned, progress=bar)
    finally:
        if bar is not None:
            bar.finish()
    model.release()  # the command only reports the path; it does not keep the entry in use
    return {
        "path": model.path,
        "name": model.name,
        "version": model.version,
        "digest": model.digest,
        "url": model.url,
        "bytes": pinned.total_bytes,
    }


def _render_fetch(result: dict[str, Any]) -> str:
    return str(result["path"])


def _gc(args: argparse.Namespace) -> dict[str, Any]:
    from hdfs_models._cache import gc
    from hdfs_models._config import cache_root

    root = cache_root(args.cache)
    removed = gc(root, keep=args.keep, max_bytes=args.max_bytes)
    return {"root": root, "removed": removed}


def _render_gc(result: dict[str, Any]) -> str:
    if not result["removed"]:
        return f"nothing evicted from {result['root']}"
    return "\n".join(f"evicted {path}" for path in result["removed"])
