#!/usr/bin/env bash
# Install everything hdfs-models needs on a fresh machine: Java + Maven and MIT
# Kerberos (Debian packages, only if missing), the package with all extras
# pinned by constraints.txt, and the MiniDFS launcher (built once, cached by
# pom hash).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: Java + Maven (MiniDFS); krb5-user (kinit/klist for the
# Kerberized MiniDFS); libkrb5-dev (krb5-config and headers: pip builds the
# 'kerberos' extra's gssapi and krb5 from source, there is no Linux wheel).
need=()
command -v java >/dev/null || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need+=(maven)
command -v kinit >/dev/null || need+=(krb5-user)
command -v krb5-config >/dev/null || need+=(libkrb5-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need[*]} from Debian" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: missing ${need[*]} (apt-get install ${need[*]})" >&2
    exit 1
  fi
fi

PY=${PYTHON:-python3}
"$PY" -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[all,test]"

# Build (or reuse) the MiniDFS launcher now, so test time is test time.
"$PY" -c "from hdfs_models.testing import ensure_launcher; ensure_launcher()"
