"""P12 on a real MiniDFS with Hadoop's MiniKMS: a model inside an HDFS encryption zone.

The launcher starts MiniKMS in its JVM (``MiniDFS(kms=True)``), creates the
key ``models`` and writes the key provider (``kms://http@127.0.0.1:PORT/kms``)
into the client conf dir. A version published into an encryption zone is
stored encrypted (asserted from the NameNode's file status and from the bytes
at rest, read through ``/.reserved/raw``), and ``localize`` gives back the
source's bytes through hdfs-native (which fetches the file's key from the KMS
named in ``core-site.xml`` and decrypts on the client) and through WebHDFS
(whose DataNodes decrypt). An hdfs-native client without the key provider
fails at once with :class:`~hdfs_models.EncryptionZoneError` naming the file
and the fix, and succeeds once given it as a storage option.
"""

from __future__ import annotations

import hashlib
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hdfs_models import EncryptionZoneError, localize, publish
from hdfs_models.testing import MiniDFS, tree_digest, write_fake_model
from hdfs_models.testing.minidfs import missing_tools
from hdfs_models.testing.pytest_plugin import require_or_skip

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY_PROVIDER = "hadoop.security.key.provider.path"
MiB = 1 << 20


@pytest.fixture(scope="module")
def kms_minidfs():
    """One DataNode, a MiniKMS, and /zones/<id> made an encryption zone per test."""
    missing = missing_tools()
    if missing:
        require_or_skip(missing)
    with MiniDFS(datanodes=1, kms=True) as cluster:
        yield cluster


@pytest.fixture
def zone(kms_minidfs):
    path = f"/zones/p12-{uuid.uuid4().hex[:8]}"
    assert kms_minidfs.create_zone(path) == {"zone": path, "key": "models"}
    return path


@pytest.fixture
def source(tmp_path):
    return write_fake_model(str(tmp_path / "src"), data_bytes=3 * MiB + 17)  # 4 blocks of 1 MiB


def _served(model_path: str) -> dict[str, str]:
    tree = tree_digest(model_path)
    tree.pop("MANIFEST.json")
    return tree


def _conf_without_kms(conf_dir: str, target: Path) -> str:
    """A copy of the cluster's client conf dir without the key provider (both its names)."""
    target.mkdir()
    for name in ("core-site.xml", "hdfs-site.xml"):
        tree = ET.parse(Path(conf_dir) / name)
        root = tree.getroot()
        for prop in list(root):
            if prop.findtext("name") in (KEY_PROVIDER, "dfs.encryption.key.provider.uri"):
                root.remove(prop)
        tree.write(target / name)
    return str(target)


def test_localize_reads_an_encryption_zone_through_hdfs_native_and_webhdfs_p12(
    kms_minidfs, zone, source, tmp_path, monkeypatch
):
    """P12: files of a version in a zone are encrypted at rest; both clients serve the source's bytes."""
    monkeypatch.setenv("HADOOP_CONF_DIR", kms_minidfs.conf_dir)
    base = f"{kms_minidfs.url}{zone}/cnn"
    pinned = publish(source, base, signatures=False)
    plain = {rel: digest for rel, digest in tree_digest(source).items() if digest != "<dir>"}
    version = pinned.url.replace(kms_minidfs.url, "")
    for rel, digest in plain.items():
        at_rest = kms_minidfs.encryption(f"{version}/{rel}")
        assert at_rest["zone"] == zone and at_rest["key"] == "models" and at_rest["encrypted"], (rel, at_rest)
        assert at_rest["raw_sha256"] != digest, rel  # the DataNode holds ciphertext
    big = max(plain, key=lambda rel: (Path(source) / rel).stat().st_size)
    assert kms_minidfs.encryption(f"{version}/{big}")["length"] == 3 * MiB + 17  # same length (AES-CTR)

    native = localize(base, cache_dir=str(tmp_path / "native"))
    web = localize(base.replace(kms_minidfs.url, kms_minidfs.webhdfs_url), cache_dir=str(tmp_path / "web"))
    assert _served(native.path) == tree_digest(source)
    assert _served(web.path) == tree_digest(source)


def test_hdfs_native_without_the_key_provider_fails_clearly_then_reads_with_it_p12(
    kms_minidfs, zone, source, tmp_path, monkeypatch
):
    """P12: no KMS in the client conf is an EncryptionZoneError naming the file and the fix, not retried."""
    monkeypatch.setenv("HADOOP_CONF_DIR", kms_minidfs.conf_dir)
    base = f"{kms_minidfs.url}{zone}/cnn"
    publish(source, base, signatures=False)
    monkeypatch.setenv("HADOOP_CONF_DIR", _conf_without_kms(kms_minidfs.conf_dir, tmp_path / "conf"))
    started = time.monotonic()
    with pytest.raises(EncryptionZoneError, match=rf"{zone}/cnn/1/MANIFEST.json: .*{KEY_PROVIDER}.*webhdfs://") as err:
        localize(base, cache_dir=str(tmp_path / "bare"))
    assert time.monotonic() - started < 20  # an answer, not push-back: no 60 s of retries
    assert err.value.url.endswith(f"{zone}/cnn/1/MANIFEST.json") and err.value.reason == "no kms"
    assert isinstance(err.value, OSError)

    options = {KEY_PROVIDER: kms_minidfs.kms["uri"]}
    model = localize(base, cache_dir=str(tmp_path / "fixed"), storage_options=options)
    assert _served(model.path) == tree_digest(source)
    manifest = hashlib.sha256((Path(model.path) / "MANIFEST.json").read_bytes()).hexdigest()
    assert manifest == hashlib.sha256(kms_minidfs.webhdfs_fs().cat(f"{zone}/cnn/1/MANIFEST.json")).hexdigest()
