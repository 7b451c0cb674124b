"""Odd model, large: one variables file over 2 GiB through localize, pack and unpack on MiniDFS.

Too slow for the test suite (about 2.2 GB written to HDFS and then 3 local
copies), so it runs here and checks as it measures: it exits 1 unless every
copy is byte-identical. Starts its own MiniDFSCluster (1 DataNode,
replication 1, 128 MiB blocks, so 17 blocks for the data file), writes a
version the way a plain ``hdfs dfs -put`` would (no manifest: the cache
verifies sizes, this script the sha256), then:

1. ``localize`` (cold) — MB/s and the data file's sha256;
2. ``pack`` of the localized dir into a tar (the archive strategy's step);
3. ``unpack`` of that tar (verified against the MANIFEST.json pack writes).

Sizes cross 2 GiB and 2^31 offsets, where 32-bit lengths in a client, the tar
header (octal size field) or a read loop would break.

    python bench/huge_model.py [--gib 2.1] [--keep-dir DIR]

Prints one line per step and the JSON figures as the last line; writes
``bench/results/huge_model-<UTC date>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = "variables/variables.data-00000-of-00001"
MB = 1_000_000
CHUNK = 8 << 20


def _chunks(total: int) -> Iterator[bytes]:
    """Deterministic bytes: a random 8 MiB block, each chunk stamped with its index (no two alike)."""
    block = bytearray(os.urandom(CHUNK))
    done = 0
    index = 0
    while done < total:
        block[:8] = index.to_bytes(8, "big")
        piece = bytes(block[: min(CHUNK, total - done)])
        yield piece
        done += len(piece)
        index += 1


def _sha_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_version(fs: Any, version_dir: str, total: int) -> str:
    """A manifest-less version on HDFS (replication 1); returns the data file's sha256."""
    from hdfs_models.testing import fake_model_files

    small = fake_model_files(data_bytes=16)
    for rel, data in small.items():
        if rel != DATA:
            fs.makedirs(f"{version_dir}/{rel}".rsplit("/", 1)[0], exist_ok=True)
            with fs.open(f"{version_dir}/{rel}", "wb", replication=1) as fh:
                fh.write(data)
    digest = hashlib.sha256()
    with fs.open(f"{version_dir}/{DATA}", "wb", replication=1, block_size=128 << 20) as fh:
        for piece in _chunks(total):
            digest.update(piece)
            fh.write(piece)
    return digest.hexdigest()


def _timed(label: str, nbytes: int, fn: Any) -> tuple[Any, float]:
    start = time.monotonic()
    result = fn()
    seconds = time.monotonic() - start
    print(f"{label:<10} {nbytes / MB:9.0f} MB in {seconds:7.1f} s = {nbytes / MB / seconds:7.1f} MB/s", flush=True)
    return result, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--gib", type=float, default=2.1, help="size of the variables file in GiB (default 2.1)")
    parser.add_argument("--keep-dir", default=None, help="work dir to keep (default: a temp dir, removed)")
    args = parser.parse_args(argv)
    from hdfs_models import localize, pack, unpack
    from hdfs_models.testing import MiniDFS

    total = int(args.gib * (1 << 30))
    work = args.keep_dir or tempfile.mkdtemp(prefix="hdfs-models-huge-")
    os.makedirs(work, exist_ok=True)
    figures: dict[str, Any] = {"bytes": total, "utc": datetime.datetime.now(datetime.timezone.utc).isoformat()}
    try:
        with MiniDFS(datanodes=1, replication=1, block_size=128 << 20, base_dir=os.path.join(work, "dfs")) as dfs:
            os.environ.update(dfs.env())
            base = f"{dfs.url}/models/huge"
            expected, figures["write_s"] = _timed(
                "hdfs put", total, lambda: _write_version(dfs.fs(), "/models/huge/1", total)
            )
            figures["blocks"] = len(dfs.block_locations(f"/models/huge/1/{DATA}"))
            model, figures["localize_s"] = _timed(
                "localize", total, lambda: localize(base, cache_dir=os.path.join(work, "cache"))
            )
            got = {"localize": _sha_file(os.path.join(model.path, DATA))}
            tar, figures["pack_s"] = _timed("pack", total, lambda: pack(model.path, os.path.join(work, "huge.tar")))
            figures["tar_bytes"] = os.path.getsize(tar)
            out, figures["unpack_s"] = _timed("unpack", total, lambda: unpack(tar, os.path.join(work, "unpacked")))
            got["unpack"] = _sha_file(os.path.join(out, DATA))
            model.release()
    finally:
        if args.keep_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    figures["identical"] = all(value == expected for value in got.values())
    print(
        f"sha256 {expected[:16]}… localize {'ok' if got['localize'] == expected else 'MISMATCH'}, "
        f"unpack {'ok' if got['unpack'] == expected else 'MISMATCH'}; {figures['blocks']} HDFS blocks"
    )
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    name = f"huge_model-{datetime.date.today().isoformat()}.json"
    with open(os.path.join(HERE, "results", name), "w", encoding="utf-8") as fh:
        json.dump(figures, fh, indent=2)
    print(json.dumps(figures))
    return 0 if figures["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
