"""``hdfs-models fetch`` and ``hdfs-models gc``."""

import json
import os

import pytest

from hdfs_models import cli
from hdfs_models._publish import publish
from hdfs_models.testing import write_fake_model


@pytest.fixture
def base(tmp_path):
    src = write_fake_model(str(tmp_path / "src"), data_bytes=50_000)
    base = str(tmp_path / "store" / "mnist")
    publish(src, base, signatures=False)
    publish(write_fake_model(str(tmp_path / "src2"), data_bytes=1000, seed=2), base, signatures=False)
    return base


def test_fetch_prints_the_local_path(base, tmp_path, capsys):
    cache = str(tmp_path / "cache")
    assert cli.main(["fetch", base, "--version", "1", "--cache", cache]) == 0
    path = capsys.readouterr().out.strip()
    assert path.startswith(cache + "/mnist-1-")
    assert os.path.getsize(os.path.join(path, "variables", "variables.data-00000-of-00001")) == 50_000


def test_fetch_json(base, tmp_path, capsys):
    cache = str(tmp_path / "cache")
    assert cli.main(["fetch", base, "--cache", cache, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["version"] == 2 and result["name"] == "mnist"
    assert result["path"].startswith(cache) and len(result["digest"]) == 64
    assert result["bytes"] == sum(
        os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(result["path"]) for f in fs if f != "MANIFEST.json"
    )


def test_fetch_missing_url_is_exit_1_naming_it(tmp_path, capsys):
    missing = str(tmp_path / "nope")
    assert cli.main(["fetch", missing, "--cache", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hdfs-models fetch: error:") and missing in err


def test_gc_evicts_and_reports(base, tmp_path, capsys):
    cache = str(tmp_path / "cache")
    assert cli.main(["fetch", base, "--version", "1", "--cache", cache]) == 0
    assert cli.main(["fetch", base, "--version", "2", "--cache", cache]) == 0
    v1, v2 = capsys.readouterr().out.split()
    os.utime(v1 + ".use", (1, 1))
    assert cli.main(["gc", "--max-versions", "1", "--cache", cache, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"root": cache, "removed": [v1]}
    assert cli.main(["gc", "--cache", cache]) == 0
    assert capsys.readouterr().out.strip() == f"nothing evicted from {cache}"
    assert cli.main(["gc", "--max-bytes", "0", "--cache", cache]) == 0
    assert capsys.readouterr().out.strip() == f"evicted {v2}"


def test_gc_usage_error_is_exit_2(capsys):
    assert cli.main(["gc", "--max-versions", "-1"]) == 2
    assert "must be >= 0" in capsys.readouterr().err
