"""URL → (fsspec filesystem, path), and backend errors → :mod:`hdfs_models.errors`.

| scheme                          | client                                      | extra                  |
|---------------------------------|---------------------------------------------|------------------------|
| ``hdfs://``, ``viewfs://``      | hdfs-native (reads ``HADOOP_CONF_DIR``)     | ``hdfs-models[hdfs]``  |
| ``webhdfs://``, ``swebhdfs://`` | fsspec WebHDFS (``user``, ``data_proxy`` …) | ``hdfs-models[webhdfs]`` |
| ``arrow_hdfs://`` / a ``pyarrow.fs.FileSystem`` | pyarrow (libhdfs)           | ``hdfs-models[arrow]`` |
| plain path, ``file://``, ``memory://``, any fsspec protocol | fsspec         | —                      |

Filesystems are cached per (process id, protocol, options): a child created
by ``fork`` never reuses its parent's connection (RELIABILITY F8). They are
never pickled: ship the URL and ``storage_options`` instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit

from hdfs_models._hadoop_conf import SITE_FILES, read_site_file
from hdfs_models.errors import (
    HdfsModelsError,
    ModelNotFoundError,
    StoreError,
    StorePermissionError,
    UnsupportedProtocolError,
)

__all__ = ["clear_store_cache", "join_url", "open_store", "split_scheme", "translate_errors"]

logger = logging.getLogger(__name__)

# scheme -> the pip extra that installs its client
_EXTRAS: dict[str, str] = {
    "hdfs": "hdfs-models[hdfs]",
    "viewfs": "hdfs-models[hdfs]",
    "webhdfs": "hdfs-models[webhdfs]",
    "swebhdfs": "hdfs-models[webhdfs]",
    "arrow_hdfs": "hdfs-models[arrow]",
}
_SUPPORTED_TEXT = (
    "hdfs:// and viewfs:// (pip install 'hdfs-models[hdfs]'), "
    "webhdfs:// (pip install 'hdfs-models[webhdfs]'), "
    "arrow_hdfs:// or a pyarrow.fs.FileSystem (pip install 'hdfs-models[arrow]'), "
    "file://, plain paths, memory:// and any other fsspec protocol"
)
# Java exception classes that HDFS clients report for a refused access.
_HADOOP_ACCESS_DENIED = ("AccessControlException", "AuthorizationException")

# Read by hdfs-native at client creation: config dir (HA, viewfs), user, Kerberos ticket cache.
_HADOOP_ENV = ("HADOOP_CONF_DIR", "HADOOP_HOME", "HADOOP_USER_NAME", "HADOOP_PROXY_USER", "KRB5CCNAME")

_cache_lock = threading.Lock()
_cache: dict[tuple[int, str, str], Any] = {}


def split_scheme(url: str) -> tuple[str, str]:
    """``("hdfs", "hdfs://nn/x")`` for a URL, ``("file", url)`` for a plain path. Pure."""
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        if scheme and all(c.isalnum() or c in "+-._" for c in scheme):
            return scheme, url
    return "file", url


def join_url(url: str, *parts: str) -> str:
    """Join path parts onto a URL or path with single slashes. Pure."""
    out = url
    for part in parts:
        part = part.strip("/")
        if not part:
            continue
        out = out + part if out.endswith("/") else f"{out}/{part}"
    return out


def clear_store_cache() -> None:
    """Forget every cached filesystem (tests; after changing credentials)."""
    with _cache_lock:
        _cache.clear()


def open_store(
    url: str,
    storage_options: Mapping[str, Any] | None = None,
    filesystem: Any = None,
) -> tuple[Any, str]:
    """Return ``(fsspec filesystem, protocol-stripped path)`` for ``url``.

    ``filesystem`` may be an fsspec filesystem (used as is) or a
    ``pyarrow.fs.FileSystem`` (wrapped in fsspec's ``ArrowFSWrapper``); then
    ``url`` only supplies the path. Otherwise the scheme selects the client
    (module docstring). Raises :class:`UnsupportedProtocolError` for an
    unknown scheme or a client whose extra is not installed.
    """
    options = dict(storage_options or {})
    if filesystem is not None:
        return _wrap_given(url, filesystem)
    scheme, _ = split_scheme(url)
    cls = _filesystem_class(scheme, url)
    kwargs = {**hdfs_native_defaults(scheme), **cls._get_kwargs_from_urls(url), **options}
    key = (os.getpid(), scheme, _options_token({**kwargs, **_client_env(scheme)}))
    with _cache_lock:
        fs = _cache.get(key)
    if fs is None:
        fs = _connect(cls, scheme, url, kwargs)
        with _cache_lock:
            fs = _cache.setdefault(key, fs)
    return fs, str(cls._strip_protocol(url))


# hdfs-native's own default (15 failover attempts, up to 15 s apart) keeps a job
# waiting about three minutes on a NameNode that refuses connections. Bounded
# here to roughly ten seconds, which still rides through an HA failover; a
# value in storage_options or in HADOOP_CONF_DIR's *-site.xml wins.
HDFS_NATIVE_DEFAULTS: dict[str, str] = {
    "dfs.client.failover.max.attempts": "6",
    "dfs.client.failover.sleep.base.millis": "500",
    "dfs.client.failover.sleep.max.millis": "3000",
}


def hdfs_native_defaults(scheme: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The client settings hdfs-models adds for ``hdfs://``/``viewfs://`` unless configured."""
    if scheme not in ("hdfs", "viewfs"):
        return {}
    configured = _site_keys((os.environ if env is None else env).get("HADOOP_CONF_DIR"))
    return {k: v for k, v in HDFS_NATIVE_DEFAULTS.items() if k not in configured}


def _site_keys(conf_dir: str | None) -> set[str]:
    """Property names set in ``conf_dir``'s core-site.xml and hdfs-site.xml."""
    keys: set[str] = set()
    for name in SITE_FILES:
        path = os.path.join(conf_dir, name) if conf_dir else ""
        if not path or not os.path.isfile(path):
            continue
        try:
            keys.update(read_site_file(path))
        except (OSError, ValueError) as exc:
            logger.warning("cannot read %s (%s); using hdfs-models' client defaults", path, exc)
    return keys


def _client_env(scheme: str) -> dict[str, str | None]:
    """Environment an hdfs-native client reads when it is created (so it is part of its identity)."""
    if scheme not in ("hdfs", "viewfs"):
        return {}
    return {f"env:{name}": os.environ.get(name) for name in _HADOOP_ENV}


def _options_token(kwargs: Mapping[str, Any]) -> str:
    from fsspec.utils import tokenize

    return str(tokenize(sorted(kwargs.items(), key=lambda kv: kv[0])))


def _connect(cls: Any, scheme: str, url: str, kwargs: dict[str, Any]) -> Any:
    """Instantiate a filesystem bypassing fsspec's instance cache (ours is per pid)."""
    logger.debug("connecting %s filesystem for %s", scheme, url)
    with translate_errors(url):
        return cls(skip_instance_cache=True, **kwargs)


def _filesystem_class(scheme: str, url: str) -> Any:
    """The fsspec class for ``scheme``, or an error naming the extra to install."""
    import fsspec

    if scheme in ("hdfs", "viewfs"):
        try:
            from hdfs_native import fsspec as hdfs_native_fsspec
        except ImportError as exc:
            raise _missing_extra(scheme, url, exc) from exc
        return hdfs_native_fsspec.HdfsFileSystem if scheme == "hdfs" else hdfs_native_fsspec.ViewfsFileSystem
    if scheme in ("webhdfs", "swebhdfs"):
        try:
            from fsspec.implementations.webhdfs import WebHDFS
        except ImportError as exc:
            raise _missing_extra(scheme, url, exc) from exc
        return WebHDFS
    try:
        return fsspec.get_filesystem_class(scheme)
    except ValueError as exc:
        raise UnsupportedProtocolError(
            f"{url}: unsupported URL scheme {scheme!r}; supported: {_SUPPORTED_TEXT}",
            url=url,
            reason="unknown scheme",
            scheme=scheme,
        ) from exc
    except ImportError as exc:
        raise _missing_extra(scheme, url, exc) from exc


def _missing_extra(scheme: str, url: str, exc: ImportError) -> UnsupportedProtocolError:
    extra = _EXTRAS.get(scheme, "the package fsspec names for it")
    return UnsupportedProtocolError(
        f"{url}: the client for {scheme}:// is not installed ({exc}); "
        f"install it with: pip install '{extra}'",
        url=url,
        reason="client not installed",
        scheme=scheme,
        extra=extra,
    )


def _wrap_given(url: str, filesystem: Any) -> tuple[Any, str]:
    """Use a caller's fsspec filesystem, or wrap a pyarrow.fs.FileSystem."""
    from fsspec import AbstractFileSystem

    if isinstance(filesystem, AbstractFileSystem):
        return filesystem, str(filesystem._strip_protocol(url))
    if type(filesystem).__module__.startswith("pyarrow"):
        from fsspec.implementations.arrow import ArrowFSWrapper

        scheme, _ = split_scheme(url)
        path = urlsplit(url).path if scheme != "file" or "://" in url else url
        return ArrowFSWrapper(filesystem, skip_instance_cache=True), path or "/"
    raise TypeError(
        f"filesystem must be an fsspec AbstractFileSystem or a pyarrow.fs.FileSystem, "
        f"got {type(filesystem).__name__}"
    )


def _access_denied(exc: BaseException) -> bool:
    # hdfs-native raises no PermissionError: an HDFS AccessControlException
    # reaches Python as a generic OSError/RuntimeError whose only structured
    # trace is the Java exception class name in its text.
    text = str(exc)
    return any(name in text for name in _HADOOP_ACCESS_DENIED)


@contextlib.contextmanager
def translate_errors(url: str, what: str = "") -> Iterator[None]:
    """Map backend exceptions to :mod:`hdfs_models.errors`, most specific first.

    ``FileNotFoundError`` → :class:`ModelNotFoundError`; ``PermissionError``
    (or an HDFS ``AccessControlException``) → :class:`StorePermissionError`;
    any other ``OSError``/``RuntimeError`` → :class:`StoreError`. Errors of
    this package pass through unchanged. ``what`` names the operation.
    """
    prefix = f"{url}: {what + ': ' if what else ''}"
    try:
        yield
    except HdfsModelsError:
        raise
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"{prefix}not found ({_short(exc)})", url=url, reason="not found") from exc
    except PermissionError as exc:
        raise StorePermissionError(
            f"{prefix}permission denied ({_short(exc)})", url=url, reason="permission denied"
        ) from exc
    except (OSError, RuntimeError) as exc:
        if _access_denied(exc):
            raise StorePermissionError(
                f"{prefix}permission denied ({_short(exc)})", url=url, reason="permission denied"
            ) from exc
        raise StoreError(f"{prefix}{_short(exc)}", url=url, reason=type(exc).__name__) from exc


def _short(exc: BaseException, limit: int = 300) -> str:
    """One line of an exception's text, without a Java stack trace (HDFS RPC errors carry one)."""
    text = str(exc)
    for marker in ("\\n\\tat ", "\n\tat ", "\n"):
        text = text.split(marker, 1)[0]
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
