"""CacheOptions and the cache root: explicit > environment > default."""

import os

import pytest

from hdfs_models.cache._options import CacheOptions, cache_root, resolve_options


def test_defaults_when_nothing_is_set():
    opts = resolve_options({}, env={})
    assert opts == CacheOptions()
    assert (opts.file_mode, opts.dir_mode, opts.locking, opts.strict) == (0o644, 0o755, True, False)


def test_environment_overrides_defaults_and_explicit_overrides_environment():
    env = {
        "HDFS_MODELS_ATTEMPTS": "7",
        "HDFS_MODELS_LOCK_TIMEOUT": "2.5",
        "HDFS_MODELS_STRICT": "true",
        "HDFS_MODELS_LOCKING": "0",
        "HDFS_MODELS_MAX_BYTES": "1000",
        "HDFS_MODELS_FILE_MODE": "640",
    }
    opts = resolve_options({}, env=env)
    assert (opts.attempts, opts.lock_timeout, opts.strict, opts.locking) == (7, 2.5, True, False)
    assert (opts.max_bytes, opts.file_mode) == (1000, 0o640)
    assert resolve_options({"attempts": 2, "strict": False}, env=env).attempts == 2
    assert resolve_options({"attempts": 2, "strict": False}, env=env).strict is False


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match=r"unknown cache option\(s\) \['atempts'\]"):
        resolve_options({"atempts": 3}, env={})


def test_bad_environment_value_names_the_variable():
    with pytest.raises(ValueError, match="HDFS_MODELS_ATTEMPTS='many'"):
        resolve_options({}, env={"HDFS_MODELS_ATTEMPTS": "many"})
    with pytest.raises(ValueError, match="HDFS_MODELS_STRICT"):
        resolve_options({}, env={"HDFS_MODELS_STRICT": "perhaps"})


@pytest.mark.parametrize("field, value", [("attempts", 0), ("parallelism", 0), ("deadline", -1), ("max_bytes", -5)])
def test_invalid_values_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        CacheOptions(**{field: value})


def test_options_are_frozen_and_keyword_only():
    opts = CacheOptions()
    with pytest.raises(AttributeError):
        opts.attempts = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        CacheOptions(1.0)  # type: ignore[misc]
    assert resolve_options(opts, env={"HDFS_MODELS_ATTEMPTS": "9"}) is opts


@pytest.mark.parametrize(
    "explicit, env, expected",
    [
        ("/x/explicit", {"HDFS_MODELS_CACHE": "/x/env"}, "/x/explicit"),
        (None, {"HDFS_MODELS_CACHE": "/x/env", "SPARK_LOCAL_DIRS": "/s1"}, "/x/env"),
        (None, {"SPARK_LOCAL_DIRS": "/s1,/s2", "HOME": "/h"}, "/s1/hdfs-models"),
        # YARN: SPARK_LOCAL_DIRS is one executor's blockmgr dir; LOCAL_DIRS is the node's app dir.
        (None, {"SPARK_LOCAL_DIRS": "/y1/app/blockmgr-1", "LOCAL_DIRS": "/y1/app,/y2/app"}, "/y1/app/hdfs-models"),
        (None, {"LOCAL_DIRS": "/y1,/y2", "HOME": "/h"}, "/y1/hdfs-models"),
        (
            None,
            {"LOCAL_DIRS": "/y/app", "LOCAL_USER_DIRS": "/y/u/,/z/u/", "HDFS_MODELS_CACHE_SCOPE": "user"},
            "/y/u/hdfs-models",
        ),
        (
            None,
            {"LOCAL_DIRS": "/y/app", "LOCAL_USER_DIRS": "/y/u/", "HDFS_MODELS_CACHE_SCOPE": " Application "},
            "/y/app/hdfs-models",
        ),
        (None, {"HDFS_MODELS_CACHE": "/x/env", "LOCAL_DIRS": "/y/app", "HDFS_MODELS_CACHE_SCOPE": "user"}, "/x/env"),
        # The scope means nothing outside YARN.
        (None, {"HDFS_MODELS_CACHE_SCOPE": "user", "HOME": "/h"}, "/h/.cache/hdfs-models"),
        (None, {"HOME": "/h"}, "/h/.cache/hdfs-models"),
        (None, {"SPARK_LOCAL_DIRS": "", "HOME": "/h"}, "/h/.cache/hdfs-models"),
    ],
)
def test_cache_root_precedence(explicit, env, expected):
    assert cache_root(explicit, env=env) == expected


@pytest.mark.parametrize(
    "env, match",
    [
        (
            {"LOCAL_DIRS": "/y/app", "HDFS_MODELS_CACHE_SCOPE": "node"},
            "HDFS_MODELS_CACHE_SCOPE='node'.*application, user",
        ),
        ({"LOCAL_DIRS": "/y/app", "HDFS_MODELS_CACHE_SCOPE": "user"}, "needs LOCAL_USER_DIRS"),
    ],
)
def test_cache_scope_errors_name_the_variable(env, match):
    with pytest.raises(ValueError, match=match):
        cache_root(None, env=env)


def test_cache_root_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cache_root("rel", env={}) == os.path.join(str(tmp_path), "rel")
