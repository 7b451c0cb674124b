"""May the caller read these files? The store decides: an open of each, as the caller (K5, P10).

Reading a file's metadata is not enough: on HDFS ``getFileInfo`` needs only
the right to traverse the parent directories, so a 0600 data file of another
owner passes it. :func:`check_readable` opens every file for reading, so
the store applies its own rules (owner, groups, ACLs, Ranger) to each one: a
``getBlockLocations`` per file on HDFS through hdfs-native (no DataNode is
contacted), one byte read where an open may be lazy (WebHDFS, object
stores); in parallel, whatever the files' sizes. The node cache asks it
before it serves a pinned hit.
"""

from __future__ import annotations

import concurrent.futures
import sys
from collections.abc import Callable, Sequence
from typing import Any

from hdfs_models.errors import ModelNotFoundError
from hdfs_models.store._open import join_url, translate_errors

__all__ = ["check_readable"]

#: Reads run at once by one check (a SavedModel has a handful of files).
_PARALLEL = 8


def check_readable(fs: Any, root: str, url: str, files: Sequence[str], what: str) -> ModelNotFoundError | None:
    """Open each of ``files`` for reading (relative to ``root`` on ``fs``, ``url`` in errors), as the caller.

    Raises the first refusal (:class:`~hdfs_models.StorePermissionError`,
    :class:`~hdfs_models.StoreAuthError`, a store failure), naming the file;
    returns the first file found missing (for the caller to judge), else
    None. No files: the metadata of ``root`` itself is read.
    """

    open_checks = _open_checks(fs)

    def probe(rel: str | None) -> None:
        with translate_errors(url if rel is None else join_url(url, rel), what):
            if rel is None:
                fs.info(root)
                return
            with fs.open(join_url(root, rel), "rb") as handle:
                if not open_checks:
                    handle.read(1)

    errors = _run_all(probe, list(files) or [None])
    refused = [e for e in errors if not isinstance(e, ModelNotFoundError)]
    if refused:
        raise refused[0]
    return next((e for e in errors if isinstance(e, ModelNotFoundError)), None)


def _open_checks(fs: Any) -> bool:
    """Whether opening a file for reading is already the store's read check, with no data moved:
    hdfs-native asks the NameNode for the block locations (checked against READ) and no DataNode
    until the first read; a local open is open(2). Elsewhere (WebHDFS, object stores) an open can
    be lazy, so one byte is read."""
    native = sys.modules.get("hdfs_native.fsspec")  # loaded by the store for hdfs:// and viewfs:// only
    if native is not None and isinstance(fs, native.BaseFileSystem):  # hdfs, viewfs, the Kerberos subclasses
        return True
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


def _run_all(probe: Callable[[Any], None], names: list[Any]) -> list[BaseException]:
    """Call ``probe`` on every name (in parallel when there are several); the failures, in name order."""
    if len(names) == 1:
        try:
            probe(names[0])
        except Exception as exc:
            return [exc]
        return []
    with concurrent.futures.ThreadPoolExecutor(min(_PARALLEL, len(names)), thread_name_prefix="hdfs-models-k5") as pool:
        futures = [pool.submit(probe, name) for name in names]
    return [exc for exc in (f.exception() for f in futures) if exc is not None]
