#!/usr/bin/env bash
# Install everything hdfs-models needs on a fresh machine: Java + Maven (Debian
# packages, only if missing), the package with all extras pinned by
# constraints.txt, and the MiniDFS launcher (built once, cached by pom hash).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing OpenJDK 17 and Maven from Debian" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless maven >/dev/null
  else
    echo "setup: java and mvn are required (apt-get install openjdk-17-jdk-headless maven)" >&2
    exit 1
  fi
fi

PY=${PYTHON:-python3}
"$PY" -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[all,test]"

# Build (or reuse) the MiniDFS launcher now, so test time is test time.
"$PY" -c "from hdfs_models.testing import ensure_launcher; ensure_launcher()"
