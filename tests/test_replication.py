"""P13 (unit): the replication ``publish`` and the ``archive`` strategy ask of HDFS stores.

The spread itself is asserted from a real NameNode's block locations in
``integration/test_replication_minidfs.py``; here: the option's resolution,
which stores take it, and that every write of a publish and of the archive
upload carries it.
"""

from __future__ import annotations

import os
import uuid

import pytest
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.implementations.webhdfs import WebHDFS

import hdfs_models._distribute as distribute_mod
import hdfs_models._publish as publish_mod
from hdfs_models import cli, publish, resolve
from hdfs_models._distribute import ensure_archive
from hdfs_models._manifest import MANIFEST_NAME
from hdfs_models.store import DEFAULT_REPLICATION, resolve_replication, write_options
from hdfs_models.testing import write_fake_model


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        (None, {}, DEFAULT_REPLICATION),
        (None, {"HDFS_MODELS_REPLICATION": "5"}, 5),
        (4, {"HDFS_MODELS_REPLICATION": "5"}, 4),
        (None, {"HDFS_MODELS_REPLICATION": ""}, DEFAULT_REPLICATION),
        (1, {}, 1),
    ],
)
def test_replication_resolution_explicit_env_default_p13(value, env, expected):
    assert DEFAULT_REPLICATION == 10  # MapReduce's mapreduce.client.submit.file.replication
    assert resolve_replication(value, env=env) == expected


@pytest.mark.parametrize(
    ("value", "env", "match"),
    [
        (0, {}, r"replication must be a whole number from 1 to 32767, got 0"),
        (40000, {}, r"got 40000"),
        (True, {}, r"got True"),
        ("3", {}, r"got '3'"),
        (None, {"HDFS_MODELS_REPLICATION": "ten"}, r"HDFS_MODELS_REPLICATION='ten' is not a whole number"),
        (None, {"HDFS_MODELS_REPLICATION": "-2"}, r"HDFS_MODELS_REPLICATION must be .* got -2"),
    ],
)
def test_bad_replication_is_a_value_error_p13(value, env, match):
    with pytest.raises(ValueError, match=match):
        resolve_replication(value, env=env)


def test_only_hdfs_clients_are_given_a_replication_p13():
    from hdfs_models.store._hdfs_native import KerberosHdfsFileSystem, KerberosViewfsFileSystem

    web = WebHDFS(host="127.0.0.1", port=9, skip_instance_cache=True)  # no request is made
    assert write_options(web, 7) == {"replication": 7}
    for cls in (KerberosHdfsFileSystem, KerberosViewfsFileSystem):  # hdfs-native subclasses, never connected
        assert write_options(object.__new__(cls), 7) == {"replication": 7}
    assert write_options(LocalFileSystem(), 7) == {}
    assert write_options(MemoryFileSystem(), 7) == {}


class _RecordingMemory(MemoryFileSystem):
    """A memory store that records the keyword arguments of every write."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.writes = {}

    def open(self, path, mode="rb", **kwargs):
        if "w" in mode and "data" not in kwargs:  # data=: memory's pipe_file, recorded there
            self.writes[self._strip_protocol(path)] = kwargs
        return super().open(path, mode, **kwargs)

    def pipe_file(self, path, value, mode="overwrite", **kwargs):  # memory's own drops the kwargs
        self.writes[self._strip_protocol(path)] = kwargs
        return super().pipe_file(path, value, mode, **kwargs)


@pytest.fixture
def recording(monkeypatch):
    """A recording store that takes a replication, as hdfs-native and WebHDFS do."""
    fs = _RecordingMemory(skip_instance_cache=True)
    fake = lambda target, copies: {"replication": copies} if target is fs else {}  # noqa: E731
    monkeypatch.setattr(publish_mod, "write_options", fake)
    monkeypatch.setattr(distribute_mod, "write_options", fake)
    monkeypatch.delenv("HDFS_MODELS_REPLICATION", raising=False)
    return fs


def test_every_file_publish_writes_carries_the_replication_p13(recording, tmp_path, monkeypatch):
    model = write_fake_model(str(tmp_path / "export"), shards=2)
    base = f"/p13-{uuid.uuid4().hex}"
    publish(model, f"memory://{base}", filesystem=recording, signatures=False)
    assert any(p.endswith(MANIFEST_NAME) for p in recording.writes)
    assert len(recording.writes) == 1 + sum(len(files) for _, _, files in os.walk(model))
    assert all(kw == {"replication": 10} for kw in recording.writes.values()), recording.writes
    recording.writes.clear()
    monkeypatch.setenv("HDFS_MODELS_REPLICATION", "6")
    publish(model, f"memory://{base}", filesystem=recording, signatures=False, replication=3)
    assert {kw["replication"] for kw in recording.writes.values()} == {3}  # explicit beats the environment


def test_bad_replication_is_refused_before_any_upload_p13(recording, tmp_path):
    model = write_fake_model(str(tmp_path / "export"))
    with pytest.raises(ValueError, match="got 0"):
        publish(model, f"memory:///p13-{uuid.uuid4().hex}", filesystem=recording, signatures=False, replication=0)
    assert recording.writes == {}


def test_archive_upload_carries_the_replication_p13(recording, tmp_path, monkeypatch):
    """P13: ``ensure_archive`` (the archive strategy) uploads its tar with the replication."""
    base = f"/p13-{uuid.uuid4().hex}/m"
    publish(write_fake_model(str(tmp_path / "export")), f"memory://{base}", filesystem=recording, signatures=False)
    pinned = resolve(f"memory://{base}", filesystem=recording)
    monkeypatch.setattr(distribute_mod, "open_store", lambda url, options=None: (recording, url.split("://", 1)[1]))
    recording.writes.clear()
    stored = ensure_archive(pinned, replication=4)
    assert "/_archives/" in stored
    assert list(recording.writes.values()) == [{"replication": 4}]  # one upload, under a temp name


def test_cli_publish_replication_flag_p13(tmp_path, capsys, monkeypatch):
    seen = {}
    real = publish_mod.publish

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr("hdfs_models.cli._store.publish", spy)
    model = write_fake_model(str(tmp_path / "export"))
    base = str(tmp_path / "store" / "m")
    assert cli.main(["publish", model, base, "--no-signatures", "--replication", "4"]) == 0
    assert seen["replication"] == 4
    assert cli.main(["publish", model, base, "--no-signatures", "--replication", "0"]) == 1
    assert "replication must be a whole number from 1 to 32767, got 0" in capsys.readouterr().err
