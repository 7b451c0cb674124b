"""P4: a model with a 2.5 GiB variables shard, end to end on MiniDFS (replication 1).

publish → localize (verified) → ``hdfs-models verify`` on the store → zip
(zip64) and tar pack/unpack → the scorer loads it and scores. Each step runs
in its own child process, so its wall time and peak memory (the child's
``VmHWM``) are its own; they are printed and recorded as junit
properties (the figures of the closing note). Run once: it writes about
15 GiB of disk and takes minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import time
import zipfile

import pytest

from hdfs_models.testing import MiniDFS, missing_tools
from hdfs_models.testing.pytest_plugin import require_module, require_or_skip

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHARD_BYTES = 2_684_354_560  # 2.5 GiB of float32: 671,088,640 values in one variable
NEEDED_DISK = 8 * SHARD_BYTES

MAKE_MODEL = """
import numpy as np, tensorflow as tf
n = {n}
class Big(tf.Module):
    def __init__(self):
        self.big = tf.Variable(tf.range(n, dtype=tf.float32) * 1e-9, name="big")
    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
    def serve(self, x):
        head = tf.reshape(self.big[:4], [4, 1])
        tail = self.big[n - 1]  # the last value: the whole shard must be there
        return {{"y": tf.matmul(x, head) + tail}}
m = Big()
tf.saved_model.save(m, {out!r}, signatures={{"serving_default": m.serve}})
"""

PUBLISH = "from hdfs_models import publish; publish({src!r}, {base!r}, signatures=False)"
LOCALIZE = """
from hdfs_models import localize
m = localize({base!r}, cache_dir={cache!r})
print(m.path)
"""
PACK = "from hdfs_models.archive import pack; pack({base!r}, {out!r}, format={fmt!r})"
UNPACK = "from hdfs_models.archive import unpack; unpack({archive!r}, {dest!r})"
SCORE = """
import json, numpy as np, pyarrow as pa
from scoring import Scorer
x = np.ones((3, 4), np.float32)
features = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 4)
batch = pa.RecordBatch.from_arrays([features], names=["x"])
out = list(Scorer({base!r}, batch_size=3, returns="probabilities").predict_arrow([batch]))
print(json.dumps(out[0].column("prediction").to_pylist()))
"""


#: Run at the exit of every step: its own peak resident memory (VmHWM is per address space and
#: starts again at exec, unlike ru_maxrss, which a vforked child inherits from this process).
_PEAK = (
    "import atexit as _a, sys as _s\n"
    "_a.register(lambda: _s.stderr.write('\\nP4_PEAK_KB=' + open('/proc/self/status').read().split('VmHWM:')[1].split()[0]))\n"
)


_ZIP64 = 0x0001  # the header id of the zip64 extended information extra field


def _extra_ids(extra: bytes) -> list[int]:
    ids, at = [], 0
    while at + 4 <= len(extra):
        header, size = struct.unpack("<HH", extra[at : at + 4])
        ids.append(header)
        at += 4 + size
    return ids


def _step(name: str, code: str, env: dict[str, str], record_property, steps: dict) -> str:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _PEAK + textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=1800
    )
    seconds = time.monotonic() - started
    assert done.returncode == 0, f"{name} failed ({done.returncode}):\n{done.stderr[-4000:]}"
    peak_kb = int(done.stderr.rsplit("P4_PEAK_KB=", 1)[1].split()[0])
    steps[name] = {"seconds": round(seconds, 1), "peak_rss_mib": round(peak_kb / 1024)}
    record_property(f"p4_{name}", json.dumps(steps[name]))
    print(f"P4 {name}: {steps[name]}", file=sys.stderr)
    return done.stdout


def _cli(args: list[str], env: dict[str, str], name: str, record_property, steps: dict) -> dict:
    code = f"import sys; from hdfs_models.cli import main; sys.argv = {['hdfs-models', *args]!r}; sys.exit(main())"
    return json.loads(_step(name, code, env, record_property, steps))


@pytest.mark.timeout(2400)
def test_a_model_with_a_2_5_gib_shard_goes_through_every_step_p4(tmp_path, record_property):
    require_module("tensorflow", "tf")
    free = shutil.disk_usage(tmp_path).free
    if free < NEEDED_DISK:
        require_or_skip(f"P4 needs {NEEDED_DISK >> 30} GiB free under {tmp_path}, {free >> 30} GiB are free")
    missing = missing_tools()
    if missing:
        require_or_skip(missing)
    steps: dict[str, dict] = {}
    with MiniDFS(datanodes=1, replication=1, block_size=256 << 20, java_opts=("-Xmx2g",)) as dfs:
        env = {**os.environ, **dfs.env(), "TF_CPP_MIN_LOG_LEVEL": "2"}
        src, base = str(tmp_path / "model"), f"{dfs.url}/models/big"
        _step("make_model", MAKE_MODEL.format(n=SHARD_BYTES // 4, out=src), env, record_property, steps)
        shards = [f for f in os.listdir(os.path.join(src, "variables")) if f.startswith("variables.data")]
        assert max(os.path.getsize(os.path.join(src, "variables", f)) for f in shards) > SHARD_BYTES
        _step("publish", PUBLISH.format(src=src, base=base), env, record_property, steps)
        local = _step(
            "localize", LOCALIZE.format(base=base, cache=str(tmp_path / "cache")), env, record_property, steps
        )
        shard = max(shards, key=lambda f: os.path.getsize(os.path.join(src, "variables", f)))
        assert os.path.getsize(os.path.join(local.strip(), "variables", shard)) > SHARD_BYTES
        report = _cli(["verify", base, "--json"], env, "verify", record_property, steps)
        assert report["ok"] is True, report
        shutil.rmtree(tmp_path / "cache")
        for fmt in ("zip", "tar"):
            archive = str(tmp_path / f"big.{fmt}")
            _step(f"pack_{fmt}", PACK.format(base=base, out=archive, fmt=fmt), env, record_property, steps)
            if fmt == "zip":  # deflated (the values compress well), so the member's own record must be zip64
                with zipfile.ZipFile(archive) as zf:
                    member = zf.getinfo(f"variables/{shard}")
                assert member.file_size > SHARD_BYTES and _ZIP64 in _extra_ids(member.extra)
            else:
                assert os.path.getsize(archive) > SHARD_BYTES
            dest = str(tmp_path / f"unpacked-{fmt}")
            _step(f"unpack_{fmt}", UNPACK.format(archive=archive, dest=dest), env, record_property, steps)
            assert os.path.getsize(os.path.join(dest, "variables", shard)) == os.path.getsize(
                os.path.join(src, "variables", shard)
            )
            os.unlink(archive)
            shutil.rmtree(dest)
        env["HDFS_MODELS_CACHE"] = str(tmp_path / "score-cache")
        scored = json.loads(_step("score", SCORE.format(base=base), env, record_property, steps))
    n = SHARD_BYTES // 4
    expected = (0 + 1 + 2 + 3) * 1e-9 + (n - 1) * 1e-9
    values = [row[0] if isinstance(row, list) else row for row in scored]  # y, [None, 1]: one value a row
    assert values == pytest.approx([expected] * 3, rel=1e-4)
    print("P4 steps:", json.dumps(steps), file=sys.stderr)
