"""The Spark floor (3.5.0) and what differs between the supported lines."""

from __future__ import annotations

import pickle

import pytest

from hdfs_models import UnsupportedSparkError, distribute, publish
from hdfs_models._runtime import MIN_SPARK, parse_spark_version, require_spark, spark_version
from hdfs_models.testing.pytest_plugin import require_module


@pytest.mark.parametrize(
    "text, parsed",
    [("3.5.0", (3, 5, 0)), ("3.5.2-amzn-0", (3, 5, 2)), ("4.1.0.dev1", (4, 1, 0)), ("4.0", (4, 0, 0))],
)
def test_parse_spark_version(text, parsed):
    assert parse_spark_version(text) == parsed


def test_parse_refuses_what_is_not_a_version():
    with pytest.raises(ValueError, match="not a Spark version: 'custom'"):
        parse_spark_version("custom")


def test_the_installed_pyspark_is_supported():
    require_module("pyspark", "spark")
    assert spark_version() >= MIN_SPARK
    assert require_spark("Scorer") == spark_version()


@pytest.fixture
def old_spark(monkeypatch):
    pyspark = require_module("pyspark", "spark")
    monkeypatch.setattr(pyspark, "__version__", "3.4.4")
    return pyspark


def test_below_the_floor_names_the_version_and_where_it_came_from(old_spark):
    with pytest.raises(UnsupportedSparkError, match=r"distribute needs Spark 3\.5\.0 or newer.*pyspark 3\.4\.4") as info:
        require_spark("distribute")
    err = info.value
    assert (err.found, err.needed, err.reason) == ("3.4.4", "3.5.0", "spark too old")
    assert old_spark.__file__ in str(err)
    back = pickle.loads(pickle.dumps(err))
    assert back.found == "3.4.4" and isinstance(back, RuntimeError)


def test_scorer_distribute_and_job_refuse_an_old_spark(old_spark, tmp_path, capsys):
    require_module("tensorflow", "tf")
    from scoring import Scorer
    from scoring.job import main
    from scoring.testing import save_dense

    base = str(tmp_path / "store" / "dense")
    publish(save_dense(str(tmp_path / "m")), base)
    with pytest.raises(UnsupportedSparkError, match="Scorer needs Spark 3.5.0"):
        Scorer(base)
    with pytest.raises(UnsupportedSparkError, match="distribute needs Spark 3.5.0"):
        distribute(None, base, strategy="archive")
    assert main(["--model", base, "--input-path", str(tmp_path), "--output-path", str(tmp_path / "o"),
                 "--features", "features"]) == 1
    assert "scoring.job needs Spark 3.5.0 or newer" in capsys.readouterr().err
