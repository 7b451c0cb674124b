#!/usr/bin/env bash
# The demo on embedded defaults: start MiniDFS and local Spark, publish a model
# to HDFS, fetch it once per node, score, print the figures, stop everything.
# Runs in the project's virtual environment (scripts/setup-env.sh makes it:
# .venv, or HDFS_MODELS_VENV; PYTHON= picks the interpreter that creates it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-env.sh
VENV=${HDFS_MODELS_VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
# demo.py itself points PYSPARK_PYTHON at its interpreter and keeps Spark on loopback.
exec "$VENV/bin/python" examples/demo.py "$@"
