"""A Kerberized HA MiniDFS with SASL ``privacy``: the CLI as alice, Spark executors on a token, K1/K3/K7,
and P3's failover mid-download for a process holding only an ``ha-hdfs:`` token.

One secure cluster for the module: two NameNodes behind the nameservice
``minidfs-ns``, RPC and data transfer encrypted (``privacy``), a real KDC.
alice publishes a real TensorFlow model through the CLI with her ticket;
Spark executors on ``local-cluster`` then score with nothing but her
delegation token file, and must agree with in-process TensorFlow.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
import uuid

import numpy as np
import pytest
from _ha import Outage, settled

from hdfs_models import MANIFEST_NAME, list_versions, localize, publish
from hdfs_models.errors import StoreAuthError
from hdfs_models.testing import tree_digest, write_fake_model
from hdfs_models.testing.kerberos import become
from hdfs_models.testing.pytest_plugin import require_module

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECURE_MINIDFS_OPTIONS = {"ha": True, "protection": "privacy"}
N_IN, ROWS = 12, 240


def _files(path: str) -> dict[str, str]:
    return {k: v for k, v in tree_digest(path).items() if k != MANIFEST_NAME}


def _cli(env: dict[str, str], *argv: str) -> dict:
    child = {k: v for k, v in {**os.environ, **env}.items() if v}
    proc = subprocess.run(["hdfs-models", *argv, "--json"], env=child, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"hdfs-models {' '.join(argv)}: {proc.stderr[-2000:]}"
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    require_module("tensorflow", "tf")
    from hdfs_models.testing import save_dense

    return save_dense(str(tmp_path_factory.mktemp("dense") / "model"), n_in=N_IN)


@pytest.fixture(scope="module")
def published(secure_minidfs, dense):
    """alice publishes the model through the CLI with her ticket; returns the base URL."""
    base = f"{secure_minidfs.url}/user/alice/models/dense"
    info = _cli(secure_minidfs.kerberos_env("alice"), "publish", dense, base)
    assert info["version"] == 1
    return base


def test_ha_cluster_is_private_and_kerberized(secure_minidfs):
    assert secure_minidfs.url == "hdfs://minidfs-ns" and secure_minidfs.kerberos["protection"] == "privacy"
    assert len(secure_minidfs.namenodes) == 2


def test_cli_as_alice_with_a_ticket(secure_minidfs, dense, published, tmp_path):
    """publish (fixture), versions, verify, inspect and fetch through the CLI as alice; bytes identical."""
    env = secure_minidfs.kerberos_env("alice")
    assert [v["version"] for v in _cli(env, "versions", published)["versions"]] == [1]
    verified = _cli(env, "verify", published)
    assert verified["ok"] is True
    signatures = json.dumps(_cli(env, "inspect", published))
    assert "features" in signatures and "probabilities" in signatures
    fetched = _cli(env, "fetch", published, "--cache", str(tmp_path / "cache"))
    assert _files(fetched["path"]) == _files(dense)
    keytab = [
        "-o",
        f"kerberos_principal={secure_minidfs.principal('alice')}",
        "-o",
        f"kerberos_keytab={secure_minidfs.keytab('alice')}",
    ]
    assert [v["version"] for v in _cli(secure_minidfs.no_ticket_env(), "versions", published, *keytab)["versions"]] == [
        1
    ]


def test_k7_privacy_bytes_identical_with_ticket_and_token(secure_minidfs, tmp_path):
    """K7: with SASL privacy on RPC and data transfer, a multi-block model reads back identical."""
    local = write_fake_model(tmp_path / "m", shards=3, data_bytes=5 << 20)
    base = f"{secure_minidfs.url}/user/alice/models/k7"
    with pytest.MonkeyPatch.context() as mp:
        become(mp, secure_minidfs.kerberos_env("alice"))
        from hdfs_models import publish

        publish(local, base, signatures=False)
        assert _files(localize(base, 1, tmp_path / "ticket").path) == _files(local)
        become(mp, secure_minidfs.token_env("alice"))
        assert _files(localize(base, 1, tmp_path / "token").path) == _files(local)


def test_k1_ha_without_credentials_fails_in_seconds(secure_minidfs, published):
    """K1 on HA: no ticket, no token → StoreAuthError in seconds, not hdfs-native's minute of failovers."""
    with pytest.MonkeyPatch.context() as mp:
        become(mp, secure_minidfs.no_ticket_env())
        started = time.monotonic()
        with pytest.raises(StoreAuthError, match="kinit") as info:
            list_versions(published)
        assert time.monotonic() - started < 15.0
    assert info.value.url == published and "hdfs://minidfs-ns" in str(info.value)


def test_k3_ha_token_names_the_nameservice(secure_minidfs, published, tmp_path):
    """K3 on HA: Hadoop names the token ha-hdfs:minidfs-ns; a process with only that token reads."""
    written = secure_minidfs.write_token("alice", tmp_path / "alice.token")
    assert [t["service"] for t in written["tokens"]] == ["ha-hdfs:minidfs-ns"]
    with pytest.MonkeyPatch.context() as mp:
        become(mp, {**secure_minidfs.no_ticket_env(), "HADOOP_TOKEN_FILE_LOCATION": str(tmp_path / "alice.token")})
        assert list_versions(published) == [1]


def _identity_probe():
    """A task body reporting the executor's credentials (a closure, so cloudpickle ships it by value)."""

    def probe(rows):
        import os as _os

        list(rows)
        ccache = _os.environ.get("KRB5CCNAME", "")
        yield {
            "token": _os.environ.get("HADOOP_TOKEN_FILE_LOCATION"),
            "ccache": ccache,
            "ticket": _os.path.exists(ccache.removeprefix("FILE:")),
        }

    return probe


def test_executors_holding_only_alices_token_score_like_tensorflow(secure_minidfs, dense, published, tmp_path):
    """Scoring on local-cluster: the driver has alice's ticket, executors only her token file."""
    require_module("pyspark", "spark")
    from hdfs_models.testing import predict_in_process
    from hdfs_models.testing.spark import LOCAL_CLUSTER, spark_session, stop_spark
    from scoring import Scorer

    token = secure_minidfs.token_env("alice")
    executor_env = {f"spark.executorEnv.{k}": v for k, v in token.items() if v}
    executor_env["spark.executorEnv.HDFS_MODELS_CACHE"] = str(tmp_path / "executor-cache")
    # Workers import the code under test, not whatever checkout the editable install points at.
    import hdfs_models

    executor_env["spark.executorEnv.PYTHONPATH"] = os.path.dirname(os.path.dirname(hdfs_models.__file__))
    # Spark's JVMs read the Kerberos config from a system property, not KRB5_CONFIG.
    java = f"-Djava.security.krb5.conf={secure_minidfs.krb5_conf}"
    executor_env.update({"spark.driver.extraJavaOptions": java, "spark.executor.extraJavaOptions": java})
    features = np.random.default_rng(11).normal(size=(ROWS, N_IN)).astype(np.float32)
    with pytest.MonkeyPatch.context() as mp:
        become(mp, secure_minidfs.kerberos_env("alice"))
        spark = spark_session(LOCAL_CLUSTER, executor_env)
        try:
            rows = [(i, features[i].tolist()) for i in range(ROWS)]
            df = spark.createDataFrame(rows, "id long, features array<float>").repartition(4)
            scorer = Scorer(published, keep_cols=["id"], returns="probabilities")
            got = sorted(scorer.transform(df).collect(), key=lambda r: r.id)
            envs = df.rdd.mapPartitions(_identity_probe()).collect()
        finally:
            stop_spark()
    want = predict_in_process(dense, features=features)["probabilities"]
    np.testing.assert_allclose(np.array([r.prediction for r in got]), want, atol=1e-6)
    assert {r.model_version for r in got} == {1}
    assert {e["token"] for e in envs} == {token["HADOOP_TOKEN_FILE_LOCATION"]}
    assert {e["ccache"] for e in envs} == {token["KRB5CCNAME"]} and not any(e["ticket"] for e in envs)


def test_p3_a_30s_failover_mid_download_on_an_ha_hdfs_token(secure_minidfs, tmp_path, caplog, record_property):
    """P3 with Kerberos: alice publishes a multi-block model with her ticket; a process holding only
    her ``ha-hdfs:minidfs-ns`` token (no ticket) localizes it through a 30 s failover, with default
    options, and the bytes are identical. The token names the nameservice, so it is good on the
    NameNode that becomes active."""
    settled(secure_minidfs, 180.0)
    local = write_fake_model(tmp_path / "model", shards=12, data_bytes=8 << 20, seed=7)
    base = f"{secure_minidfs.url}/user/alice/models/p3-{uuid.uuid4().hex[:8]}"
    token = secure_minidfs.token_env("alice")
    with pytest.MonkeyPatch.context() as mp:
        become(mp, secure_minidfs.kerberos_env("alice"))
        publish(local, base, signatures=False)
    outage = Outage(secure_minidfs, after=1)
    caplog.set_level(logging.INFO)
    started = time.monotonic()
    with pytest.MonkeyPatch.context() as mp:
        become(mp, token)
        model = localize(base, 1, tmp_path / "cache", progress=outage)
    elapsed = time.monotonic() - started
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    record_property("elapsed_s", round(elapsed, 1))
    record_property("retries", len(retries))
    assert outage.done is not None and outage.done < outage.total, "the outage did not start mid-download"
    assert elapsed >= 29.0, "the download finished before the outage ended?"
    assert _files(model.path) == tree_digest(local)
    model.release()
