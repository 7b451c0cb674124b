"""doctor: each check against a World of fakes (env, clock, processes, sockets, files)."""

import dataclasses
import json
import os
import pwd
import socket
import time

import pytest

from hdfs_models import cli, publish
from hdfs_models._doctor import World, exit_status, model_check, parse_klist, render, run_checks
from hdfs_models._doctor._hadoop import hadoop_conf, kerberos, namenode_checks, token_file
from hdfs_models._doctor._host import bfloat16, cache_root_check, cache_space, java, package_versions
from hdfs_models.store._hadoop_conf import namenodes
from hdfs_models.testing import write_fake_model
from hdfs_models.testing.tokens import writable_token_file

NOW = 1_800_000_000.0
HA_SITE = {
    "fs.defaultFS": "hdfs://prod",
    "dfs.nameservices": "prod",
    "dfs.ha.namenodes.prod": "nn1,nn2",
    "dfs.namenode.rpc-address.prod.nn1": "nn1.example:8020",
    "dfs.namenode.rpc-address.prod.nn2": "nn2.example:8020",
}


def write_site(directory, name, props):
    os.makedirs(directory, exist_ok=True)
    body = "".join(f"<property><name>{k}</name><value>{v}</value></property>" for k, v in props.items())
    with open(os.path.join(directory, name), "w") as fh:
        fh.write(f"<?xml version='1.0'?><configuration>{body}</configuration>")
    return str(directory)


class Net:
    """connect(): addresses in ``up`` answer, ``refused`` refuse, anything else times out."""

    def __init__(self, up=(), refused=()):
        self.up, self.refused, self.calls = set(up), set(refused), []

    def __call__(self, host, port, timeout):
        self.calls.append((host, port, timeout))
        if f"{host}:{port}" in self.up:
            return
        if f"{host}:{port}" in self.refused:
            raise ConnectionRefusedError(111, "Connection refused")
        if host.endswith(".nowhere"):
            raise socket.gaierror(-2, "Name or service not known")
        raise TimeoutError("timed out")


def world(**kw):
    ticks = iter(range(0, 10_000, 2))  # each monotonic() call is 2 ms after the last
    base = dict(
        env={},
        now=lambda: NOW,
        monotonic=lambda: next(ticks) / 1000.0,
        which=lambda name: None,
        connect=Net(),
        uid=lambda: os.geteuid(),
        version=lambda dist: None,
    )
    base.update(kw)
    return World(**base)


def klist_output(expires, principal="alice@EXAMPLE.COM", fmt="%m/%d/%Y %H:%M:%S"):
    start = time.strftime(fmt, time.localtime(expires - 36000))
    end = time.strftime(fmt, time.localtime(expires))
    return (
        f"Ticket cache: FILE:/tmp/krb5cc_0\nDefault principal: {principal}\n\n"
        f"Valid starting       Expires              Service principal\n"
        f"{start}  {end}  krbtgt/EXAMPLE.COM@EXAMPLE.COM\n\trenew until {end}\n"
    )


# -- Hadoop configuration ------------------------------------------------------


def test_hadoop_conf_unset_is_a_warning_with_the_fix():
    check, props = hadoop_conf(world())
    assert (check.status, props) == ("warn", {})
    assert "HADOOP_CONF_DIR is not set" in check.detail and "export HADOOP_CONF_DIR" in check.fix


def test_hadoop_conf_names_dir_files_and_default_fs(tmp_path):
    conf = write_site(tmp_path / "conf", "core-site.xml", {"fs.defaultFS": "hdfs://prod"})
    write_site(conf, "hdfs-site.xml", HA_SITE)
    check, props = hadoop_conf(world(env={"HADOOP_CONF_DIR": conf}))
    assert check.status == "ok"
    assert check.detail == f"HADOOP_CONF_DIR={conf} (core-site.xml, hdfs-site.xml); default FS hdfs://prod"
    assert props["dfs.ha.namenodes.prod"] == "nn1,nn2"


def test_hadoop_conf_from_hadoop_home(tmp_path):
    write_site(tmp_path / "etc" / "hadoop", "core-site.xml", {"fs.defaultFS": "hdfs://nn:9000"})
    check, _ = hadoop_conf(world(env={"HADOOP_HOME": str(tmp_path)}))
    assert check.status == "ok" and "HADOOP_HOME/etc/hadoop=" in check.detail and "hdfs://nn:9000" in check.detail


@pytest.mark.parametrize("case", ["missing dir", "no site files", "broken xml"])
def test_hadoop_conf_failures_name_the_path(tmp_path, case):
    conf = tmp_path / "conf"
    if case != "missing dir":
        conf.mkdir()
    if case == "broken xml":
        (conf / "core-site.xml").write_text("<configuration><property>")
    check, props = hadoop_conf(world(env={"HADOOP_CONF_DIR": str(conf)}))
    assert check.status == "fail" and str(conf) in check.detail and check.fix and props == {}
    expected = {
        "missing dir": "is not a directory",
        "no site files": "holds neither core-site.xml",
        "broken xml": "not well-formed XML",
    }[case]
    assert expected in check.detail


# -- NameNodes -------------------------------------------------------------------


def test_namenodes_expand_ha_plain_and_viewfs():
    assert [n.address for n in namenodes("hdfs://prod/models/m", HA_SITE)] == ["nn1.example:8020", "nn2.example:8020"]
    assert [n.address for n in namenodes("hdfs://box:9000/m", {})] == ["box:9000"]
    assert [n.address for n in namenodes("hdfs://box/m", {})] == ["box:8020"]
    assert [n.address for n in namenodes("hdfs:///m", {"fs.defaultFS": "hdfs://box:1"})] == ["box:1"]
    view = {
        **HA_SITE,
        "fs.viewfs.mounttable.cl.link./models": "hdfs://prod/models",
        "fs.viewfs.mounttable.cl.link./data": "hdfs://prod/data",
        "fs.viewfs.mounttable.cl.link./tmp": "file:///tmp",
    }
    assert [n.node_id for n in namenodes("viewfs://cl/models/m", view)] == ["nn1", "nn2"]
    with pytest.raises(ValueError, match=r"dfs.namenode.rpc-address.prod.nn2 is not set"):
        namenodes("hdfs://prod/m", {k: v for k, v in HA_SITE.items() if not k.endswith("nn2")})


def test_each_namenode_is_a_line_with_latency():
    checks = namenode_checks("hdfs://prod/m", HA_SITE, world(connect=Net(up={"nn1.example:8020", "nn2.example:8020"})))
    assert [(c.name, c.status, c.detail) for c in checks] == [
        ("namenode", "ok", "namenode prod.nn1 nn1.example:8020: reachable in 2.0 ms"),
        ("namenode", "ok", "namenode prod.nn2 nn2.example:8020: reachable in 2.0 ms"),
    ]


def test_one_ha_namenode_down_is_a_warning_all_down_a_failure():
    checks = namenode_checks(None, HA_SITE, world(connect=Net(up={"nn1.example:8020"}, refused={"nn2.example:8020"})))
    assert [c.status for c in checks] == ["ok", "warn"]
    assert checks[1].detail == "namenode prod.nn2 nn2.example:8020: connection refused"
    assert "dfs.namenode.rpc-address.prod.nn2" in checks[1].fix
    checks = namenode_checks(None, HA_SITE, world(connect=Net(refused={"nn1.example:8020", "nn2.example:8020"})))
    assert [c.status for c in checks] == ["fail", "fail"]


@pytest.mark.parametrize(
    "url, words",
    [
        ("hdfs://127.0.0.1:1/m", "connection refused"),
        ("hdfs://host.nowhere:8020/m", "unknown host"),
        ("hdfs://10.255.255.1:8020/m", "no answer within the timeout"),
    ],
)
def test_unreachable_namenode_fails_with_its_reason(url, words):
    w = world(connect=Net(refused={"127.0.0.1:1"}), timeout=1.5)
    [check] = namenode_checks(url, {}, w)
    assert check.status == "fail" and words in check.detail and check.fix
    assert w.connect.calls[0][2] == 1.5


def test_no_hdfs_target_skips_and_broken_ha_fails():
    assert namenode_checks("file:///tmp/m", {}, world())[0].status == "skip"
    [check] = namenode_checks("hdfs://prod/m", {"dfs.nameservices": "prod"}, world())
    assert check.status == "fail" and "dfs.ha.namenodes.prod is not set" in check.detail


# -- Kerberos and tokens -------------------------------------------------------------

KERBEROS = {"hadoop.security.authentication": "kerberos"}


def fake_klist(status, output):
    def run(argv, env, timeout):
        assert argv == ["/usr/bin/klist"] and env["LC_ALL"] == "C"
        return status, output

    return run


def test_parse_klist_mit_heimdal_and_iso_formats():
    for fmt in ("%m/%d/%Y %H:%M:%S", "%m/%d/%y %H:%M:%S", "%b %d %H:%M:%S %Y", "%Y-%m-%dT%H:%M:%S"):
        assert parse_klist(klist_output(NOW + 7200, fmt=fmt)) == ("alice@EXAMPLE.COM", NOW + 7200)
    assert parse_klist("klist: No credentials cache found") == (None, None)


@pytest.mark.parametrize(
    "left, status, words",
    [
        (9 * 3600, "ok", "ticket for alice@EXAMPLE.COM, expires in 9.0 h"),
        (1200, "warn", "expires in 20 min"),
        (-60, "fail", "expired at"),
    ],
)
def test_ticket_expiry(left, status, words):
    w = world(which=lambda name: "/usr/bin/klist", run=fake_klist(0, klist_output(NOW + left)))
    check = kerberos(KERBEROS, w)
    assert check.status == status and words in check.detail
    assert check.detail.startswith("Kerberos required (hadoop.security.authentication=kerberos)")


def test_no_ticket_fails_only_when_kerberos_is_required():
    w = world(
        which=lambda name: "/usr/bin/klist",
        run=fake_klist(1, "klist: No credentials cache found (filename: /tmp/krb5cc_0)\n"),
    )
    check = kerberos(KERBEROS, w)
    assert check.status == "fail" and "no ticket (klist: No credentials cache found" in check.detail
    assert check.fix.startswith("kinit")
    assert kerberos({}, w).status == "skip"
    with_token = dataclasses.replace(w, env={"HADOOP_TOKEN_FILE_LOCATION": "/t"})
    assert kerberos(KERBEROS, with_token).status == "ok"


def test_missing_klist_says_so(tmp_path):
    check = kerberos(KERBEROS, world(env={"KRB5CCNAME": f"FILE:{tmp_path / 'none'}"}))
    assert check.status == "fail" and "klist is not installed" in check.detail and "krb5-user" in check.fix
    ccache = tmp_path / "cc"  # an MIT ccache v4 header holding alice@EXAMPLE.COM as default principal
    ccache.write_bytes(
        b"\x05\x04\x00\x00"
        + b"\x00\x00\x00\x01"
        + b"\x00\x00\x00\x01"
        + b"\x00\x00\x00\x0bEXAMPLE.COM"
        + b"\x00\x00\x00\x05alice"
    )
    check = kerberos(KERBEROS, world(env={"KRB5CCNAME": f"FILE:{ccache}"}))
    assert check.status == "warn" and "the ticket cache holds alice@EXAMPLE.COM" in check.detail
    check = kerberos({}, world())
    assert check.status == "skip" and "klist is not installed" in check.detail


def test_token_file(tmp_path):
    assert token_file(world()).status == "skip"
    good = tmp_path / "tokens"
    good.write_bytes(
        writable_token_file(("HDFS_DELEGATION_TOKEN", "127.0.0.1:8020", "alice"), ("kms-dt", "kms:9600", "alice"))
    )
    check = token_file(World(env={"HADOOP_TOKEN_FILE_LOCATION": str(good)}))
    assert check.status == "ok"
    assert check.detail == f"HADOOP_TOKEN_FILE_LOCATION={good}: HDFS delegation token for 127.0.0.1:8020 (for alice)"
    other = tmp_path / "other"
    other.write_bytes(writable_token_file(("kms-dt", "kms:9600", "alice")))
    check = token_file(World(env={"HADOOP_TOKEN_FILE_LOCATION": str(other)}))
    assert check.status == "fail" and "no HDFS_DELEGATION_TOKEN (tokens: kms-dt)" in check.detail
    real = World(env={"HADOOP_TOKEN_FILE_LOCATION": str(tmp_path / "gone")})
    assert "no such file" in token_file(real).detail and token_file(real).status == "fail"
    (tmp_path / "junk").write_bytes(b"not a token")
    junk = World(env={"HADOOP_TOKEN_FILE_LOCATION": str(tmp_path / "junk")})
    assert token_file(junk).status == "fail" and "no HDTS header" in token_file(junk).detail


# -- cache root, space, versions, CPU, Java --------------------------------------------


def test_cache_root_writable_owner_and_mode(tmp_path):
    root = tmp_path / "cache"
    root.mkdir(mode=0o750)
    os.chmod(root, 0o750)
    check = cache_root_check(str(root), world())
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert (check.status, check.detail) == ("ok", f"{root}: writable, owner {me}, mode 0750")
    assert os.listdir(root) == []  # the probe file is gone
    check = cache_root_check(str(root), world(uid=lambda: 12345))
    assert "(not this user)" in check.detail


def test_cache_root_world_writable_fails_sticky_does_not(tmp_path):
    root = tmp_path / "cache"
    root.mkdir()
    os.chmod(root, 0o777)
    check = cache_root_check(str(root), world())
    assert check.status == "fail" and "writable by every user (mode 0777)" in check.detail
    assert check.fix == f"chmod o-w {root}"
    os.chmod(root, 0o1777)
    assert cache_root_check(str(root), world()).status == "ok"


def test_cache_root_missing_or_under_a_file(tmp_path):
    check = cache_root_check(str(tmp_path / "a" / "b"), world())
    assert check.status == "ok" and f"created under {tmp_path} on first use" in check.detail
    (tmp_path / "file").write_text("x")
    check = cache_root_check(str(tmp_path / "file" / "cache"), world())
    assert check.status == "fail" and f"{tmp_path / 'file'} is not a directory" in check.detail
    assert "HDFS_MODELS_CACHE" in check.fix
    check = cache_root_check(str(tmp_path / "file"), world())
    assert check.status == "fail" and check.detail == f"{tmp_path / 'file'} is not a directory"


def test_cache_space_against_the_model_size(tmp_path):
    w = world(disk_free=lambda path: 5 << 30)
    assert cache_space(str(tmp_path / "x"), None, w).detail == f"5.0 GiB free at {tmp_path}"
    check = cache_space(str(tmp_path), 6 << 30, w)
    assert check.status == "fail" and "the model needs 6.0 GiB" in check.detail
    assert cache_space(str(tmp_path), None, world(disk_free=lambda path: 100 << 20)).status == "warn"


def test_package_versions_from_metadata_only():
    versions = {"tensorflow-cpu": "2.21.0", "pyspark": "4.3.0", "hdfs-native": "0.14.7"}
    checks = package_versions(world(version=versions.get))
    assert [(c.name, c.status, c.detail) for c in checks[:2]] == [
        ("tensorflow", "ok", "tensorflow-cpu 2.21.0"),
        ("pyspark", "ok", "pyspark 4.3.0"),
    ]
    assert checks[2].status == "warn" and checks[2].fix == "pip install 'hdfs-models[arrow]' where it is needed"


def test_bfloat16_from_cpuinfo():
    def cpu(text):
        return world(read_bytes=lambda path: text.encode())

    assert (
        bfloat16(cpu("flags\t\t: fpu sse avx512f avx512_bf16 amx_bf16\n")).detail
        == "native bfloat16 (amx_bf16, avx512_bf16)"
    )
    # Arm BF16 is not what the scorer accepts (hdfs_models._runtime.read_cpu): one rule for both
    assert bfloat16(cpu("Features\t: fp asimd bf16 i8mm\n")).status == "warn"
    check = bfloat16(cpu("flags\t\t: fpu sse avx2\n"))
    assert check.status == "warn" and "no native bfloat16" in check.detail
    assert "cannot tell" in bfloat16(cpu("processor: 0\n")).detail


def fake_java(status, output):
    def run(argv, env, timeout):
        assert argv[1:] == ["-version"]
        return status, output

    return run


@pytest.mark.parametrize(
    "pyspark, output, status, words",
    [
        (
            "4.3.0",
            'openjdk version "17.0.15" 2025-04-15\n',
            "ok",
            "Java 17.0.15 at /jdk/bin/java (pyspark 4.3.0 needs 17+)",
        ),
        ("4.3.0", 'openjdk version "11.0.2" 2019-01-15\n', "fail", "pyspark 4.3.0 needs Java 17+"),
        ("3.5.1", 'java version "1.8.0_392"\n', "ok", "Java 1.8.0_392"),
        ("4.0.0", "Error: could not open jvm.cfg\n", "fail", "-version failed: Error: could not open jvm.cfg"),
    ],
)
def test_java_version_for_pyspark(pyspark, output, status, words):
    w = world(
        env={"JAVA_HOME": "/jdk"},
        version={"pyspark": pyspark}.get,
        which=lambda p: p,
        run=fake_java(0 if "version" in output else 1, output),
    )
    check = java(w)
    assert check.status == status and words in check.detail


def test_java_missing_or_not_needed():
    check = java(world(version={"pyspark": "4.3.0"}.get))
    assert check.status == "fail" and "no java is on PATH" in check.detail and "JDK 17" in check.fix
    assert java(world()).status == "skip"


# -- the whole report ----------------------------------------------------------------


def test_model_check_resolves_a_local_store(tmp_path):
    base = str(tmp_path / "store" / "m")
    publish(write_fake_model(str(tmp_path / "export")), base, signatures=False)
    check, size = model_check(base, "latest")
    assert check.status == "ok" and check.detail.startswith(f"{base}/1: version 1, 3 files") and size > 0
    check, size = model_check(str(tmp_path / "nope"), "latest")
    assert check.status == "fail" and str(tmp_path / "nope") in check.detail and "versions" in check.fix
    assert size is None


def test_run_checks_order_and_exit_status(tmp_path):
    w = world(
        env={"HDFS_MODELS_CACHE": str(tmp_path / "c")},
        connect=Net(refused={"127.0.0.1:1"}),
        read_bytes=lambda p: b"flags: avx512_bf16\n",
        disk_free=lambda p: 10 << 30,
    )
    checks = run_checks("hdfs://127.0.0.1:1/models/m", world=w)
    assert [c.name for c in checks] == [
        "hadoop-conf",
        "kerberos",
        "token-file",
        "namenode",
        "model",
        "cache-root",
        "cache-space",
        "tensorflow",
        "pyspark",
        "pyarrow",
        "hdfs-native",
        "bfloat16",
        "java",
    ]
    assert checks[4].status == "skip" and exit_status(checks) == 1
    lines = render(checks).splitlines()
    assert len(lines) == len(checks)
    assert lines[3] == (
        "FAIL namenode: namenode 127.0.0.1:1: connection refused "
        "(fix: start the NameNode, or correct the address hdfs://127.0.0.1:1)"
    )
    assert exit_status([c for c in checks if c.status != "fail"]) == 0


def test_cli_doctor_json_and_exit_codes(tmp_path, capsys, monkeypatch):
    base = str(tmp_path / "store" / "m")
    publish(write_fake_model(str(tmp_path / "export")), base, signatures=False)
    monkeypatch.delenv("HADOOP_CONF_DIR", raising=False)
    code = cli.main(["doctor", base, "--cache", str(tmp_path / "cache"), "--json"])
    report = json.loads(capsys.readouterr().out)
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["model"]["status"] == "ok" and by_name["cache-root"]["status"] == "ok"
    assert code == (0 if report["ok"] else 1) and report["ok"] == all(c["status"] != "fail" for c in report["checks"])
    (tmp_path / "file").write_text("x")
    code = cli.main(["doctor", base, "--cache", str(tmp_path / "file" / "cache")])
    out = capsys.readouterr().out
    assert code == 1 and f"FAIL cache-root: {tmp_path / 'file' / 'cache'} cannot be created" in out
