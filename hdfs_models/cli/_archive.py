"""``hdfs-models pack`` and ``hdfs-models unpack``.

``pack SOURCE OUT [--format tar|tar.gz|zip] [--version N]`` writes a
deterministic archive of one version (with its manifest) for
``spark-submit --archives OUT#alias``; ``unpack ARCHIVE DEST`` extracts one
safely into a new directory and verifies it. Paths are taken literally; no
shell is involved.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from hdfs_models._tree import sha256_file
from hdfs_models.archive import FORMATS, pack, unpack
from hdfs_models.cli._frame import add_command, add_store_options, progress_bar, storage_options

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Register ``pack`` and ``unpack`` on the hdfs-models parser."""
    p = add_command(
        subparsers,
        "pack",
        _pack,
        _render_pack,
        help="pack one model version (with its MANIFEST.json) into a reproducible tar, tar.gz or zip",
    )
    p.add_argument("source", help="local version dir, base dir or URL (hdfs://…/model[/N])")
    p.add_argument("out", help="local archive path to write")
    p.add_argument("--format", choices=FORMATS, default=None, help="default: from OUT's suffix, else tar")
    p.add_argument("--version", default="latest", help="version to pack when SOURCE is a base dir (default latest)")
    add_store_options(p)
    u = add_command(
        subparsers,
        "unpack",
        _unpack,
        _render_unpack,
        help="safely extract an archive into a new directory and verify it against its manifest",
    )
    u.add_argument("archive", help="local tar, tar.gz or zip")
    u.add_argument("dest", help="directory to create (must not exist)")
    u.add_argument(
        "--no-verify", action="store_true", help="skip the manifest check (links, traversal etc. are still refused)"
    )
    u.add_argument("--max-bytes", type=int, default=None, help="cap on total uncompressed bytes")
    u.add_argument("--max-members", type=int, default=None, help="cap on the member count")
    u.add_argument("--max-ratio", type=float, default=None, help="cap on the compression ratio")


def format_for(out: str, explicit: str | None) -> str:
    """The archive format: explicit, else from the output suffix, else ``tar``. Pure."""
    if explicit:
        return explicit
    if out.endswith((".tar.gz", ".tgz")):
        return "tar.gz"
    if out.endswith(".zip"):
        return "zip"
    return "tar"


def _pack(args: argparse.Namespace) -> dict[str, Any]:
    fmt = format_for(args.out, args.format)
    version: int | str = int(args.version) if str(args.version).isdigit() else args.version
    bar = progress_bar(args)
    try:
        out = pack(args.source, args.out, fmt, version=version, progress=bar, storage_options=storage_options(args))
    finally:
        if bar is not None:
            bar.finish()
    return {"archive": out, "format": fmt, "bytes": os.path.getsize(out), "sha256": sha256_file(out)}


def _render_pack(result: dict[str, Any]) -> str:
    return f"packed {result['archive']} ({result['format']}, {result['bytes']} bytes, sha256 {result['sha256']})"


def _unpack(args: argparse.Namespace) -> dict[str, Any]:
    bar = progress_bar(args)
    try:
        dest = unpack(
            args.archive,
            args.dest,
            verify=not args.no_verify,
            max_bytes=args.max_bytes,
            max_members=args.max_members,
            max_ratio=args.max_ratio,
            progress=bar,
        )
    finally:
        if bar is not None:
            bar.finish()
    files = sum(len(names) for _, _, names in os.walk(dest))
    return {"archive": args.archive, "dest": dest, "files": files, "verified": not args.no_verify}


def _render_unpack(result: dict[str, Any]) -> str:
    state = "verified" if result["verified"] else "NOT verified"
    return f"unpacked {result['archive']} into {result['dest']} ({result['files']} files, {state})"
