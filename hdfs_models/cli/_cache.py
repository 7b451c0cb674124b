"""CLI commands of the node cache: ``fetch`` and ``gc``.

``hdfs-models fetch URL [--version V] [--cache DIR]`` localizes a version and
prints its local path (progress in bytes and MB/s on stderr when stderr is a
terminal). ``hdfs-models gc [--max-versions N] [--max-bytes B] [--cache DIR]`` sweeps
dead downloads and evicts least recently used entries nobody uses.
``hdfs-models gc --store BASE [--older-than 1h] [--dry-run]`` removes the
``_tmp-*`` dirs killed publishers left under a base dir on the store, never
one touched within the bound (:mod:`hdfs_models._store_gc`, RELIABILITY F13).
"""

from __future__ import annotations

import argparse
from typing import Any

from hdfs_models._store_gc import sweep_store
from hdfs_models._versions import resolve
from hdfs_models.cache import cache_root, evict, localize
from hdfs_models.cli._frame import add_command, add_store_options, progress_bar, storage_options

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Register ``fetch`` and ``gc`` on the hdfs-models parser."""
    fetch = add_command(
        subparsers,
        "fetch",
        _fetch,
        _render_fetch,
        help="download a model version into the node cache; print its local path",
    )
    fetch.add_argument("url", help="base dir (BASE/<n>/ layout) or version dir URL")
    fetch.add_argument("--version", default="latest", help="'latest' (default) or an integer")
    fetch.add_argument("--cache", default=None, metavar="DIR", help="cache root (default: $HDFS_MODELS_CACHE, ...)")
    add_store_options(fetch)
    collect = add_command(
        subparsers, "gc", _gc, _render_gc, help="remove dead downloads and evict cached versions nobody uses"
    )
    collect.add_argument(
        "--max-versions", type=_non_negative, default=None, metavar="N", help="keep at most N versions"
    )
    collect.add_argument("--max-bytes", type=_non_negative, default=None, metavar="B", help="keep at most B bytes")
    collect.add_argument("--cache", default=None, metavar="DIR", help="cache root (default: $HDFS_MODELS_CACHE, ...)")
    collect.add_argument(
        "--store",
        default=None,
        metavar="BASE",
        help="instead of the node cache: remove publishers' stale _tmp-* dirs under BASE",
    )
    collect.add_argument(
        "--older-than",
        type=duration,
        default=None,
        metavar="AGE",
        help="--store: only temps untouched for longer than AGE (e.g. 90s, 30m, 1h, 2d; default 1h)",
    )
    collect.add_argument("--dry-run", action="store_true", help="--store: report what would be removed, remove nothing")
    add_store_options(collect)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``30m``, ``1h`` or ``2d`` (argparse type)."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    try:
        value = float(number) * _UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 90s, 30m, 1h, 2d)") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _fetch(args: argparse.Namespace) -> dict[str, Any]:
    options = storage_options(args)
    pinned = resolve(args.url, args.version, storage_options=options)
    bar = progress_bar(args)
    try:
        model = localize(args.url, cache_dir=args.cache, pinned=pinned, progress=bar, storage_options=options)
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
    if args.store is not None:
        return _gc_store(args)
    if args.older_than is not None or args.dry_run or args.storage_option:
        raise ValueError(
            "--older-than, --dry-run and -o apply to --store BASE (the node cache is swept by --max-versions/--max-bytes)"
        )
    root = cache_root(args.cache)
    removed = evict(root, max_versions=args.max_versions, max_bytes=args.max_bytes)
    return {"root": root, "removed": removed}


def _gc_store(args: argparse.Namespace) -> dict[str, Any]:
    if args.max_versions is not None or args.max_bytes is not None or args.cache is not None:
        raise ValueError("--max-versions, --max-bytes and --cache apply to the node cache, not to --store")
    older_than = 3600.0 if args.older_than is None else args.older_than
    temps = sweep_store(args.store, older_than, dry_run=args.dry_run, storage_options=storage_options(args))
    return {
        "store": args.store,
        "older_than": older_than,
        "dry_run": args.dry_run,
        "temps": [t.to_json() for t in temps],
    }


def _render_gc(result: dict[str, Any]) -> str:
    if "store" in result:
        return _render_gc_store(result)
    if not result["removed"]:
        return f"nothing evicted from {result['root']}"
    return "\n".join(f"evicted {path}" for path in result["removed"])


def _render_gc_store(result: dict[str, Any]) -> str:
    verb = "would remove" if result["dry_run"] else "removed"
    lines = []
    for temp in result["temps"]:
        age = "age unknown" if temp["age"] is None else f"untouched {temp['age']:.0f}s"
        lines.append(f"{verb if temp['removed'] else 'kept'} {temp['url']} ({age}, {temp['bytes']} bytes)")
    gone = sum(t["removed"] for t in result["temps"])
    lines.append(
        f"{gone} of {len(result['temps'])} temp(s) under {result['store']} {verb} "
        f"(older than {result['older_than']:.0f}s)"
    )
    return "\n".join(lines)
