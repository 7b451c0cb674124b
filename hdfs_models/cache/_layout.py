"""Names in the node cache's root: entry keys, lock files, download temp dirs. Pure.

Cache layout under the root::

    <key>/                       a committed entry (a SavedModel directory)
    <key>.lock                   exclusive flock held while <key> is downloaded
    <key>.use                    shared flock held by every LocalModel of <key>;
                                 its mtime is the entry's last use (for LRU)
    .tmp-<key>-<pid>-<rand>/     a download in progress (swept when <pid> is dead)
"""

from __future__ import annotations

import re

from hdfs_models._names import sanitize_name

__all__ = [
    "LOCK_SUFFIX",
    "TEMP_PREFIX",
    "USE_SUFFIX",
    "entry_key",
    "is_entry_name",
    "parse_temp_name",
    "temp_name",
]

TEMP_PREFIX = ".tmp-"
LOCK_SUFFIX = ".lock"
USE_SUFFIX = ".use"


def entry_key(name: str, version: int, digest: str) -> str:
    """``<sanitised name>-<version>-<digest[:16]>``: a new digest gives a new entry."""
    digest_part = re.sub(r"[^0-9a-fA-F]", "", digest)[:16].lower()
    if not digest_part:
        raise ValueError(f"digest {digest!r} of {name!r} v{version} has no hex characters")
    return f"{sanitize_name(name)}-{int(version)}-{digest_part}"


_ENTRY_NAME = re.compile(r"[A-Za-z0-9._]{1,64}-[0-9]+-[0-9a-f]{16}")


def is_entry_name(name: str) -> bool:
    """Whether ``name`` is shaped like an entry key (gc never touches anything else)."""
    return not name.startswith(".") and _ENTRY_NAME.fullmatch(name) is not None


def temp_name(key: str, pid: int, token: str) -> str:
    """The name of a download's temp dir inside the cache root."""
    return f"{TEMP_PREFIX}{key}-{pid}-{token}"


def parse_temp_name(name: str) -> tuple[str, int] | None:
    """``(key, pid)`` of a temp dir name, ``None`` if ``name`` is not one."""
    if not name.startswith(TEMP_PREFIX):
        return None
    parts = name[len(TEMP_PREFIX) :].rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[0]:
        return None
    return parts[0], int(parts[1])
