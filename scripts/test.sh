#!/usr/bin/env bash
# Run the whole test suite (unit + integration on a real MiniDFS and real Spark
# executors) on a fresh machine, in the project's virtual environment (see
# scripts/setup-env.sh: HDFS_MODELS_VENV, HDFS_MODELS_CONSTRAINTS, PYTHON,
# HDFS_MODELS_HADOOP_VERSION). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-env.sh
VENV=${HDFS_MODELS_VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
PY="$VENV/bin/python"
export PYSPARK_PYTHON="$PWD/$PY"
export SPARK_LOCAL_IP=127.0.0.1
"$PY" -m ruff check --quiet .
"$PY" -m ruff format --check --quiet .
"$PY" -m mypy --no-error-summary hdfs_models scoring
exec "$PY" -m pytest -ra "$@"
