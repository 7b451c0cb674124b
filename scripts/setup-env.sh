#!/usr/bin/env bash
# Install everything hdfs-models needs on a fresh machine, into the project's
# own virtual environment; never into an interpreter's site-packages (Debian's
# /usr/bin/python3 refuses that anyway: PEP 668).
#
#   PYTHON=python3.11 scripts/setup-env.sh    # the interpreter that creates the venv (3.10+)
#
# - Debian packages, only if missing: Java + Maven (MiniDFS), krb5-user
#   (kinit/klist for the Kerberized MiniDFS), libkrb5-dev (pip builds the
#   'kerberos' extra's gssapi and krb5 from source: no Linux wheel), libfuse2
#   (the P5 test's FUSE filesystem) and the venv module of the chosen Python
#   (Debian ships it as python3-venv).
# - The venv: HDFS_MODELS_VENV (default .venv), reused when present. The
#   package with all extras, pinned by HDFS_MODELS_CONSTRAINTS (default
#   constraints.txt; constraints-compat.txt is the Spark 3.5 leg). pip runs
#   again only when setup.cfg or the constraints changed.
# - The MiniDFS launcher for HDFS_MODELS_HADOOP_VERSION (default 3.4.1), built
#   once and cached by pom hash and version.
#
# Afterwards: `. .venv/bin/activate` (or .venv/bin/python, .venv/bin/hdfs-models).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${HDFS_MODELS_VENV:-.venv}
CONSTRAINTS=${HDFS_MODELS_CONSTRAINTS:-constraints.txt}

if ! command -v "$PY" >/dev/null; then
  echo "setup: no Python interpreter '$PY' (set PYTHON=/path/to/python3.10+)" >&2
  exit 1
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "setup: $PY is Python $("$PY" -c 'import platform; print(platform.python_version())'); hdfs-models needs 3.10+" >&2
  exit 1
fi

need=()
command -v java >/dev/null || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need+=(maven)
command -v kinit >/dev/null || need+=(krb5-user)
command -v krb5-config >/dev/null || need+=(libkrb5-dev)
# tests/test_flock_probe.py mounts a FUSE filesystem through fusepy, which loads libfuse.so.2
ldconfig -p 2>/dev/null | grep -q 'libfuse\.so\.2' || need+=(libfuse2)
if [ ! -x "$VENV/bin/python" ] && ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
  # Debian splits venv/ensurepip out of the interpreter: python3.11-venv for python3.11.
  need+=("python$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv")
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need[*]} from Debian" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: missing ${need[*]} (sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating the virtual environment $VENV with $("$PY" -c 'import sys; print(sys.executable)')" >&2
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"

# tf-keras (Keras 2, for the tests' `model.save(..., save_format="tf")` models)
# requires the `tensorflow` distribution, which would install a second,
# GPU-enabled TensorFlow beside tensorflow-cpu; it needs nothing else, so it
# goes in without dependencies, at the version the constraints pin.
stamp="$VENV/.hdfs-models-setup"
want=$(cat setup.cfg "$CONSTRAINTS" | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing hdfs-models[all,test] into $VENV (pins: $CONSTRAINTS)" >&2
  "$VPY" -m pip install -q --disable-pip-version-check -U "pip>=23.1"
  "$VPY" -m pip install -q --disable-pip-version-check -c "$CONSTRAINTS" -e ".[all,test]"
  "$VPY" -m pip install -q --disable-pip-version-check --no-deps -c "$CONSTRAINTS" tf-keras
  echo "$want" > "$stamp"
fi

# Build (or reuse) the MiniDFS launcher now, so test time is test time.
"$VPY" -c "from hdfs_models.testing import ensure_launcher; ensure_launcher()"
