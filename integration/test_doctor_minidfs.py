"""``hdfs-models doctor`` as a user runs it: a subprocess against a real MiniDFS.

Healthy cluster → exit 0; a refused NameNode, a cache root this user
cannot write and (on a Kerberized MiniDFS with a real KDC) a missing ticket
each give their line and exit 1. The tests run as root, who
writes anywhere, so the read-only case drops the capabilities that let
root ignore permissions (``setpriv --bounding-set -dac_override``): the
doctor then meets a 0555 root-owned directory exactly as any user would.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid

import pytest

from hdfs_models._publish import publish
from hdfs_models.testing.pytest_plugin import require_or_skip

pytestmark = pytest.mark.integration

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "tests"))
from hdfs_models.testing import write_fake_model  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


def doctor(*args, env=None, prefix=()):
    command = [*prefix, sys.executable, "-m", "hdfs_models.cli", "doctor", *args]
    inherited = {
        k: v for k, v in os.environ.items() if k not in ("HADOOP_CONF_DIR", "HADOOP_TOKEN_FILE_LOCATION", "KRB5CCNAME")
    }
    merged = {k: v for k, v in {**inherited, **(env or {})}.items() if v != ""}  # "" means unset
    done = subprocess.run(command, cwd=ROOT, env=merged, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def lines(out, name):
    return [line for line in out.splitlines() if line.split(" ", 1)[-1].strip().startswith(f"{name}:")]


@pytest.fixture(scope="module")
def model_url(minidfs, tmp_path_factory):
    base = f"{minidfs.url}/models/{uuid.uuid4().hex[:8]}/doctor"
    publish(write_fake_model(str(tmp_path_factory.mktemp("doctor") / "m"), data_bytes=50_000), base, signatures=False)
    return base


def test_healthy_minidfs_exits_0(minidfs, model_url, tmp_path):
    code, out, err = doctor(model_url, "--cache", str(tmp_path / "cache"), env=minidfs.env())
    assert code == 0, out + err
    [conf] = lines(out, "hadoop-conf")
    assert conf.startswith("OK") and f"HADOOP_CONF_DIR={minidfs.conf_dir}" in conf and minidfs.url in conf
    [node] = lines(out, "namenode")
    assert node.startswith("OK") and "reachable in" in node and minidfs.url.split("//")[1] in node
    [model] = lines(out, "model")
    assert model.startswith(f"OK   model: {model_url}/1: version 1, 3 files")
    assert not [line for line in out.splitlines() if line.startswith("FAIL")]


def test_healthy_minidfs_json(minidfs, model_url, tmp_path):
    code, out, _ = doctor(model_url, "--cache", str(tmp_path / "cache"), "--json", env=minidfs.env())
    report = json.loads(out)
    assert code == 0 and report["ok"] is True
    assert {c["name"] for c in report["checks"]} >= {"hadoop-conf", "namenode", "model", "cache-root", "java"}


def _refused_port():
    with socket.socket() as sock:  # bound, never listening: connects are refused
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_refused_namenode_gives_its_line_and_exits_1(minidfs, tmp_path):
    port = _refused_port()
    code, out, _ = doctor(f"hdfs://127.0.0.1:{port}/models/m", "--cache", str(tmp_path / "cache"), env=minidfs.env())
    assert code == 1
    [node] = lines(out, "namenode")
    assert node == (
        f"FAIL namenode: namenode 127.0.0.1:{port}: connection refused "
        f"(fix: start the NameNode, or correct the address hdfs://127.0.0.1:{port})"
    )
    assert lines(out, "model")[0].startswith("SKIP")


def test_read_only_cache_root_gives_its_line_and_exits_1(minidfs, model_url, tmp_path):
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        require_or_skip("setpriv (util-linux) is needed to drop root's permission override")
    if os.geteuid() == 0:
        prefix = (setpriv, "--bounding-set", "-dac_override,-dac_read_search")
    else:
        prefix = ()
    cache = tmp_path / "cache"
    cache.mkdir()
    os.chmod(cache, 0o555)
    code, out, _ = doctor(model_url, "--cache", str(cache), env=minidfs.env(), prefix=prefix)
    assert code == 1, out
    [line] = lines(out, "cache-root")
    assert line == (
        f"FAIL cache-root: {cache} is not writable (Permission denied) "
        f"(fix: chown or chmod {cache} for this user, or set HDFS_MODELS_CACHE to a "
        "directory this user can write)"
    )
    assert [line for line in out.splitlines() if line.startswith("FAIL")] == [line]


# -- Kerberized MiniDFS (real KDC, kinit, klist) ---------------------------------------


def test_kerberos_ticket_line_and_exit_0(secure_minidfs, tmp_path):
    code, out, err = doctor("--cache", str(tmp_path / "cache"), env=secure_minidfs.kerberos_env("alice"))
    [line] = lines(out, "kerberos")
    assert code == 0, out + err
    assert line.startswith(
        "OK   kerberos: Kerberos required (hadoop.security.authentication=kerberos); "
        "ticket for alice@EXAMPLE.COM, expires in "
    )
    assert lines(out, "namenode")[0].startswith("OK")


def test_missing_ticket_gives_its_line_and_exits_1(secure_minidfs, tmp_path):
    code, out, _ = doctor("--cache", str(tmp_path / "cache"), env=secure_minidfs.no_ticket_env())
    assert code == 1, out
    [line] = lines(out, "kerberos")
    assert line.startswith(
        "FAIL kerberos: Kerberos required (hadoop.security.authentication=kerberos) "
        "and there is no ticket (klist: No credentials cache found"
    )
    assert line.endswith("(fix: kinit PRINCIPAL (or kinit -kt KEYTAB PRINCIPAL for a service account))")
    assert [x for x in out.splitlines() if x.startswith("FAIL")] == [line]


def test_a_token_file_stands_in_for_the_ticket(secure_minidfs, tmp_path):
    code, out, err = doctor("--cache", str(tmp_path / "cache"), env=secure_minidfs.token_env("alice"))
    assert code == 0, out + err
    assert lines(out, "token-file")[0].startswith("OK   token-file: HADOOP_TOKEN_FILE_LOCATION=")
    assert lines(out, "kerberos")[0].startswith("OK")
