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
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import urlsplit

from hdfs_models.errors import (
    EncryptionZoneError,
    HdfsModelsError,
    MissingExtraError,
    ModelNotFoundError,
    StoreError,
    StorePermissionError,
    UnsupportedProtocolError,
)
from hdfs_models.store._auth import auth_error, auth_failure, dial_host, identity, load_tokens
from hdfs_models.store._hadoop_conf import (
    SITE_FILES,
    client_properties,
    read_site_file,
    shipped_conf_dir,
)
from hdfs_models.store._tokens import HDFS_TOKEN_KIND, token_address, token_for

if TYPE_CHECKING:
    import pyarrow.fs
    from fsspec import AbstractFileSystem

#: What ``filesystem=`` accepts everywhere: an fsspec filesystem (used as is)
#: or a ``pyarrow.fs.FileSystem`` (wrapped in fsspec's ``ArrowFSWrapper``).
Filesystem = Union["AbstractFileSystem", "pyarrow.fs.FileSystem"]

__all__ = ["Filesystem", "clear_store_cache", "join_url", "open_store", "split_scheme", "translate_errors"]

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
# A NameNode pushing back or failing over, as the Java class names in an error's text. WebHDFS
# answers a standby NameNode with HTTP 403, which fsspec raises as PermissionError: these
# markers win over that, so push-back is retried (RELIABILITY P14), never "permission denied".
_HADOOP_PUSH_BACK = (
    "StandbyException",
    "RetriableException",
    "ObserverRetryOnActiveException",
    "CallQueueOverflowException",
    "Server too busy",
)
# hdfs-native opening a file of an HDFS encryption zone without a KMS in its configuration (P12).
_NO_KMS = "encryption zone but no KMS provider is configured"
_KMS_FIX = "or as a storage option, or read it through webhdfs://, whose DataNodes decrypt it"

# Read by hdfs-native at client creation: config dir (HA, viewfs), user; credentials: _store_auth.
_HADOOP_ENV = ("HADOOP_CONF_DIR", "HADOOP_HOME", "HADOOP_USER_NAME", "HADOOP_PROXY_USER")
_HADOOP_SCHEMES = ("hdfs", "viewfs", "webhdfs", "swebhdfs")

_cache_lock = threading.Lock()
_cache: dict[tuple[int, str, str], tuple[tuple[Any, ...], Any]] = {}  # key → (credential files' state, client)


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
    filesystem: Filesystem | None = None,
) -> tuple[Any, str]:
    """Return ``(fsspec filesystem, protocol-stripped path)`` for ``url``.

    ``filesystem`` may be an fsspec filesystem (used as is) or a
    ``pyarrow.fs.FileSystem`` (wrapped in fsspec's ``ArrowFSWrapper``); then
    ``url`` only supplies the path. Otherwise the scheme selects the client
    (module docstring). Raises :class:`UnsupportedProtocolError` for an
    unknown scheme and :class:`MissingExtraError` (an ``ImportError``)
    naming the extra to install when the scheme's client is missing.

    Secure HDFS (docs/security.md): clients are cached per identity
    (``KRB5CCNAME``, ``HADOOP_TOKEN_FILE_LOCATION`` …); ``hdfs://`` takes
    ``kerberos_principal`` + ``kerberos_keytab`` storage options for a login
    without kinit, and dials the address a delegation token was issued for;
    ``webhdfs://`` uses a matching delegation token, else SPNEGO when the
    Hadoop config says Kerberos. A token file that cannot be read is a
    :class:`StoreAuthError`.
    """
    options = dict(storage_options or {})
    if filesystem is not None:
        return _wrap_given(url, filesystem)
    scheme, _ = split_scheme(url)
    cls = _filesystem_class(scheme, url)
    if scheme in _HADOOP_SCHEMES:
        _adopt_shipped_conf()
    kwargs = {**hdfs_native_defaults(scheme), **cls._get_kwargs_from_urls(url), **options}
    if scheme in _HADOOP_SCHEMES:
        kwargs = _credential_kwargs(scheme, url, kwargs)
    key = (os.getpid(), scheme, _options_token({**kwargs, **_client_env(scheme)}))
    state = credential_state() if scheme in _HADOOP_SCHEMES else ()
    with _cache_lock:
        held = _cache.get(key)
    if held is not None and held[0] == state:
        return held[1], str(cls._strip_protocol(url))
    if held is not None:  # P2: a token file or ticket cache renewed in place: a client that reads it anew
        logger.info("%s: credentials renewed in place; opening a new client", url)
    fs = _connect(cls, scheme, url, kwargs)
    with _cache_lock:
        held = _cache.get(key)
        if held is None or held[0] != state:
            _cache[key] = held = (state, fs)
    return held[1], str(cls._strip_protocol(url))


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


def _adopt_shipped_conf() -> None:
    """In a YARN container without a Hadoop conf dir, point ``HADOOP_CONF_DIR`` at the one Spark shipped.

    hdfs-native reads ``HADOOP_CONF_DIR`` from the environment when a client is
    created, so it is set for the whole process (once; logged).
    """
    shipped = shipped_conf_dir()
    if shipped:
        os.environ["HADOOP_CONF_DIR"] = shipped
        logger.info(
            "HADOOP_CONF_DIR is not set in this YARN container: using the Hadoop configuration "
            "spark-submit shipped, %s",
            shipped,
        )


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


def credential_state(env: Mapping[str, str] = os.environ) -> tuple[Any, ...]:
    """What the credential files hold, as (path, inode, size, mtime) of the token file and the
    ticket cache (``FILE:`` caches; the default ``/tmp/krb5cc_<uid>``): a file rewritten in place, as
    a secret refresh or ``kinit`` does, changes it (RELIABILITY P2)."""
    paths = [env.get("HADOOP_TOKEN_FILE_LOCATION") or None]
    ccache = env.get("KRB5CCNAME") or f"FILE:/tmp/krb5cc_{os.getuid()}"
    if ccache.startswith("FILE:") or ":" not in ccache:
        paths.append(ccache.removeprefix("FILE:"))
    state: list[Any] = []
    for path in paths:
        try:
            st = os.stat(path) if path else None
        except OSError:
            st = None
        state.append(None if st is None else (path, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(state)


def _client_env(scheme: str) -> dict[str, str | None]:
    """Environment a Hadoop client reads when it is created or authenticates (part of its identity)."""
    if scheme not in _HADOOP_SCHEMES:
        return {}
    env = {f"env:{name}": os.environ.get(name) for name in _HADOOP_ENV}
    return {**env, **{f"env:{k}": v for k, v in identity().items()}}


def _credential_kwargs(scheme: str, url: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Client options from the caller's credentials: the token's address, WebHDFS token or SPNEGO."""
    tokens = load_tokens(url)
    if scheme == "hdfs":
        return {**kwargs, "host": dial_host(scheme, kwargs.get("host"), kwargs.get("port"), tokens)}
    if scheme in ("webhdfs", "swebhdfs") and not _webhdfs_auth_given(kwargs):
        token = _webhdfs_token(kwargs, tokens)
        if token is not None:
            return {**kwargs, "token": token}
        if _kerberos_configured():
            return {**kwargs, "kerberos": True}
    return kwargs


def _webhdfs_auth_given(kwargs: Mapping[str, Any]) -> bool:
    return any(kwargs.get(k) for k in ("kerberos", "token", "user", "password"))


def _webhdfs_token(kwargs: Mapping[str, Any], tokens: list[Any]) -> str | None:
    """A delegation token issued for this WebHDFS address (as Hadoop's WebHdfsFileSystem selects it)."""
    kinds = (HDFS_TOKEN_KIND, "WEBHDFS delegation", "SWEBHDFS delegation")
    host, port = kwargs.get("host"), kwargs.get("port")
    if not host or not port or not tokens:
        return None
    address = token_address(host, int(port), tokens, kinds)
    token = token_for(tokens, f"{address}:{port}", kinds) if address else None
    return token.url_string() if token else None


def _kerberos_configured() -> bool:
    return client_properties().get("hadoop.security.authentication", "").lower() == "kerberos"


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
            import hdfs_native.fsspec  # noqa: F401  (checked first: _hdfs_native may be imported already)

            from hdfs_models.store._hdfs_native import filesystem_class
        except ImportError as exc:
            raise _missing_extra(scheme, url, exc) from exc
        return filesystem_class(scheme)
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


def _missing_extra(scheme: str, url: str, exc: ImportError) -> MissingExtraError:
    extra = _EXTRAS.get(scheme, "the package fsspec names for it")
    return MissingExtraError(
        f"{url}: the client for {scheme}:// is not installed ({exc}); install it with: pip install '{extra}'",
        url=url,
        reason="client not installed",
        scheme=scheme,
        extra=extra,
    )


def _wrap_given(url: str, filesystem: Filesystem) -> tuple[Any, str]:
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
        f"filesystem must be an fsspec AbstractFileSystem or a pyarrow.fs.FileSystem, got {type(filesystem).__name__}"
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

    ``FileNotFoundError`` → :class:`ModelNotFoundError`; a Kerberos or token
    failure → :class:`StoreAuthError` (never retried); ``PermissionError``
    (or an HDFS ``AccessControlException``) → :class:`StorePermissionError`,
    except a NameNode's push-back or standby answer (a :class:`StoreError`
    with reason ``pushed back``, retried by the node cache: P14); any other ``OSError``/``RuntimeError`` → :class:`StoreError`. Errors of
    this package pass through unchanged. ``what`` names the operation.
    """
    prefix = f"{url}: {what + ': ' if what else ''}"
    try:
        yield
    except HdfsModelsError:
        raise
    except (OSError, RuntimeError) as exc:
        raise _translated(url, prefix, exc) from exc


def _translated(url: str, prefix: str, exc: OSError | RuntimeError) -> HdfsModelsError:
    """The :mod:`hdfs_models.errors` counterpart of a backend error."""
    if isinstance(exc, FileNotFoundError):
        return ModelNotFoundError(f"{prefix}not found ({_short(exc)})", url=url, reason="not found")
    reason = auth_failure(exc)
    if reason is not None:
        return auth_error(url, exc, reason)
    text = str(exc)
    if _NO_KMS in text:  # hdfs-native says so only in its RuntimeError's text
        return EncryptionZoneError(f"{prefix}{_short(exc)}; {_KMS_FIX}", url=url, reason="no kms")
    if any(marker in text for marker in _HADOOP_PUSH_BACK):
        return StoreError(f"{prefix}the NameNode pushed back ({_short(exc)})", url=url, reason="pushed back")
    if isinstance(exc, PermissionError) or _access_denied(exc):
        return StorePermissionError(f"{prefix}permission denied ({_short(exc)})", url=url, reason="permission denied")
    return StoreError(f"{prefix}{_short(exc)}", url=url, reason=type(exc).__name__)


def _short(exc: BaseException, limit: int = 300) -> str:
    """One line of an exception's text, without a Java stack trace (HDFS RPC errors carry one)."""
    text = str(exc)
    for marker in ("\\n\\tat ", "\n\tat ", "\n"):
        text = text.split(marker, 1)[0]
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
