"""A fault-injecting, byte-counting fsspec filesystem over a local directory.

``FaultyFS`` is a ``LocalFileSystem`` whose read handles count bytes into a
log file (shared between processes: one ``O_APPEND`` line per read) and can
misbehave per file:

``Fault(fail_after=N)``   raise ``OSError(EIO)`` after N bytes        (F1, F2)
``Fault(short_after=N)``  hit EOF after N bytes                       (F3)
``Fault(flip=True)``      flip the first byte                         (F4)
``Fault(delay=s)``        sleep ``s`` seconds before each chunk       (C3, C4)
``Fault(max_read=N)``     return at most N bytes per read (a slow link) (C10)
``Fault(on_open=fn)``     call ``fn(path)`` before opening            (F5)

``times`` bounds how many opens of the file misbehave (``None``: all).
``FileProxy`` is the base of the one-fault file wrappers other tests put
around a real file object (a full disk on write, a reset connection on read).
Ops are logged too (``open``, ``ls``, ``info``, ``find``), so a test can
assert what I/O a call did (L4).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from fsspec.implementations.local import LocalFileSystem


class FileProxy:
    """A file object that forwards everything to ``inner`` and closes it on ``with`` exit;
    subclasses override the one method they make misbehave."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __enter__(self) -> FileProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.inner.close()


@dataclasses.dataclass
class Fault:
    fail_after: int | None = None
    short_after: int | None = None
    flip: bool = False
    delay: float = 0.0
    max_read: int | None = None
    on_open: Callable[[str], None] | None = None
    times: int | None = None


def read_log(log_path: str) -> list[tuple[str, str, int]]:
    """``(op, path, nbytes)`` records written by every FaultyFS using ``log_path``."""
    if not os.path.exists(log_path):
        return []
    out = []
    with open(log_path, encoding="utf-8") as handle:
        for line in handle:
            op, path, nbytes = line.rstrip("\n").split("\t")
            out.append((op, path, int(nbytes)))
    return out


def bytes_read(log_path: str, exclude: tuple[str, ...] = ("MANIFEST.json",)) -> int:
    """Bytes read through FaultyFS handles, except files whose name is in ``exclude``."""
    return sum(n for op, path, n in read_log(log_path) if op == "read" and os.path.basename(path) not in exclude)


class _Reader:
    """A read handle that counts, delays and injects faults."""

    def __init__(self, fs: FaultyFS, path: str, inner: Any, fault: Fault | None) -> None:
        self.fs = fs
        self.path = path
        self.inner = inner
        self.fault = fault
        self.pos = 0

    def read(self, size: int = -1) -> bytes:
        fault = self.fault
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.max_read is not None:
            size = fault.max_read if size is None or size < 0 else min(size, fault.max_read)
        if fault is not None and fault.short_after is not None:
            left = fault.short_after - self.pos
            if left <= 0:
                return b""
            size = left if size is None or size < 0 else min(size, left)
        data = self.inner.read(size)
        if fault is not None and fault.fail_after is not None and self.pos + len(data) > fault.fail_after:
            keep = max(fault.fail_after - self.pos, 0)
            self.fs.log("read", self.path, keep)
            self.pos += keep
            raise OSError(errno.EIO, f"injected read failure after {fault.fail_after} bytes", self.path)
        if fault is not None and fault.flip and self.pos == 0 and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        self.pos += len(data)
        self.fs.log("read", self.path, len(data))
        return data

    def seek(self, *args: Any) -> int:
        self.pos = self.inner.seek(*args)
        return self.pos

    def tell(self) -> int:
        return self.inner.tell()

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class FaultyFS(LocalFileSystem):
    """Local filesystem with per-file faults and a shared op/byte log."""

    cachable = False

    def __init__(self, log_path: str | None = None, faults: dict[str, Fault] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log_path = log_path
        self.faults = dict(faults or {})
        self._used: dict[str, int] = {}
        self._lock = threading.Lock()

    def log(self, op: str, path: str, nbytes: int = 0) -> None:
        if self.log_path is None:
            return
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{op}\t{path}\t{nbytes}\n".encode())
        finally:
            os.close(fd)

    def _fault_for(self, path: str) -> Fault | None:
        for suffix, fault in self.faults.items():
            if path.endswith(suffix):
                with self._lock:
                    used = self._used.get(suffix, 0)
                    if fault.times is not None and used >= fault.times:
                        return None
                    self._used[suffix] = used + 1
                return fault
        return None

    def _open(self, path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        path = self._strip_protocol(path)
        if "r" not in mode:
            return super()._open(path, mode, *args, **kwargs)
        self.log("open", path)
        fault = self._fault_for(path)
        if fault is not None and fault.on_open is not None:
            fault.on_open(path)
        inner = super()._open(path, mode, *args, **kwargs)
        return _Reader(self, path, inner, fault)

    def ls(self, path: str, detail: bool = False, **kwargs: Any) -> Any:
        self.log("ls", self._strip_protocol(path))
        return super().ls(path, detail=detail, **kwargs)

    def info(self, path: str, **kwargs: Any) -> Any:
        self.log("info", self._strip_protocol(path))
        return super().info(path, **kwargs)
