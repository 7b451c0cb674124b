"""hdfs-models on a Kerberized MiniDFS with a real KDC: rows K1-K4 and K8, keytab login, WebHDFS.

One secure cluster (KDC in the launcher JVM, SASL protection
``authentication``) serves the module. Each test takes an identity by setting
the environment a Hadoop process reads (a ticket cache, a token file, or
neither) in this process: hdfs-models caches clients per identity, so no
identity is ever served another's connection.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

from hdfs_models import MANIFEST_NAME, list_versions, localize, publish, resolve
from hdfs_models.errors import StoreAuthError, StorePermissionError
from hdfs_models.testing import tree_digest, write_fake_model
from hdfs_models.testing.kerberos import become
from hdfs_models.testing.pytest_plugin import require_module

pytestmark = pytest.mark.integration

AUTH_DEADLINE_S = 15.0


@pytest.fixture
def as_user(secure_minidfs, monkeypatch):
    """``as_user(env)``: take that identity for the rest of the test."""

    def take(env: dict[str, str]) -> dict[str, str]:
        become(monkeypatch, env)
        return env

    return take


@pytest.fixture(scope="module")
def private_model(secure_minidfs, tmp_path_factory):
    """alice publishes one version under /user/alice/private (0700); returns (base URL, local digest)."""
    local = write_fake_model(tmp_path_factory.mktemp("m") / "model", shards=2, data_bytes=3 << 20)
    base = f"{secure_minidfs.url}/user/alice/private/models/m"
    with pytest.MonkeyPatch.context() as mp:
        become(mp, secure_minidfs.kerberos_env("alice"))
        publish(local, base, signatures=False)
        secure_minidfs.fs("alice").client.set_permission("/user/alice/private", 0o700)
    return base, tree_digest(local)


def _files(path: str) -> dict[str, str]:
    """sha256 of each model file (the cache adds MANIFEST.json, which the local model lacks)."""
    return {k: v for k, v in tree_digest(path).items() if k != MANIFEST_NAME}


def _auth_error(call) -> tuple[StoreAuthError, float]:
    started = time.monotonic()
    with pytest.raises(StoreAuthError) as info:
        call()
    return info.value, time.monotonic() - started


def test_k1_no_ticket_no_token_is_an_auth_error_in_seconds(secure_minidfs, private_model, as_user):
    """K1: no ticket and no token → StoreAuthError within seconds naming the URL and kinit."""
    base, _ = private_model
    env = as_user(secure_minidfs.no_ticket_env())
    err, elapsed = _auth_error(lambda: list_versions(base))
    assert elapsed < AUTH_DEADLINE_S
    text = str(err)
    assert base in text and "kinit" in text and env["KRB5CCNAME"] in text and "\n" not in text
    assert err.reason == "no credentials" and err.url == base


def test_k2_expired_ticket_says_expired(secure_minidfs, private_model, as_user):
    """K2: an expired ticket → the same error, saying it expired and naming the principal."""
    base, _ = private_model
    env = as_user(secure_minidfs.kerberos_env("alice", lifetime="5s"))
    deadline = time.monotonic() + 60
    while _ticket_valid(env) and time.monotonic() < deadline:
        time.sleep(0.5)
    err, elapsed = _auth_error(lambda: list_versions(base))
    assert elapsed < AUTH_DEADLINE_S
    assert err.reason == "expired" and err.principal == "alice@EXAMPLE.COM"
    assert "has expired; run kinit alice@EXAMPLE.COM" in str(err)


def _ticket_valid(env: dict[str, str]) -> bool:
    probe = ["klist", "-s", "-c", env["KRB5CCNAME"]]
    return subprocess.run(probe, env={**os.environ, **env}, timeout=30).returncode == 0


@pytest.mark.compat
def test_k3_token_only_reads_with_ip_and_host_name_urls(secure_minidfs, private_model, as_user, tmp_path):
    """K3: only a delegation token file → reads; a URL with a host name finds the ip:port token."""
    base, digest = private_model
    env = as_user(secure_minidfs.token_env("alice"))
    assert not env["KRB5CCNAME"].endswith("alice")  # no ticket: an empty cache
    by_host = base.replace("127.0.0.1", "localhost")
    assert list_versions(by_host) == [1]
    model = localize(by_host, 1, tmp_path / "cache")
    assert _files(model.path) == digest
    assert resolve(base).version == 1


def test_k4_token_for_another_service_or_tampered_names_the_token_file(secure_minidfs, private_model, as_user):
    """K4: a token for another service, or one the NameNode refuses → StoreAuthError naming the file."""
    base, _ = private_model
    env = as_user(secure_minidfs.token_env("alice", service="127.0.0.1:1"))
    err, elapsed = _auth_error(lambda: list_versions(base))
    assert elapsed < AUTH_DEADLINE_S
    assert env["HADOOP_TOKEN_FILE_LOCATION"] in str(err) and "127.0.0.1:1" in str(err)
    assert "kinit" in str(err) and err.principal == "alice@EXAMPLE.COM"

    env = as_user(secure_minidfs.token_env("alice"))
    _tamper_password(env["HADOOP_TOKEN_FILE_LOCATION"])
    err, elapsed = _auth_error(lambda: list_versions(base))
    assert elapsed < AUTH_DEADLINE_S and err.reason == "token refused"
    assert f"HADOOP_TOKEN_FILE_LOCATION={env['HADOOP_TOKEN_FILE_LOCATION']} was refused" in str(err)


def _tamper_password(path: str) -> None:
    from hdfs_models.store._tokens import read_token_file

    data = bytearray(open(path, "rb").read())
    password = read_token_file(path)[0].password
    at = bytes(data).index(password)
    data[at] ^= 0xFF
    with open(path, "wb") as fh:
        fh.write(data)


def test_k8_identity_change_in_one_process_gets_its_own_client(secure_minidfs, private_model, as_user):
    """K8: KRB5CCNAME / token file changes in one process → a different client, no reuse."""
    base, _ = private_model
    as_user(secure_minidfs.kerberos_env("alice"))
    assert list_versions(base) == [1]
    as_user(secure_minidfs.kerberos_env("bob"))
    with pytest.raises(StorePermissionError, match="bob"):
        list_versions(base)
    as_user(secure_minidfs.token_env("alice"))
    assert list_versions(base) == [1]
    as_user(secure_minidfs.no_ticket_env())
    with pytest.raises(StoreAuthError):
        list_versions(base)


def test_keytab_login_through_storage_options_needs_no_kinit(secure_minidfs, private_model, as_user):
    """A keytab login (storage options) works in a process with no ticket and no token."""
    base, _ = private_model
    as_user(secure_minidfs.no_ticket_env())
    login = {"kerberos_principal": secure_minidfs.principal("alice"), "kerberos_keytab": secure_minidfs.keytab("alice")}
    assert list_versions(base, storage_options=login) == [1]
    bob = {"kerberos_principal": secure_minidfs.principal("bob"), "kerberos_keytab": secure_minidfs.keytab("bob")}
    with pytest.raises(StorePermissionError):
        list_versions(base, storage_options=bob)


@pytest.mark.compat
def test_webhdfs_with_spnego_and_with_a_token(secure_minidfs, private_model, as_user, tmp_path):
    """WebHDFS: SPNEGO from alice's ticket, and a token file alone; bytes identical to the store's."""
    base, digest = private_model
    http_port = secure_minidfs.info["webhdfs"][0].rsplit(":", 1)[1]
    web_base = f"webhdfs://localhost:{http_port}" + base.split(secure_minidfs.url, 1)[1]
    as_user(secure_minidfs.kerberos_env("alice"))
    assert _files(localize(web_base, 1, tmp_path / "spnego").path) == digest
    as_user(secure_minidfs.token_env("alice", service=f"127.0.0.1:{http_port}"))
    assert _files(localize(web_base, 1, tmp_path / "token").path) == digest
    as_user(secure_minidfs.no_ticket_env())
    err, elapsed = _auth_error(lambda: list_versions(web_base))
    assert elapsed < AUTH_DEADLINE_S and "kinit" in str(err)


def test_bob_cannot_publish_into_alices_home(secure_minidfs, as_user, tmp_path):
    """bob cannot create under alice's home; the error names the path (PermissionError, not auth)."""
    as_user(secure_minidfs.kerberos_env("bob"))
    target = f"{secure_minidfs.url}/user/alice/bob-{uuid.uuid4().hex[:6]}/m"
    with pytest.raises(StorePermissionError) as info:
        publish(write_fake_model(tmp_path / "model"), target, signatures=False)
    assert isinstance(info.value, PermissionError) and "/user/alice" in str(info.value)


def _snapshot(root) -> list[tuple[str, int, float]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            out.append((os.path.relpath(path, root), st.st_size, st.st_mtime))
    return sorted(out)


def test_k5_bob_is_refused_a_version_alice_cached(secure_minidfs, private_model, as_user, tmp_path, record_property):
    """K5: alice's copy is in the shared cache; bob gets PermissionError naming the path, nothing written."""
    base, digest = private_model
    root = tmp_path / "node-cache"
    as_user(secure_minidfs.kerberos_env("alice"))
    pinned = resolve(base)
    cached = localize(base, cache_dir=root, pinned=pinned)
    assert _files(cached.path) == digest
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        assert localize(base, cache_dir=root, pinned=pinned).path == cached.path
        timings.append(time.perf_counter() - started)
    record_property("warm_pinned_localize_median_ms", round(sorted(timings)[2] * 1e3, 2))
    assert sorted(timings)[2] < 1.0, timings  # a generous bound; the figure (target < 50 ms) is recorded
    before = _snapshot(root)
    as_user(secure_minidfs.kerberos_env("bob"))
    for call in (lambda: localize(base, cache_dir=root, pinned=pinned), lambda: localize(base, cache_dir=root)):
        with pytest.raises(StorePermissionError) as info:
            call()
        assert isinstance(info.value, PermissionError) and "/user/alice/private" in str(info.value)
        assert "bob" in str(info.value)
    assert _snapshot(root) == before
    as_user(secure_minidfs.no_ticket_env())
    with pytest.raises(StoreAuthError):
        localize(base, cache_dir=root, pinned=pinned)
    offline = localize(base, cache_dir=root, pinned=pinned, trust_cache=True)  # the documented opt-out
    assert offline.path == cached.path


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["fetch", "archive", "files"])
def test_scoring_job_as_alice_on_kerberized_hdfs(secure_minidfs, tmp_path, strategy):
    """``python -m scoring.job`` run as alice (a ticket) scores with a model on secure HDFS, like TensorFlow.

    ``fetch``: the Python workers download into the node cache with her ticket.
    ``archive`` (the driver packs and stores ``_archives/…tar``, Spark's JVM
    reads it with ``addArchive``) and ``files`` (Spark's JVM copies the
    version dir with ``addFile``): Spark's own Hadoop client authenticates with
    Kerberos, and the node cache stays empty.
    """
    require_module("tensorflow", "tf")
    require_module("pyspark", "spark")
    import pyarrow.parquet as pq

    from hdfs_models.testing import predict_in_process, save_dense, write_features

    model = save_dense(str(tmp_path / "dense"), n_in=6)
    env = secure_minidfs.kerberos_env("alice")
    base = f"{secure_minidfs.url}/user/alice/models/job-{strategy}"
    with pytest.MonkeyPatch.context() as mp:
        become(mp, env)
        publish(model, base)
    features = np.random.default_rng(3).normal(size=(64, 6)).astype(np.float32)
    write_features(str(tmp_path / "in"), features)
    java = f"spark.driver.extraJavaOptions=-Djava.security.krb5.conf={secure_minidfs.krb5_conf}"
    argv = [
        sys.executable,
        "-m",
        "scoring.job",
        "--master",
        "local[2]",
        "--model",
        base,
        "--input-path",
        f"file://{tmp_path / 'in'}",
        "--output-path",
        f"file://{tmp_path / 'out'}",
        "--features",
        "features",
        "--keep",
        "id",
        "--returns",
        "probabilities",
        "--conf",
        java,
        "--strategy",
        strategy,
        "--json",
    ]
    extra = {
        "HDFS_MODELS_CACHE": str(tmp_path / "cache"),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
    }
    child = {k: v for k, v in {**os.environ, **env, **extra}.items() if v}
    proc = subprocess.run(argv, env=child, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = pq.read_table(tmp_path / "out").to_pandas().sort_values("id")
    assert set(out["model_version"]) == {1}
    want = predict_in_process(model, features=features)["probabilities"]
    np.testing.assert_allclose(np.stack(out["prediction"].to_numpy()), want, atol=1e-6)
    cached = [f for _, _, files in os.walk(tmp_path / "cache") for f in files if f == "saved_model.pb"]
    assert len(cached) == (1 if strategy == "fetch" else 0), cached
    if strategy == "archive":
        assert secure_minidfs.fs("alice").ls(f"/user/alice/models/job-{strategy}/_archives", detail=False)


def test_p10_a_data_file_bob_may_not_read_is_not_served_from_alices_cache(secure_minidfs, as_user, tmp_path):
    """P10: bob may read the manifest and the dirs, not one 0600 variables shard: refused, naming the shard."""
    local = write_fake_model(tmp_path / "model", shards=2, data_bytes=1 << 20)
    base = f"{secure_minidfs.url}/user/alice/p10/models/m"
    as_user(secure_minidfs.kerberos_env("alice"))
    publish(local, base, signatures=False)
    client = secure_minidfs.fs("alice").client
    for path in ("/user/alice", "/user/alice/p10", "/user/alice/p10/models", "/user/alice/p10/models/m"):
        client.set_permission(path, 0o755)
    shard = "variables/variables.data-00001-of-00002"
    client.set_permission(f"/user/alice/p10/models/m/1/{shard}", 0o600)
    pinned = resolve(base)
    root = tmp_path / "node-cache"
    cached = localize(base, cache_dir=root, pinned=pinned)
    assert _files(cached.path) == tree_digest(local)
    assert localize(base, cache_dir=root, pinned=pinned).path == cached.path  # alice's warm hit
    before = _snapshot(root)
    as_user(secure_minidfs.kerberos_env("bob"))
    assert resolve(base).digest == pinned.digest  # bob reads the manifest and lists the version
    with pytest.raises(StorePermissionError) as info:
        localize(base, cache_dir=root, pinned=pinned)
    assert shard in str(info.value) and "bob" in str(info.value)
    assert _snapshot(root) == before


def test_p2_credentials_that_end_before_the_job_may_finish_are_warned_about(secure_minidfs, as_user, tmp_path):
    """P2: a ticket ending within the margin, and a delegation token by its maxDate, are named with their ends."""
    from hdfs_models.store._auth import credential_warnings
    from hdfs_models.store._tokens import ccache_tickets

    asked = time.time()
    env = as_user(secure_minidfs.kerberos_env("alice", lifetime="20m"))
    tgt = [t for t in ccache_tickets(env["KRB5CCNAME"]) if t.server.startswith("krbtgt/")]
    assert len(tgt) == 1 and tgt[0].client == "alice@EXAMPLE.COM"
    assert asked + 18 * 60 <= tgt[0].end <= time.time() + 20 * 60 + 5  # the lifetime kinit asked for
    end = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(tgt[0].end))
    (warning,) = credential_warnings(3600)
    assert f"the Kerberos ticket of alice@EXAMPLE.COM in {env['KRB5CCNAME']} expires at {end}" in warning
    assert credential_warnings(5 * 60) == []  # 20 minutes left: not within 5
    token = tmp_path / "alice.token"
    secure_minidfs.write_token("alice", token)
    as_user({**secure_minidfs.no_ticket_env(), "HADOOP_TOKEN_FILE_LOCATION": str(token)})
    assert credential_warnings(3600) == []  # the NameNode's default maxDate: 7 days
    (week,) = credential_warnings(8 * 24 * 3600)
    assert "HDFS delegation token" in week and str(token) in week and "expires at" in week


def _job(
    secure_minidfs, env: dict[str, str], tmp_path, model: str, data: str, name: str
) -> subprocess.CompletedProcess:
    java = f"spark.driver.extraJavaOptions=-Djava.security.krb5.conf={secure_minidfs.krb5_conf}"
    argv = [sys.executable, "-m", "scoring.job", "--master", "local[2]", "--model", model, "--input-path", data,
            "--output-path", f"file://{tmp_path / name}", "--features", "features", "--keep", "id",
            "--returns", "probabilities", "--conf", java, "--read", "direct", "--json"]  # fmt: skip
    extra = {
        "HDFS_MODELS_CACHE": str(tmp_path / f"cache-{name}"),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
    }
    child = {k: v for k, v in {**os.environ, **env, **extra}.items() if v}
    return subprocess.run(argv, env=child, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_direct_reads_on_kerberized_hdfs_use_the_job_s_credentials(secure_minidfs, tmp_path):
    """Issue 21 on the secure harness: the job reads alice's Parquet files in its Python workers with
    her delegation token only (no ticket), scoring like TensorFlow; bob, who may read one of the two
    files but not the other (0600), fails with an error naming that file."""
    require_module("tensorflow", "tf")
    require_module("pyspark", "spark")
    import pyarrow.parquet as pq

    from hdfs_models.testing import predict_in_process, save_dense, write_features

    model = save_dense(str(tmp_path / "dense"), n_in=6)
    features = np.random.default_rng(4).normal(size=(80, 6)).astype(np.float32)
    local = write_features(str(tmp_path / "in"), features, files=2)
    base = f"{secure_minidfs.url}/user/alice/direct/models/m"
    data = "/user/alice/direct/in"
    with pytest.MonkeyPatch.context() as mp:
        become(mp, secure_minidfs.kerberos_env("alice"))
        publish(model, base)
        fs = secure_minidfs.fs("alice")
        fs.mkdir(data)
        names = sorted(n for n in os.listdir(local) if n.endswith(".parquet"))
        for name in names:
            fs.put(os.path.join(local, name), f"{data}/{name}")
        for path in ("/user/alice", "/user/alice/direct", data, base.replace(secure_minidfs.url, "")):
            fs.client.set_permission(path, 0o755)
        fs.client.set_permission(f"{data}/{names[1]}", 0o600)
    done = _job(secure_minidfs, secure_minidfs.token_env("alice"), tmp_path, base, secure_minidfs.url + data, "alice")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["read"] == "direct" and summary["rows"] == len(features)
    out = pq.read_table(tmp_path / "alice").to_pandas().sort_values("id")
    want = predict_in_process(model, features=features)["probabilities"]
    np.testing.assert_allclose(np.stack(out["prediction"].to_numpy()), want, atol=1e-6)
    refused = _job(secure_minidfs, secure_minidfs.kerberos_env("bob"), tmp_path, base, secure_minidfs.url + data, "bob")
    assert refused.returncode != 0
    assert f"{data}/{names[1]}" in refused.stderr and "ermission" in refused.stderr, refused.stderr[-3000:]
