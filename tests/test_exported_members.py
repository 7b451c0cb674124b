"""The public API: sorted __all__, every name importable, no heavy imports."""

import subprocess
import sys

import pytest

import hdfs_models
import hdfs_models.testing
import scoring


@pytest.mark.parametrize("module", [hdfs_models, hdfs_models.testing, scoring])
def test_all_is_sorted_and_importable(module):
    names = [n for n in module.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in module.__all__:
        assert hasattr(module, name), f"{module.__name__}.{name} missing"
    exported = {n for n in dir(module) if not n.startswith("_") and n[0].isupper()}
    assert exported <= set(module.__all__), exported - set(module.__all__)


@pytest.mark.parametrize("package", ["hdfs_models", "scoring"])
def test_import_pulls_no_heavy_dependency(package):
    code = (
        f"import sys, {package}\n"
        "heavy = [m for m in ('tensorflow', 'pyspark', 'pyarrow') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("module", [hdfs_models, scoring])
def test_errors_pickle_with_attributes(module):
    import pickle

    base = module.HdfsModelsError if module is hdfs_models else module.ScoringError
    key = "url" if module is hdfs_models else "column"
    for name in module.__all__:
        cls = getattr(module, name)
        if isinstance(cls, type) and issubclass(cls, base):
            err = cls("boom at x", **{key: "hdfs://nn/x"}, reason="because", attempts=3)
            back = pickle.loads(pickle.dumps(err))
            assert type(back) is cls
            assert str(back) == "boom at x"
            assert getattr(back, key) == "hdfs://nn/x"
            assert back.reason == "because"
            assert back.attempts == 3


def test_declared_error_fields_read_none_when_not_given():
    err = hdfs_models.LockTimeoutError("timed out", path="/c/k.lock")
    assert err.timeout is None and err.attempts is None and err.path == "/c/k.lock"
    with pytest.raises(AttributeError):
        err.no_such_field  # noqa: B018 (the attribute access is what raises)
    err = hdfs_models.IntegrityError("bad", file="variables/x", attempts=2)
    assert (err.file, err.attempts, err.member) == ("variables/x", 2, None)
    assert issubclass(hdfs_models.MissingExtraError, ImportError)
    assert not issubclass(hdfs_models.MissingExtraError, ValueError)
    assert issubclass(hdfs_models.ExtraFilesWarning, hdfs_models.HdfsModelsWarning)


def test_one_error_tree_scoring_errors_are_hdfs_models_errors():
    import pickle

    assert issubclass(scoring.ScoringError, hdfs_models.HdfsModelsError)
    err = scoring.SignatureError("no input 'x'", url="hdfs://nn/m/1", column="x", reason="no such input")
    back = pickle.loads(pickle.dumps(err))
    assert (type(back), back.url, back.column, back.reason, back.path) == (
        scoring.SignatureError,
        "hdfs://nn/m/1",
        "x",
        "no such input",
        None,
    )
    with pytest.raises(hdfs_models.HdfsModelsError, match="not numeric"):
        raise scoring.ColumnTypeError("column f is not numeric", column="f")
