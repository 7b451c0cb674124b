"""Store hygiene (RELIABILITY F13): stale publisher temps are swept only on request, never a live one.

The MiniDFS case, with a publisher SIGKILLed mid-upload, is in
integration/test_reliability_minidfs.py.
"""

import json
import os
import time
import uuid

import pytest

from hdfs_models import cli, publish
from hdfs_models._store_gc import is_temp_name, stale, sweep_store
from hdfs_models.testing import write_fake_model

HOUR = 3600.0


def _age(path, seconds, now):
    os.utime(path, (now - seconds, now - seconds))


def _temp(root, name, age, now, file_age=None):
    """A temp dir holding one file; the dir is ``age`` old, the file ``file_age`` (default: same)."""
    path = os.path.join(root, name)
    os.makedirs(path)
    with open(os.path.join(path, "saved_model.pb"), "wb") as fh:
        fh.write(b"x" * 10)
    _age(os.path.join(path, "saved_model.pb"), age if file_age is None else file_age, now)
    _age(path, age, now)
    return path


@pytest.fixture
def store(tmp_path):
    """BASE with version 1, an old temp, a young one, an old dir with a fresh file, and archive temps."""
    now = time.time()
    base = str(tmp_path / "store" / "mnist")
    publish(write_fake_model(str(tmp_path / "src")), base, signatures=False)
    _temp(base, "_tmp-old", 2 * HOUR, now)
    _temp(base, "_tmp-young", 60, now)
    _temp(base, "_tmp-busy", 2 * HOUR, now, file_age=10)  # an upload still writing into an old dir
    os.makedirs(os.path.join(base, "_logs"))
    archives = os.path.join(base, "_archives")
    os.makedirs(archives)
    for name, age in ((".dead.tmp", 2 * HOUR), (".live.tmp", 5), ("1-abc.tar", 2 * HOUR)):
        with open(os.path.join(archives, name), "wb") as fh:
            fh.write(b"t" * 7)
        _age(os.path.join(archives, name), age, now)
    return base


def _names(base):
    return sorted(os.listdir(base)), sorted(os.listdir(os.path.join(base, "_archives")))


def test_pure_rules():
    assert is_temp_name("_tmp-1f2e") and not is_temp_name("1") and not is_temp_name("_logs")
    assert is_temp_name(".9a.tmp", in_archives=True) and not is_temp_name("1-abc.tar", in_archives=True)
    assert stale(3601.0, HOUR) and not stale(3600.0, HOUR) and not stale(None, 0.0)


def test_dry_run_reports_and_removes_nothing_f13(store):
    before = _names(store)
    temps = sweep_store(store, HOUR, dry_run=True)
    assert {t.url.rsplit("/", 1)[-1]: t.removed for t in temps} == {
        "_tmp-old": True,
        "_tmp-young": False,
        "_tmp-busy": False,
        ".dead.tmp": True,
        ".live.tmp": False,
    }
    assert _names(store) == before


def test_sweep_removes_only_temps_untouched_longer_than_the_bound_f13(store):
    temps = sweep_store(store, HOUR)
    removed = sorted(t.url for t in temps if t.removed)
    assert removed == [f"{store}/_archives/.dead.tmp", f"{store}/_tmp-old"]
    old = next(t for t in temps if t.url.endswith("_tmp-old"))
    assert old.bytes == 10 and 2 * HOUR - 60 < old.age < 2 * HOUR + 60
    assert _names(store) == (["1", "_archives", "_logs", "_tmp-busy", "_tmp-young"], [".live.tmp", "1-abc.tar"])
    assert sweep_store(store, 0.0)  # with no bound, every temp touched before now is stale
    assert _names(store) == (["1", "_archives", "_logs"], ["1-abc.tar"])


def test_ages_count_from_the_store_s_clock_not_a_skewed_client_s_p7(store):
    ahead = sweep_store(store, HOUR, dry_run=True, clock=lambda: time.time() + 5 * HOUR)  # client 5 h ahead
    assert {t.url.rsplit("/", 1)[-1] for t in ahead if t.removed} == {"_tmp-old", ".dead.tmp"}  # live ones kept
    young = next(t for t in ahead if t.url.endswith("_tmp-young"))
    assert 50 < young.age < 120  # 60 s by the store's clock, not 5 h
    behind = sweep_store(store, HOUR, clock=lambda: time.time() - 5 * HOUR)  # client 5 h behind
    assert sorted(t.url.rsplit("/", 1)[-1] for t in behind if t.removed) == [".dead.tmp", "_tmp-old"]
    assert not [n for n in os.listdir(store) if n.startswith(".clock-")]  # the probe is gone


def test_a_store_whose_clock_cannot_be_read_falls_back_to_the_local_one(store, caplog):
    from fsspec.implementations.local import LocalFileSystem

    class ReadOnly(LocalFileSystem):
        def pipe_file(self, path, value, **kwargs):
            raise PermissionError(13, "Permission denied", path)

    with caplog.at_level("WARNING", logger="hdfs_models._store_gc"):
        temps = sweep_store(store, HOUR, dry_run=True, filesystem=ReadOnly(), clock=lambda: time.time() + 5 * HOUR)
    assert all(t.removed for t in temps)  # judged by the (skewed) local clock, as it says
    assert "cannot read the store's clock" in caplog.text and "this host's clock" in caplog.text


def test_store_without_times_keeps_everything():
    import fsspec

    fs = fsspec.filesystem("memory")
    base = f"/gc-{uuid.uuid4().hex}/m"
    fs.pipe_file(f"{base}/_tmp-x/saved_model.pb", b"x")  # memory dirs report no modification time
    temps = sweep_store(f"memory://{base}", 0.0)
    assert [(t.age, t.removed) for t in temps] == [(None, False)]
    assert fs.exists(f"{base}/_tmp-x/saved_model.pb")


def test_cli_gc_store_dry_run_json_and_text(store, capsys):
    assert cli.main(["gc", "--store", store, "--older-than", "1h", "--dry-run", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["store"], result["older_than"], result["dry_run"]) == (store, HOUR, True)
    assert sorted(t["url"] for t in result["temps"] if t["removed"]) == [
        f"{store}/_archives/.dead.tmp",
        f"{store}/_tmp-old",
    ]
    assert os.path.isdir(os.path.join(store, "_tmp-old"))
    assert cli.main(["gc", "--store", store, "--older-than", "30m"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith(f"removed {store}/_tmp-old (untouched ") for line in out)
    assert any(line.startswith(f"kept {store}/_tmp-young (untouched ") for line in out)
    assert out[-1] == f"2 of 5 temp(s) under {store} removed (older than 1800s)"
    assert not os.path.exists(os.path.join(store, "_tmp-old"))


def test_cli_gc_store_usage_errors(store, capsys):
    assert cli.main(["gc", "--store", store, "--older-than", "1x"]) == 2
    assert "not a duration: '1x'" in capsys.readouterr().err
    assert cli.main(["gc", "--store", store, "--max-versions", "2"]) == 1
    assert "apply to the node cache, not to --store" in capsys.readouterr().err
    assert cli.main(["gc", "--dry-run"]) == 1
    assert "apply to --store BASE" in capsys.readouterr().err
    assert cli.main(["gc", "--store", store + "-missing"]) == 1
    assert store + "-missing" in capsys.readouterr().err
