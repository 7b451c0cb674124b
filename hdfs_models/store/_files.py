"""Columnar files (Parquet, ORC) read through the store's clients: their layout, then their row groups.

What a reader of a data set on the store needs besides the model cache:
:func:`inspect_file` opens a file's footer and tells its row groups (Parquet)
or stripes (ORC), their rows and bytes, and its Arrow schema;
:func:`read_groups` reads some of them, only the columns asked for, as Arrow
record batches. Both open the file with :func:`open_store`, so they act as the
process's identity (a ticket, YARN's delegation tokens), and name the file in
every error:

- the store refuses (``StorePermissionError``), cannot log in
  (``StoreAuthError``) or fails (``StoreError``): the store's own errors,
  with the file's URL;
- the file is gone (:class:`MissingFileError`, a ``FileNotFoundError``) or is
  not a readable file of its format (:class:`CorruptFileError`).

A transient store failure while a group is read (a DataNode stopped, a
NameNode failing over) reopens the file and reads that group again, up to
``attempts`` times; a group is handed out only once it is read whole, so a
retry never yields a row twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hdfs_models._retry import is_transient
from hdfs_models.errors import HdfsModelsError, StoreError
from hdfs_models.store._open import open_store, translate_errors

__all__ = ["FORMATS", "CorruptFileError", "FileLayout", "MissingFileError", "inspect_file", "read_groups", "store_url"]

log = logging.getLogger(__name__)

FORMATS = ("parquet", "orc")


class CorruptFileError(StoreError):
    """A file that is not a readable Parquet or ORC file (bad magic, a truncated footer, bad pages)."""


class MissingFileError(StoreError, FileNotFoundError):
    """A file that is gone (deleted or replaced since it was listed)."""


@dataclass(frozen=True)
class FileLayout:
    """One file's footer: ``rows`` and ``nbytes`` (compressed) per row group or stripe, and the schema."""

    url: str
    format: str
    rows: tuple[int, ...]
    nbytes: tuple[int, ...]
    schema: Any  # pyarrow.Schema of the file's own columns

    @property
    def total_rows(self) -> int:
        return sum(self.rows)


def store_url(url: str) -> str:
    """A URL :func:`open_store` reads: Hadoop's ``file:/x`` (one slash) becomes the plain path ``/x``."""
    if url.startswith("file:") and not url.startswith("file://"):
        return url[len("file:") :]
    if url.startswith("file://"):
        return url[len("file://") :]
    return url


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: one of {', '.join(FORMATS)}")


def _opened(url: str, fmt: str, storage_options: Mapping[str, Any] | None) -> tuple[Any, Any]:
    """``(file object, pyarrow reader)`` for ``url``; errors name the file."""
    fs, path = open_store(store_url(url), storage_options)
    try:
        with translate_errors(url, "opening"):
            handle = fs.open(path, "rb")
    except FileNotFoundError as exc:
        raise MissingFileError(
            f"{url}: the file is gone (deleted since it was listed?)", url=url, reason="gone"
        ) from exc
    try:
        return handle, _reader(url, fmt, handle)
    except BaseException:
        handle.close()
        raise


def _reader(url: str, fmt: str, handle: Any) -> Any:
    import pyarrow as pa

    try:
        with translate_errors(url, "reading the footer"):
            if fmt == "parquet":
                import pyarrow.parquet as pq

                return pq.ParquetFile(handle)
            import pyarrow.orc as orc

            return orc.ORCFile(handle)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise CorruptFileError(f"{url}: not a readable {fmt} file ({exc})", url=url, reason="corrupt") from exc


def inspect_file(url: str, fmt: str = "parquet", storage_options: Mapping[str, Any] | None = None) -> FileLayout:
    """The layout of one Parquet or ORC file (its footer only). Errors name ``url`` (module docstring)."""
    _check_format(fmt)
    handle, reader = _opened(url, fmt, storage_options)
    with handle:
        if fmt == "parquet":
            meta = reader.metadata
            groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
            rows = tuple(g.num_rows for g in groups)
            nbytes = tuple(sum(g.column(c).total_compressed_size for c in range(g.num_columns)) for g in groups)
            return FileLayout(url, fmt, rows, nbytes, reader.schema_arrow)
        # ORC's footer has no per-stripe row counts in pyarrow: spread the rows and bytes evenly
        stripes, total = reader.nstripes, reader.nrows
        rows = tuple(total // stripes + (1 if i < total % stripes else 0) for i in range(stripes))
        size = reader.file_length
        return FileLayout(url, fmt, rows, tuple(size // max(stripes, 1) for _ in rows), reader.schema)


def read_groups(
    url: str,
    fmt: str,
    groups: Sequence[int],
    columns: Sequence[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    attempts: int = 3,
    on_read: Callable[[int, int, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Any]:
    """Record batches of ``columns`` from row groups (stripes) ``groups`` of ``url``, in that order.

    Each group comes as its record batches (none for an empty group), handed
    out only once the group is read whole; ``on_read(group, rows, seconds)`` is
    called after each. A transient failure reopens the file and reads the
    group again (up to ``attempts`` tries in all, backing off 0.5 s, 1 s, ...);
    errors name ``url`` (module docstring).
    """
    _check_format(fmt)
    handle = reader = None
    try:
        for group in groups:
            for attempt in range(1, attempts + 1):
                began = time.perf_counter()
                try:
                    if reader is None:
                        handle, reader = _opened(url, fmt, storage_options)
                    table = _read_group(url, fmt, reader, group, list(columns))
                    break
                except HdfsModelsError as exc:
                    if (
                        not is_transient(exc)
                        or isinstance(exc, (CorruptFileError, MissingFileError))
                        or attempt == attempts
                    ):
                        raise
                    log.warning("%s: reading row group %d failed (attempt %d/%d), retrying: %s",
                                url, group, attempt, attempts, exc)  # fmt: skip
                    if handle is not None:
                        handle.close()
                    handle = reader = None
                    sleep(0.5 * 2 ** (attempt - 1))
            if on_read is not None:
                on_read(group, table.num_rows, time.perf_counter() - began)
            yield from table.to_batches()
    finally:
        if handle is not None:
            handle.close()


def _read_group(url: str, fmt: str, reader: Any, group: int, columns: list[str]) -> Any:
    import pyarrow as pa

    try:
        with translate_errors(url, f"reading row group {group}"):
            if fmt == "parquet":
                return reader.read_row_group(group, columns=columns, use_threads=False)
            return pa.Table.from_batches([reader.read_stripe(group, columns=columns)])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowKeyError) as exc:
        raise CorruptFileError(f"{url}: row group {group}: {exc}", url=url, reason="corrupt") from exc
