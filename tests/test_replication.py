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
from hdfs_models.store import DEFAULT_REPLICATION, cap_replication, resolve_replication, write_options
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


# -- the cap at the live DataNode count (the NameNode's /jmx) ---------------------------------------


def test_namenode_http_addresses_from_the_site_files_p13():
    from hdfs_models.store._replication import namenode_http_addresses

    ha = {
        "dfs.nameservices": "ns",
        "dfs.ha.namenodes.ns": "a,b",
        "dfs.namenode.rpc-address.ns.a": "nn1:8020",
        "dfs.namenode.rpc-address.ns.b": "nn2:8020",
        "dfs.namenode.http-address.ns.a": "nn1:50070",
    }
    assert namenode_http_addresses("hdfs://ns/models", ha) == ["http://nn1:50070", "http://nn2:9870"]
    https = {**ha, "dfs.http.policy": "HTTPS_ONLY", "dfs.namenode.https-address.ns.b": "0.0.0.0:9999"}
    assert namenode_http_addresses("hdfs://ns/m", https) == ["https://nn1:9871", "https://nn2:9999"]
    plain = {"dfs.namenode.http-address": "0.0.0.0:1234"}
    assert namenode_http_addresses("hdfs://host:8020/m", plain) == ["http://host:1234"]
    assert namenode_http_addresses("memory:///m", plain) == []
    assert namenode_http_addresses("hdfs:///m", {}) == []  # no host and no fs.defaultFS


class _Jmx:
    """A real HTTP server on 127.0.0.1 that answers ``/jmx`` like a NameNode (``body`` settable)."""

    def __init__(self):
        import http.server
        import threading

        jmx = self
        self.body, self.paths = b"", []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                jmx.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(jmx.body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def live(self, n):
        import json

        self.body = json.dumps({"beans": [{"name": "Hadoop:service=NameNode,name=FSNamesystemState",
                                           "NumLiveDataNodes": n}]}).encode()  # fmt: skip


@pytest.fixture
def jmx(tmp_path, monkeypatch):
    server = _Jmx()
    closed = _Jmx()  # started and shut at once: its port refuses connections
    closed.server.shutdown()
    closed.server.server_close()
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "hdfs-site.xml").write_text(
        "<configuration>"
        "<property><name>dfs.nameservices</name><value>ns</value></property>"
        "<property><name>dfs.ha.namenodes.ns</name><value>a,b</value></property>"
        "<property><name>dfs.namenode.rpc-address.ns.a</name><value>127.0.0.1:1</value></property>"
        "<property><name>dfs.namenode.rpc-address.ns.b</name><value>127.0.0.1:2</value></property>"
        f"<property><name>dfs.namenode.http-address.ns.a</name><value>127.0.0.1:{closed.port}</value></property>"
        f"<property><name>dfs.namenode.http-address.ns.b</name><value>127.0.0.1:{server.port}</value></property>"
        "</configuration>"
    )
    monkeypatch.setenv("HADOOP_CONF_DIR", str(conf))
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_replication_is_capped_at_the_live_datanodes_the_namenode_reports_p13(jmx):
    from hdfs_models.store._hdfs_native import KerberosHdfsFileSystem
    from hdfs_models.store._replication import live_datanodes

    fs = object.__new__(KerberosHdfsFileSystem)  # an hdfs-native client, never connected
    jmx.live(4)
    assert live_datanodes("hdfs://ns/models/m", fs) == 4  # the first NameNode refuses; the second answers
    assert jmx.paths == ["/jmx?qry=Hadoop:service=NameNode,name=FSNamesystemState"]
    assert cap_replication(10, "hdfs://ns/models/m", fs) == 4
    assert cap_replication(3, "hdfs://ns/models/m", fs) == 3  # under the count: as asked
    assert cap_replication(1, "hdfs://ns/models/m", fs) == 1
    calls = len(jmx.paths)
    assert cap_replication(10, "memory:///m", MemoryFileSystem()) == 10 and len(jmx.paths) == calls  # not asked


@pytest.mark.parametrize("body", [b"not json", b'{"beans": []}', b'{"beans": [{"NumLiveDataNodes": 0}]}'])
def test_no_usable_count_leaves_the_replication_as_asked_p13(jmx, body):
    from hdfs_models.store._hdfs_native import KerberosHdfsFileSystem

    jmx.body = body
    assert cap_replication(10, "hdfs://ns/models/m", object.__new__(KerberosHdfsFileSystem)) == 10
    assert jmx.paths  # it was asked


def test_an_unreadable_site_file_leaves_the_replication_as_asked_p13(tmp_path, monkeypatch):
    """The cap is best effort: a broken hdfs-site.xml must not fail the publish it would cap."""
    from hdfs_models.store._hdfs_native import KerberosHdfsFileSystem

    (tmp_path / "hdfs-site.xml").write_text("<configuration><property>")
    monkeypatch.setenv("HADOOP_CONF_DIR", str(tmp_path))
    assert cap_replication(10, "hdfs://127.0.0.1:1/m", object.__new__(KerberosHdfsFileSystem)) == 10
