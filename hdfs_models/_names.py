"""Validation of names that become path components (RELIABILITY B5, B6).

Every model name, version string and child name read from a listing or an
archive goes through here *before* any filesystem access, so that nothing a
caller or a store supplies can point outside the directory it belongs to.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote, urlsplit

from hdfs_models.errors import UnsafeNameError

__all__ = ["require_utf8", "safe_join", "sanitize_name", "validate_name", "validate_url"]

# Percent-encoded forms of ".", "/", "\" and NUL, checked case-insensitively.
_ENCODED = ("%2e", "%2f", "%5c", "%00")
_FORBIDDEN_CHARS = ("/", "\\", "\x00", "#")
_NOT_IN_FILE_NAMES = re.compile(r"[^A-Za-z0-9._]+")
_MAX_SANITIZED = 64


def _decoded_forms(value: str) -> list[str]:
    """``value`` and its percent-decoded forms (twice, to catch ``%252e``)."""
    forms = [value]
    for _ in range(2):
        decoded = unquote(forms[-1])
        if decoded == forms[-1]:
            break
        forms.append(decoded)
    return forms


def _unsafe(what: str, value: str, reason: str) -> UnsafeNameError:
    return UnsafeNameError(f"unsafe {what} {value!r}: {reason}", path=value, reason=reason, what=what)


def require_utf8(value: str, what: str) -> str:
    """Return ``value`` if it came from valid UTF-8; :class:`UnsafeNameError` otherwise.

    Python decodes file names that are not valid UTF-8 into lone surrogates
    (``surrogateescape``). Such a name cannot be stored on HDFS (names are
    Unicode there), written to a JSON manifest other tools read, or given
    back faithfully by every store, so hdfs-models refuses it everywhere
    with one defined error instead of failing differently per store. Pure.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        shown = value.encode("utf-8", "surrogateescape")
        raise _unsafe(what, value, f"not valid UTF-8 (bytes {shown!r})") from None
    return value


def validate_name(value: str, what: str) -> str:
    """Return ``value`` if it is safe as a single path component.

    Raises :class:`UnsafeNameError` (naming ``what``, e.g. ``"model name"``)
    for a non-string or empty value, ``.`` or ``..``, a ``/``, ``\\``, NUL or
    ``#``, an absolute path, or a percent-encoded ``.``, ``/``, ``\\`` or NUL.
    Pure: touches no filesystem.
    """
    if not isinstance(value, str):
        raise _unsafe(what, repr(value), f"expected a string, got {type(value).__name__}")
    if not value:
        raise _unsafe(what, value, "empty")
    for form in _decoded_forms(value):
        if form in (".", ".."):
            raise _unsafe(what, value, "relative path component")
        if form.startswith("/") or posixpath.isabs(form) or (len(form) > 1 and form[1] == ":"):
            raise _unsafe(what, value, "absolute path")
        for char in _FORBIDDEN_CHARS:
            if char in form:
                raise _unsafe(what, value, f"contains {char!r}")
    lowered = value.lower()
    for encoded in _ENCODED:
        if encoded in lowered:
            raise _unsafe(what, value, f"percent-encoded {encoded!r}")
    return value


def validate_url(url: str, what: str = "model URL") -> str:
    """Return ``url`` if its path holds no traversal, NUL, or fragment.

    A URL may hold ``/`` (it is a path), but no ``..`` component (raw or
    percent-encoded), no NUL and no ``#``. Pure: touches no filesystem.
    """
    if not isinstance(url, str) or not url:
        raise _unsafe(what, repr(url), "empty or not a string")
    for form in _decoded_forms(url):
        if "\x00" in form:
            raise _unsafe(what, url, "contains NUL")
        if "#" in form:
            raise _unsafe(what, url, "contains '#'")
        path = urlsplit(form).path if "://" in form else form
        if ".." in path.replace("\\", "/").split("/"):
            raise _unsafe(what, url, "contains a '..' component")
    return url


def safe_join(root: str, relative: str) -> str:
    """Join ``relative`` under ``root`` (posix), refusing to escape it.

    ``relative`` must be a relative path; the normalised result must be
    ``root`` itself or lie below it. Raises :class:`UnsafeNameError` for an
    absolute ``relative``, NUL or ``\\`` in it, a name that is not valid
    UTF-8 (:func:`require_utf8`), or a result outside ``root``
    (``a/../../x``). Pure: touches no filesystem.
    """
    if not isinstance(relative, str):
        raise _unsafe("relative path", repr(relative), "expected a string")
    if "\x00" in relative or "\\" in relative:
        raise _unsafe("relative path", relative, "contains NUL or a backslash")
    require_utf8(relative, "relative path")
    if relative.startswith("/"):
        raise _unsafe("relative path", relative, f"absolute path, not under {root}")
    base = posixpath.normpath(root) if root else "."
    joined = posixpath.normpath(posixpath.join(base, relative))
    if base == ".":
        escapes = joined == ".." or joined.startswith("../")
    else:
        prefix = base if base.endswith("/") else base + "/"
        escapes = joined != base and not joined.startswith(prefix)
    if escapes:
        raise _unsafe("relative path", relative, f"escapes {root}")
    return joined


def sanitize_name(name: str) -> str:
    """A file-name-safe form of a model name, for the names this library makes up.

    Every run of characters outside ``[A-Za-z0-9._]`` becomes one ``_``
    (``-`` too: it separates the fields of cache keys and Spark aliases,
    ``<name>-<version>-<digest>``, which are parsed back); leading and
    trailing dots and underscores are dropped (never a hidden name, ``.`` or
    ``..``); an empty result is ``model``; at most 64 characters. Pure.
    """
    cleaned = _NOT_IN_FILE_NAMES.sub("_", name).strip("._") or "model"
    return cleaned[:_MAX_SANITIZED]
