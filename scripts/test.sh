#!/usr/bin/env bash
# Run the whole test suite (unit + integration on a real MiniDFS and real Spark
# executors) on a fresh machine. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-env.sh
PY=${PYTHON:-python3}
export PYSPARK_PYTHON="$("$PY" -c 'import sys; print(sys.executable)')"
export SPARK_LOCAL_IP=127.0.0.1
"$PY" -m mypy --no-error-summary hdfs_models scoring
exec "$PY" -m pytest -ra "$@"
