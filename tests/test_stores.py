"""Store resolution (B9), per-process filesystem cache (F8) and error translation."""

import multiprocessing
import os
import sys

import fsspec
import pytest

from hdfs_models.errors import (
    InvalidModelError,
    MissingExtraError,
    ModelNotFoundError,
    StoreError,
    StorePermissionError,
    UnsupportedProtocolError,
)
from hdfs_models.store._open import join_url, open_store, split_scheme, translate_errors
from hdfs_models.testing.pytest_plugin import require_module


def _protocol(fs):
    return fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]


def test_plain_and_file_paths_open_the_local_filesystem(tmp_path):
    fs, path = open_store(str(tmp_path / "m"))
    assert _protocol(fs) == "file" and path == str(tmp_path / "m")
    fs2, path2 = open_store(f"file://{tmp_path}/m")
    assert fs2 is fs and path2 == str(tmp_path / "m")


def test_memory_url_strips_protocol():
    fs, path = open_store("memory://models/mnist")
    assert _protocol(fs) == "memory" and path == "/models/mnist"


def test_hdfs_and_viewfs_use_hdfs_native():
    fs, path = open_store("hdfs://127.0.0.1:9/models/mnist")
    from hdfs_native.fsspec import HdfsFileSystem, ViewfsFileSystem

    assert isinstance(fs, HdfsFileSystem)
    assert (fs.host, fs.port, path) == ("127.0.0.1", 9, "/models/mnist")
    mounts = {"fs.viewfs.mounttable.cluster.linkFallback": "hdfs://127.0.0.1:9/"}
    vfs, vpath = open_store("viewfs://cluster/models/x", mounts)
    assert isinstance(vfs, ViewfsFileSystem) and vpath == "/models/x"


def test_client_construction_errors_are_translated():
    with pytest.raises(StoreError, match="viewfs://nomount/x: .*viewfs fallback"):
        open_store("viewfs://nomount/x")


def test_webhdfs_passes_options():
    fs, path = open_store(
        "webhdfs://127.0.0.1:9870/models/m", {"user": "alice", "data_proxy": {"dn:9864": "127.0.0.1:9864"}}
    )
    assert type(fs).__name__ == "WebHDFS"
    assert fs.pars["user.name"] == "alice"
    assert fs.url == "http://127.0.0.1:9870/webhdfs/v1"
    assert path == "/models/m"


def test_pyarrow_filesystem_object_is_wrapped(tmp_path):
    pafs = require_module("pyarrow.fs", "arrow")
    (tmp_path / "a.txt").write_bytes(b"hello")
    fs, path = open_store(str(tmp_path), filesystem=pafs.LocalFileSystem())
    assert type(fs).__name__ == "ArrowFSWrapper"
    assert fs.cat_file(f"{path}/a.txt") == b"hello"
    _, hpath = open_store("hdfs://nn:8020/models/x", filesystem=pafs.LocalFileSystem())
    assert hpath == "/models/x"


def test_fsspec_filesystem_object_is_used_as_is():
    mem = fsspec.filesystem("memory")
    fs, path = open_store("memory://a/b", filesystem=mem)
    assert fs is mem and path == "/a/b"


def test_other_objects_are_refused():
    with pytest.raises(TypeError, match="fsspec AbstractFileSystem or a pyarrow.fs.FileSystem"):
        open_store("/x", filesystem=object())


def test_unknown_scheme_lists_supported_ones_and_extras():  # B9
    with pytest.raises(UnsupportedProtocolError, match="bogus://x/y: unsupported URL scheme 'bogus'") as info:
        open_store("bogus://x/y")
    text = str(info.value)
    for needle in ("hdfs-models[hdfs]", "hdfs-models[webhdfs]", "hdfs-models[arrow]", "memory://", "webhdfs://"):
        assert needle in text
    assert info.value.url == "bogus://x/y"


def test_missing_client_names_the_extra(monkeypatch):  # B9
    monkeypatch.setitem(sys.modules, "hdfs_native", None)
    monkeypatch.setitem(sys.modules, "hdfs_native.fsspec", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'hdfs-models\[hdfs\]'") as info:
        open_store("hdfs://nn:8020/m")
    assert info.value.extra == "hdfs-models[hdfs]"


@pytest.mark.parametrize(
    "url, hidden, extra",
    [
        ("webhdfs://nn:9870/m", ("requests", "fsspec.implementations.webhdfs"), "hdfs-models[webhdfs]"),
        ("arrow_hdfs://nn:8020/m", ("pyarrow", "pyarrow.fs", "fsspec.implementations.arrow"), "hdfs-models[arrow]"),
    ],
)
def test_other_missing_clients_name_their_extra(monkeypatch, url, hidden, extra):  # B9
    for module in hidden:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError, match="is not installed") as info:
        open_store(url)
    assert info.value.extra == extra and extra in str(info.value)
    assert isinstance(info.value, ImportError) and not isinstance(info.value, ValueError)


def test_same_options_share_an_instance_other_options_do_not():
    a, _ = open_store("webhdfs://h:1/x", {"user": "a"})
    b, _ = open_store("webhdfs://h:1/y", {"user": "a"})
    c, _ = open_store("webhdfs://h:1/x", {"user": "b"})
    d, _ = open_store("webhdfs://h:2/x", {"user": "a"})
    assert a is b
    assert c is not a and d is not a


def test_hdfs_clients_are_keyed_by_the_hadoop_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("HADOOP_USER_NAME", raising=False)
    first, _ = open_store("hdfs://127.0.0.1:9/m")
    assert open_store("hdfs://127.0.0.1:9/other")[0] is first
    monkeypatch.setenv("HADOOP_USER_NAME", "alice")
    as_alice, _ = open_store("hdfs://127.0.0.1:9/m")
    monkeypatch.setenv("HADOOP_CONF_DIR", str(tmp_path))
    other_conf, _ = open_store("hdfs://127.0.0.1:9/m")
    assert len({id(first), id(as_alice), id(other_conf)}) == 3
    mem, _ = open_store("memory://x")
    monkeypatch.setenv("HADOOP_USER_NAME", "bob")
    assert open_store("memory://x")[0] is mem  # other stores ignore it


def _child_reports(conn, parent_id):
    fs, _ = open_store("memory://forked")
    again, _ = open_store("memory://forked")
    conn.send((id(fs) != parent_id, fs is again, fs.cat_file("/forked/f")))
    conn.close()


def test_forked_child_gets_its_own_filesystem():  # F8
    parent_fs, _ = open_store("memory://forked")
    parent_fs.pipe_file("/forked/f", b"data")
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_reports, args=(sender, id(parent_fs)))
    proc.start()
    new_instance, cached_in_child, data = receiver.recv()
    proc.join(30)
    assert proc.exitcode == 0
    assert new_instance, "the child reused the parent's filesystem object"
    assert cached_in_child and data == b"data"
    assert open_store("memory://forked")[0] is parent_fs


def test_cache_key_includes_pid(monkeypatch):  # F8, without forking
    first, _ = open_store("memory://x")
    monkeypatch.setattr(os, "getpid", lambda: -1)
    second, _ = open_store("memory://x")
    assert second is not first


@pytest.mark.parametrize(
    "url, parts, expected",
    [
        ("hdfs://nn:8020/models", ("mnist", "3"), "hdfs://nn:8020/models/mnist/3"),
        ("hdfs://nn:8020", ("models",), "hdfs://nn:8020/models"),
        ("memory://m/", ("/1/",), "memory://m/1"),
        ("/tmp/base", ("", "2"), "/tmp/base/2"),
    ],
)
def test_join_url(url, parts, expected):
    assert join_url(url, *parts) == expected


@pytest.mark.parametrize(
    "url, expected",
    [("hdfs://nn/x", "hdfs"), ("/tmp/x", "file"), ("WebHDFS://h/x", "webhdfs"), ("c:\\x", "file")],
)
def test_split_scheme(url, expected):
    assert split_scheme(url)[0] == expected


@pytest.mark.parametrize(
    "raised, expected, reason",
    [
        (FileNotFoundError("/m/x"), ModelNotFoundError, "not found"),
        (PermissionError("denied"), StorePermissionError, "permission denied"),
        (
            RuntimeError("RPC error: org.apache.hadoop.security.AccessControlException: Permission denied: user=bob"),
            StorePermissionError,
            "permission denied",
        ),
        (ConnectionRefusedError("refused"), StoreError, "ConnectionRefusedError"),
        (OSError(5, "I/O error"), StoreError, "OSError"),
        (RuntimeError("Checksum error"), StoreError, "RuntimeError"),
    ],
)
def test_translate_errors_most_specific_first(raised, expected, reason):
    with pytest.raises(expected, match="hdfs://nn/m: reading: ") as info:
        with translate_errors("hdfs://nn/m", "reading"):
            raise raised
    assert type(info.value) is expected
    assert info.value.url == "hdfs://nn/m" and info.value.reason == reason
    assert info.value.__cause__ is raised
    assert isinstance(info.value, OSError)


def test_translate_errors_passes_own_errors_and_non_io_errors():
    own = InvalidModelError("x: bad", url="x")
    with pytest.raises(InvalidModelError) as info:
        with translate_errors("x"):
            raise own
    assert info.value is own
    with pytest.raises(KeyError):
        with translate_errors("x"):
            raise KeyError("k")


def test_local_missing_path_is_model_not_found(tmp_path):
    fs, path = open_store(str(tmp_path / "missing"))
    with pytest.raises(ModelNotFoundError, match="missing: not found"):
        with translate_errors(str(tmp_path / "missing")):
            fs.info(path)


# -- hdfs-native client defaults (fail fast on a dead NameNode) -------------------------------


def test_hdfs_native_defaults_bound_failover_and_yield_to_site_xml(tmp_path):
    from hdfs_models.store._open import HDFS_NATIVE_DEFAULTS, hdfs_native_defaults

    assert hdfs_native_defaults("hdfs", env={}) == HDFS_NATIVE_DEFAULTS
    assert hdfs_native_defaults("file", env={}) == {}
    (tmp_path / "hdfs-site.xml").write_text(
        "<configuration><property><name>dfs.client.failover.max.attempts</name>"
        "<value>20</value></property></configuration>"
    )
    chosen = hdfs_native_defaults("viewfs", env={"HADOOP_CONF_DIR": str(tmp_path)})
    assert "dfs.client.failover.max.attempts" not in chosen
    assert chosen["dfs.client.failover.sleep.max.millis"] == "3000"


@pytest.mark.timeout(60)
def test_refused_namenode_fails_fast_naming_the_url():
    require_module("hdfs_native", "hdfs")
    from hdfs_models import StoreError, list_versions

    # Port 1 on loopback refuses connections; hdfs-native alone would retry ~3 minutes.
    with pytest.raises(StoreError, match=r"hdfs://127\.0\.0\.1:1/models/m.*Connection refused"):
        list_versions("hdfs://127.0.0.1:1/models/m")


def _container(tmp_path, monkeypatch, *, shipped=True):
    """A stand-in YARN container working dir, with Spark's shipped Hadoop conf when ``shipped``."""
    work = tmp_path / "container_01"
    conf = work / "__spark_conf__" / "__hadoop_conf__"
    conf.mkdir(parents=True)
    if shipped:
        (conf / "core-site.xml").write_text(
            "<configuration><property><name>hadoop.security.authentication"
            "</name><value>kerberos</value></property></configuration>"
        )
    for name in ("HADOOP_CONF_DIR", "HADOOP_HOME"):
        monkeypatch.setenv(name, "")  # records the original value (or its absence) for teardown,
        monkeypatch.delenv(name)  # which also undoes open_store setting HADOOP_CONF_DIR
    monkeypatch.setenv("CONTAINER_ID", "container_1_0001_01_000002")
    monkeypatch.chdir(work)
    return str(conf)


def test_a_yarn_container_without_a_conf_dir_uses_the_one_spark_shipped(tmp_path, monkeypatch):
    from hdfs_models.store._hadoop_conf import conf_dir, shipped_conf_dir

    conf = _container(tmp_path, monkeypatch)
    assert shipped_conf_dir() == conf == conf_dir()
    open_store("hdfs://127.0.0.1:9/m")  # hdfs-native reads HADOOP_CONF_DIR itself: now set
    assert os.environ["HADOOP_CONF_DIR"] == conf


def test_the_shipped_conf_is_used_only_in_a_container_without_one(tmp_path, monkeypatch):
    from hdfs_models.store._hadoop_conf import shipped_conf_dir

    _container(tmp_path, monkeypatch)
    assert shipped_conf_dir({"CONTAINER_ID": "c", "HADOOP_CONF_DIR": "/etc/hadoop/conf"}) is None
    assert shipped_conf_dir({"CONTAINER_ID": "c", "HADOOP_HOME": "/opt/hadoop"}) is None
    assert shipped_conf_dir({}) is None  # not in a YARN container
    open_store("memory://x")  # not a Hadoop scheme: the environment is left alone
    assert "HADOOP_CONF_DIR" not in os.environ


def test_a_shipped_dir_without_core_site_is_ignored(tmp_path, monkeypatch):
    from hdfs_models.store._hadoop_conf import shipped_conf_dir

    _container(tmp_path, monkeypatch, shipped=False)
    assert shipped_conf_dir() is None
