"""Benchmark: pack and unpack (with verification) of a synthetic model version.

Usage: python bench/archive.py [MiB]   (default 256). Prints one line per
format and a JSON summary as the last line. Not a test: no assertions.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time

from hdfs_models import pack, unpack
from hdfs_models._manifest import MANIFEST_NAME, build_manifest


def make_version(root: str, mib: int) -> None:
    os.makedirs(os.path.join(root, "variables"))
    os.makedirs(os.path.join(root, "assets"))
    with open(os.path.join(root, "saved_model.pb"), "wb") as fh:
        fh.write(os.urandom(1 << 20))
    with open(os.path.join(root, "variables", "variables.index"), "wb") as fh:
        fh.write(os.urandom(4096))
    with open(os.path.join(root, "variables", "variables.data-00000-of-00001"), "wb") as fh:
        for _ in range(mib):
            fh.write(os.urandom(1 << 20))
    with open(os.path.join(root, MANIFEST_NAME), "wb") as fh:
        fh.write(build_manifest(root, "bench", 1).to_json())


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    work = tempfile.mkdtemp(prefix="bench-archive-")
    results = {"mib": mib}
    try:
        src = os.path.join(work, "1")
        make_version(src, mib)
        for fmt in ("tar", "tar.gz", "zip"):
            out = os.path.join(work, f"m.{fmt}")
            t0 = time.perf_counter()
            pack(src, out, fmt)
            t1 = time.perf_counter()
            unpack(out, os.path.join(work, f"dest-{fmt}"))
            t2 = time.perf_counter()
            results[fmt] = {
                "pack_s": round(t1 - t0, 3),
                "unpack_verify_s": round(t2 - t1, 3),
                "pack_mib_s": round(mib / (t1 - t0), 1),
                "unpack_mib_s": round(mib / (t2 - t1), 1),
            }
            print(
                f"{fmt:7s} pack {t1 - t0:6.2f}s ({mib / (t1 - t0):6.1f} MiB/s)  "
                f"unpack+verify {t2 - t1:6.2f}s ({mib / (t2 - t1):6.1f} MiB/s)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    main()
