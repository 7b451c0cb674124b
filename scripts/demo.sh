#!/usr/bin/env bash
# The demo on embedded defaults: start MiniDFS and local Spark, publish a model
# to HDFS, fetch it once per node, score, print the figures, stop everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-env.sh
PY=${PYTHON:-python3}
export PYSPARK_PYTHON="$("$PY" -c 'import sys; print(sys.executable)')"
export SPARK_LOCAL_IP=127.0.0.1
exec "$PY" examples/demo.py "$@"
