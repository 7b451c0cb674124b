"""The Kerberized MiniDFS harness itself: a real KDC, tickets, keytabs and token files.

Clients here are hdfs-native used directly (no hdfs-models code), each in a
subprocess holding exactly one identity, so the harness is checked apart from
the library that the other secure tests exercise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.integration

# integrity here, authentication in test_kerberos_store.py, privacy in test_kerberos_ha.py (K7)
SECURE_MINIDFS_OPTIONS = {"protection": "integrity"}

# Runs in a child: list a directory and report the owner of what it wrote, or the error.
_CHILD = r"""
import json, sys
from hdfs_native import Client
url, path = sys.argv[1], sys.argv[2]
try:
    c = Client(url)
    with c.create(path + "/probe") as fh:
        fh.write(b"x")
    print(json.dumps({"owner": c.get_file_info(path + "/probe").owner}))
    c.delete(path + "/probe")
except Exception as exc:
    print(json.dumps({"error": str(exc)[:500]}))
"""


def _as(env: dict[str, str], url: str, path: str) -> dict[str, str]:
    child_env = {k: v for k, v in {**os.environ, **env}.items() if v != ""}
    for key in [k for k, v in env.items() if v == ""]:
        child_env.pop(key, None)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, url, path], env=child_env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_kdc_users_homes_and_secure_site_files(secure_minidfs):
    info = secure_minidfs.kerberos
    assert info["realm"] == "EXAMPLE.COM"
    assert info["principals"]["alice"] == "alice@EXAMPLE.COM"
    for user in ("alice", "bob", "hdfs"):
        assert os.path.getsize(secure_minidfs.keytab(user)) > 0
    core = open(os.path.join(secure_minidfs.conf_dir, "core-site.xml")).read()
    assert "<name>hadoop.security.authentication</name><value>kerberos</value>" in core
    assert "<name>dfs.data.transfer.protection</name><value>integrity</value>" in core
    homes = {e["name"]: e["owner"] for e in secure_minidfs.fs().ls("/user", detail=True)}
    assert homes == {"/user/alice": "alice", "/user/bob": "bob"}


def test_a_ticket_acts_as_its_user_and_no_ticket_is_refused(secure_minidfs):
    url = secure_minidfs.url
    assert _as(secure_minidfs.kerberos_env("alice"), url, "/user/alice") == {"owner": "alice"}
    refused = _as(secure_minidfs.kerberos_env("bob"), url, "/user/alice")
    assert "AccessControlException" in refused["error"] and "bob" in refused["error"]
    assert "GSS_S_NO_CRED" in _as(secure_minidfs.no_ticket_env(), url, "/user/alice")["error"]


def test_token_file_alone_acts_as_its_user_with_hadoops_service_name(secure_minidfs, tmp_path):
    written = secure_minidfs.write_token("alice", tmp_path / "alice.token")
    port = secure_minidfs.url.rsplit(":", 1)[1]
    assert written["tokens"] == [{"kind": "HDFS_DELEGATION_TOKEN", "service": f"127.0.0.1:{port}"}]
    assert (tmp_path / "alice.token").read_bytes().startswith(b"HDTS")
    env = secure_minidfs.token_env("alice")
    assert _as(env, secure_minidfs.url, "/user/alice") == {"owner": "alice"}


def _ticket_valid(env: dict[str, str]) -> bool:
    klist = ["klist", "-s", "-c", env["KRB5CCNAME"]]
    return subprocess.run(klist, env={**os.environ, **env}, timeout=30).returncode == 0


def test_short_lifetime_ticket_expires(secure_minidfs):
    env = secure_minidfs.kerberos_env("alice", lifetime="5s")
    assert _ticket_valid(env)
    deadline = time.monotonic() + 30
    while _ticket_valid(env) and time.monotonic() < deadline:  # klist -s: 1 once expired
        time.sleep(0.5)
    assert not _ticket_valid(env)
    assert "Ticket expired" in _as(env, secure_minidfs.url, "/user/alice")["error"]


def test_k7_integrity_bytes_identical(secure_minidfs, tmp_path, monkeypatch):
    """K7: with SASL integrity on RPC and data transfer, hdfs-models reads a multi-block model back identical."""
    from hdfs_models import MANIFEST_NAME, localize, publish
    from hdfs_models.testing import tree_digest, write_fake_model

    local = write_fake_model(tmp_path / "m", shards=2, data_bytes=3 << 20)
    for key, value in secure_minidfs.kerberos_env("alice").items():
        monkeypatch.setenv(key, value) if value else monkeypatch.delenv(key, raising=False)
    base = f"{secure_minidfs.url}/user/alice/k7"
    publish(local, base, signatures=False)
    cached = tree_digest(localize(base, 1, tmp_path / "cache").path)
    assert {k: v for k, v in cached.items() if k != MANIFEST_NAME} == tree_digest(local)
