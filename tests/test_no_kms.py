"""RELIABILITY P12 without a cluster: hdfs-native's "no KMS" error becomes EncryptionZoneError.

hdfs-native reads encryption zones when its configuration names the KMS
(``hadoop.security.key.provider.path``); without it, every open of a file in a
zone fails with a RuntimeError whose text is all it says. That is the client's
configuration, not push-back: translated once, never retried, and the
message names the file and the fix. The real thing: ``integration/test_encryption_zone.py``.
"""

import pytest
from fsspec.implementations.local import LocalFileSystem

from hdfs_models import EncryptionZoneError, StoreError, localize
from hdfs_models._publish import publish
from hdfs_models._retry import is_transient
from hdfs_models.store import translate_errors
from hdfs_models.testing import write_fake_model

# hdfs-native 0.14's text, verbatim.
NO_KMS = (
    'OperationFailed("File is in an HDFS encryption zone but no KMS provider is configured '
    '(set `hadoop.security.key.provider.path` in core-site.xml)")'
)


class NoKmsFS(LocalFileSystem):
    """A local filesystem whose reads fail as hdfs-native's do in a zone it has no KMS for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.opens = 0

    def _open(self, path, mode="rb", *args, **kwargs):
        if "r" in mode:
            self.opens += 1
            raise RuntimeError(NO_KMS)
        return super()._open(path, mode, *args, **kwargs)


def test_no_kms_is_an_encryption_zone_error_naming_the_file_and_the_fix():
    url = "hdfs://nn/zone/cnn/1/MANIFEST.json"
    with pytest.raises(EncryptionZoneError) as caught, translate_errors(url, "reading manifest"):
        raise RuntimeError(NO_KMS)
    err = caught.value
    assert isinstance(err, StoreError) and isinstance(err, OSError) and not is_transient(err)
    assert err.url == url and err.reason == "no kms"
    assert str(err).startswith(f"{url}: reading manifest: ")
    assert "hadoop.security.key.provider.path" in str(err) and "webhdfs://" in str(err)


def test_localize_fails_at_once_without_retrying(tmp_path):
    base = str(tmp_path / "store" / "cnn")
    publish(write_fake_model(str(tmp_path / "src"), data_bytes=5_000), base, signatures=False)
    fs = NoKmsFS()
    with pytest.raises(EncryptionZoneError, match=r"MANIFEST.json: reading manifest: .*webhdfs://"):
        localize(base, cache_dir=str(tmp_path / "cache"), filesystem=fs)
    assert fs.opens == 1
