"""Name validation before any I/O (RELIABILITY B5) and safe joins (B6)."""

import pytest

from hdfs_models._names import safe_join, sanitize_name, validate_name, validate_url
from hdfs_models.errors import UnsafeNameError


@pytest.mark.parametrize(
    "value, reason",
    [
        ("", "empty"),
        ("..", "relative path component"),
        (".", "relative path component"),
        ("a/b", "contains '/'"),
        ("a\\b", "contains"),
        ("a\x00b", "contains"),
        ("a#b", "contains '#'"),
        ("/etc", "absolute path"),
        ("%2e%2e", "relative path component"),
        ("%2E%2E", "relative path component"),
        ("a%2fb", "contains '/'"),
        ("%252e%252e", "relative path component"),
        ("x%5cy", "contains"),
        ("x%00", "contains"),
    ],
)
def test_validate_name_rejects_unsafe_values(value, reason):
    with pytest.raises(UnsafeNameError, match="unsafe model name") as info:
        validate_name(value, "model name")
    assert info.value.what == "model name"
    assert reason in info.value.reason
    assert reason in str(info.value)


@pytest.mark.parametrize("value", ["mnist", "mnist-cnn_v2", "7", "model.v1", "a b", "latest"])
def test_validate_name_accepts_plain_names(value):
    assert validate_name(value, "model name") == value


def test_validate_name_rejects_non_strings():
    with pytest.raises(UnsafeNameError, match="expected a string"):
        validate_name(3, "version")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    ["hdfs://nn/models/../etc", "/a/%2e%2e/b", "memory://m/x#alias", "/a/b\x00c", "..", "hdfs://nn/a/%252e%252e/x"],
)
def test_validate_url_rejects_traversal_nul_and_fragments(url):
    with pytest.raises(UnsafeNameError, match="unsafe model URL"):
        validate_url(url)


@pytest.mark.parametrize("url", ["hdfs://nn:8020/models/mnist", "/tmp/x/y", "memory://m", "models/a..b"])
def test_validate_url_accepts_normal_urls(url):
    assert validate_url(url) == url


@pytest.mark.parametrize(
    "root, relative, expected",
    [
        ("/cache/x", "variables/variables.index", "/cache/x/variables/variables.index"),
        ("/cache/x", "a/./b", "/cache/x/a/b"),
        ("/cache/x", "a/../b", "/cache/x/b"),
        ("/cache/x/", "b", "/cache/x/b"),
        ("/cache/x", "./", "/cache/x"),
        ("rel", "a", "rel/a"),
        ("", "a/b", "a/b"),
        ("/", "a", "/a"),
    ],
)
def test_safe_join_inside_root(root, relative, expected):
    assert safe_join(root, relative) == expected


@pytest.mark.parametrize(
    "root, relative",
    [
        ("/cache/x", "../evil"),
        ("/cache/x", "a/../../y"),
        ("/cache/x", "/tmp/evil"),
        ("/cache/x", "../x2/file"),
        ("/cache/x", "a\\..\\..\\b"),
        ("/cache/x", "a\x00"),
        ("", "../a"),
        ("rel", "../rel2"),
    ],
)
def test_safe_join_refuses_escapes(root, relative):
    with pytest.raises(UnsafeNameError, match="unsafe relative path"):
        safe_join(root, relative)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("mnist_v2.keras", "mnist_v2.keras"),
        ("my-model", "my_model"),  # '-' separates the fields of keys and aliases
        ("my model/../x", "my_model_.._x"),
        ("..hidden.", "hidden"),
        ("", "model"),
        ("x" * 100, "x" * 64),
    ],
)
def test_sanitize_name_keeps_only_letters_digits_dot_underscore(name, expected):
    assert sanitize_name(name) == expected
