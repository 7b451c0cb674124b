"""CLI commands ``publish``, ``versions``, ``verify`` and ``inspect``.

Each handler returns a JSON-able dict (printed as is with ``--json``) and
its renderer turns that into text. Failures raise :mod:`hdfs_models.errors`
exceptions; the frame in :mod:`hdfs_models.cli` prints them on one line
and exits 1. TensorFlow is imported only by ``inspect``, and only when the
signatures are not in a manifest.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from hdfs_models._manifest import MANIFEST_NAME, Manifest, walk_local
from hdfs_models._publish import publish
from hdfs_models._savedmodel import check_local_model, local_model_dir
from hdfs_models._signatures import format_signatures, version_signatures
from hdfs_models._tree import compare_tree, sha256_file
from hdfs_models._versions import PinnedVersion, list_tree, list_versions, resolve
from hdfs_models.cli._frame import add_command, add_store_options, progress_bar, storage_options
from hdfs_models.errors import IntegrityError
from hdfs_models.store import open_store, translate_errors

__all__ = ["register"]

_CHUNK = 4 << 20


def register(subparsers: Any) -> None:
    """Register ``publish``, ``versions``, ``verify`` and ``inspect``."""
    p = add_command(
        subparsers,
        "publish",
        _publish,
        _render_publish,
        help="publish a local SavedModel dir as BASE/<next version>/ (atomic)",
    )
    p.add_argument("local", metavar="LOCAL", help="local SavedModel directory")
    p.add_argument("base", metavar="BASE", help="base URL, e.g. hdfs://nn:8020/models/mnist")
    p.add_argument("--name", help="model name recorded in the manifest (default: last part of BASE)")
    p.add_argument("--no-signatures", action="store_true", help="do not read signatures with TensorFlow")
    p.add_argument(
        "--replication",
        type=int,
        metavar="N",
        help="HDFS replication of every file written (default: HDFS_MODELS_REPLICATION, else 10, "
        "MapReduce's job-jar replication; at most the DataNode count on a small cluster)",
    )
    add_store_options(p)
    p = add_command(
        subparsers,
        "versions",
        _versions,
        _render_versions,
        help="list the integer versions under BASE and whether each is complete",
    )
    p.add_argument("base", metavar="BASE")
    add_store_options(p)
    p = add_command(
        subparsers,
        "verify",
        _verify,
        _render_verify,
        help="check a local dir or a store version against its manifest (or completeness)",
    )
    p.add_argument("target", metavar="URL|LOCAL")
    p.add_argument("--version", default="latest", help="version to check when URL is a base dir")
    p.add_argument("--strict", action="store_true", help="fail on files the manifest does not list")
    add_store_options(p)
    p = add_command(
        subparsers,
        "inspect",
        _inspect,
        _render_inspect,
        help="show the serving signatures (like saved_model_cli show --all)",
    )
    p.add_argument("target", metavar="URL|LOCAL")
    p.add_argument("--version", default="latest")
    add_store_options(p)


# -- publish -----------------------------------------------------------------


def _publish(args: argparse.Namespace) -> dict[str, Any]:
    bar = progress_bar(args)
    started = time.monotonic()
    try:
        pinned = publish(
            args.local,
            args.base,
            name=args.name,
            storage_options=storage_options(args),
            progress=bar,
            signatures=not args.no_signatures,
            replication=args.replication,
        )
    finally:
        if bar is not None:
            bar.finish()
    seconds = time.monotonic() - started
    return {
        **_pinned_json(pinned),
        "seconds": round(seconds, 3),
        "mb_per_s": round(pinned.total_bytes / max(seconds, 1e-6) / 1e6, 2),
    }


def _pinned_json(pinned: PinnedVersion) -> dict[str, Any]:
    return {
        "url": pinned.url,
        "name": pinned.name,
        "version": pinned.version,
        "digest": pinned.digest,
        "files": len(pinned.files),
        "total_bytes": pinned.total_bytes,
        "manifest": pinned.manifest is not None,
    }


def _render_publish(result: dict[str, Any]) -> str:
    return (
        f"published {result['url']} (version {result['version']}, {result['files']} files, "
        f"{result['total_bytes']} bytes, {result['mb_per_s']} MB/s)\ndigest {result['digest']}"
    )


# -- versions ----------------------------------------------------------------


def _versions(args: argparse.Namespace) -> dict[str, Any]:
    options = storage_options(args)
    every = list_versions(args.base, storage_options=options, complete_only=False)
    complete = set(list_versions(args.base, storage_options=options)) if every else set()
    return {
        "base": args.base,
        "versions": [{"version": v, "complete": v in complete} for v in every],
        "latest": max(complete) if complete else None,
    }


def _render_versions(result: dict[str, Any]) -> str:
    if not result["versions"]:
        return f"{result['base']}: no versions"
    lines = [f"{v['version']}{'' if v['complete'] else '  (incomplete)'}" for v in result["versions"]]
    return "\n".join(lines + [f"latest: {result['latest']}"])


# -- verify ------------------------------------------------------------------


def _compare(
    where: str, manifest: Manifest, sizes: Mapping[str, int], sha256: Callable[[str], str], strict: bool
) -> dict[str, Any]:
    """Check sizes then hashes of the files found (path → size) against ``manifest``."""
    mismatch = compare_tree(manifest.files, sizes, sha256, ignore=(MANIFEST_NAME,))
    problems = [f"missing {path}" for path in mismatch.missing] + [f"{path}: {what}" for path, what in mismatch.wrong]
    problems.sort(key=lambda text: text.removeprefix("missing "))
    if strict:
        problems += [f"unlisted file {name}" for name in mismatch.extra]
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise IntegrityError(
            f"{where}: does not match its manifest: {problems[0]}{more}",
            url=where,
            reason="manifest mismatch",
            problems=problems,
        )
    return {
        "target": where,
        "ok": True,
        "checked": "manifest",
        "files": len(manifest.files),
        "total_bytes": manifest.total_bytes,
        "digest": manifest.digest,
        "extra": list(mismatch.extra),
    }


def _verify_local(path: str, strict: bool) -> dict[str, Any]:
    manifest_path = os.path.join(path, MANIFEST_NAME)
    if not os.path.exists(manifest_path):
        sizes, _ = check_local_model(path)
        return {
            "target": path,
            "ok": True,
            "checked": "completeness",
            "files": len(sizes),
            "total_bytes": sum(sizes.values()),
            "digest": None,
            "extra": [],
        }
    with open(manifest_path, "rb") as fh:
        manifest = Manifest.from_json(fh.read(), manifest_path)
    sizes, _ = walk_local(path)
    result = _compare(path, manifest, sizes, lambda rel: sha256_file(os.path.join(path, *rel.split("/"))), strict)
    check_local_model(path)
    return result


def _verify_store(url: str, version: str, options: dict[str, str], strict: bool) -> dict[str, Any]:
    pinned = resolve(url, version, storage_options=options)
    if pinned.manifest is None:  # resolve already checked completeness
        return {
            "target": pinned.url,
            "ok": True,
            "checked": "completeness",
            "files": len(pinned.files),
            "total_bytes": pinned.total_bytes,
            "digest": pinned.digest,
            "extra": [],
        }
    fs, path = open_store(pinned.url, options)
    files, _ = list_tree(fs, path, pinned.url)
    sizes = {f.path: f.size for f in files}
    return {
        **_compare(pinned.url, pinned.manifest, sizes, _store_sha256(fs, path, pinned.url), strict),
        "version": pinned.version,
    }


def _store_sha256(fs: Any, root: str, url: str) -> Callable[[str], str]:
    """rel path → sha256 of the store file ``root/rel``, read in chunks."""

    def digest(rel: str) -> str:
        sha = hashlib.sha256()
        path = f"{root.rstrip('/')}/{rel}"
        with translate_errors(url, f"reading {path}"), fs.open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                sha.update(chunk)
        return sha.hexdigest()

    return digest


def _verify(args: argparse.Namespace) -> dict[str, Any]:
    path = local_model_dir(args.target)
    if path is not None:
        return _verify_local(path, args.strict)
    return _verify_store(args.target, args.version, storage_options(args), args.strict)


def _render_verify(result: dict[str, Any]) -> str:
    extra = f"; {len(result['extra'])} unlisted file(s): {', '.join(result['extra'])}" if result["extra"] else ""
    return (
        f"ok: {result['target']} ({result['checked']}, {result['files']} files, {result['total_bytes']} bytes){extra}"
    )


# -- inspect -----------------------------------------------------------------


def _inspect(args: argparse.Namespace) -> dict[str, Any]:
    pinned = resolve(args.target, args.version, storage_options=storage_options(args))
    source = "manifest" if pinned.signatures else "saved_model.pb"
    signatures = version_signatures(pinned, storage_options(args))
    return {"url": pinned.url, "version": pinned.version, "source": source, "signatures": signatures}


def _render_inspect(result: dict[str, Any]) -> str:
    head = f"{result['url']} (version {result['version']}, signatures from {result['source']})"
    return f"{head}\n\n{format_signatures(result['signatures'])}"
