#!/usr/bin/env bash
# The demo on embedded defaults: start MiniDFS and local Spark, publish a model
# to HDFS, fetch it once per node, score, print the figures, stop everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-env.sh
# demo.py itself points PYSPARK_PYTHON at its interpreter and keeps Spark on loopback.
exec "${PYTHON:-python3}" examples/demo.py "$@"
