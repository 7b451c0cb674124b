"""import_tensorflow's kernel rule: oneDNN on x86-64 unless the environment says otherwise.

TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, while loading, so each case is a fresh process.
"""

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"), reason="the rule is for x86-64 CPUs only"
)

PROBE = """
import json, os
from hdfs_models._signatures import import_tensorflow
import_tensorflow()
from tensorflow.python.util import _pywrap_util_port
print(json.dumps({"env": os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "onednn": _pywrap_util_port.IsMklEnabled()}))
"""


def probe(**env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    done = subprocess.run([sys.executable, "-c", PROBE], env={**base, **env}, capture_output=True, text=True,
                          timeout=300, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_onednn_kernels_are_on_when_the_environment_is_silent():
    # TensorFlow itself turns them on only on CPUs with AVX-512 VNNI, BF16 or AMX.
    assert probe() == {"env": "1", "onednn": True}


def test_the_environment_wins_over_the_rule():
    assert probe(TF_ENABLE_ONEDNN_OPTS="0") == {"env": "0", "onednn": False}
