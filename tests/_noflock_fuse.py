"""A FUSE loopback filesystem whose ``flock`` claims every lock and takes none (RELIABILITY P5).

``python tests/_noflock_fuse.py SOURCE MOUNTPOINT`` mounts SOURCE at
MOUNTPOINT in the foreground. Every operation passes through to SOURCE,
except ``flock``: the kernel hands it to this process (the filesystem
implements it), which answers success without locking anything, as some
network and parallel filesystems do. fusepy's operation table stops before
libfuse 2.9's ``flock`` member, so the table is extended here.

Needs root (or a user allowed to mount FUSE), ``/dev/fuse``, libfuse2 and
the ``fusepy`` package (the ``test`` extra).
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from typing import Any

import fuse


class _Operations29(ctypes.Structure):
    """libfuse 2.9's ``struct fuse_operations``: fusepy's members, then poll … fallocate."""

    _fields_ = [
        *fuse.fuse_operations._fields_,
        ("poll", ctypes.c_voidp),
        ("write_buf", ctypes.c_voidp),
        ("read_buf", ctypes.c_voidp),
        ("flock", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(fuse.fuse_file_info), ctypes.c_int)),
        ("fallocate", ctypes.c_voidp),
    ]


class _FlockFUSE(fuse.FUSE):
    def flock(self, path: bytes, fip: Any, op: int) -> int:
        return self.operations("flock", self._decode_optional_path(path), fip.contents.fh, op)


class NoFlockLoopback(fuse.Operations):
    """SOURCE seen through FUSE; ``flock`` succeeds and does nothing."""

    use_ns = True

    def __init__(self, source: str) -> None:
        self.source = source

    def _real(self, path: str) -> str:
        return os.path.join(self.source, path.lstrip("/"))

    def flock(self, path: str, fh: int, op: int) -> int:
        return 0

    def access(self, path: str, mode: int) -> None:
        if not os.access(self._real(path), mode):
            raise fuse.FuseOSError(errno.EACCES)

    def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
        st = os.lstat(self._real(path))
        out = {k: getattr(st, k) for k in ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size")}
        return out | {"st_atime": st.st_atime_ns, "st_mtime": st.st_mtime_ns, "st_ctime": st.st_ctime_ns}

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._real(path))]

    def statfs(self, path: str) -> dict[str, int]:
        st = os.statvfs(self._real(path))
        names = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag")
        return {k: getattr(st, k) for k in (*names, "f_frsize", "f_namemax")}

    def mkdir(self, path: str, mode: int) -> None:
        os.mkdir(self._real(path), mode)

    def rmdir(self, path: str) -> None:
        os.rmdir(self._real(path))

    def unlink(self, path: str) -> None:
        os.unlink(self._real(path))

    def rename(self, old: str, new: str) -> None:
        os.rename(self._real(old), self._real(new))

    def chmod(self, path: str, mode: int) -> None:
        os.chmod(self._real(path), mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.chown(self._real(path), uid, gid)

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> None:
        os.utime(self._real(path), ns=times) if times else os.utime(self._real(path))

    def truncate(self, path: str, length: int, fh: int | None = None) -> None:
        os.truncate(self._real(path), length)

    def open(self, path: str, flags: int) -> int:
        return os.open(self._real(path), flags)

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        return os.open(self._real(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        return os.pwrite(fh, data, offset)

    def flush(self, path: str, fh: int) -> int:
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> None:
        os.fsync(fh)

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        return 0

    def release(self, path: str, fh: int) -> None:
        os.close(fh)

    def readlink(self, path: str) -> str:
        return os.readlink(self._real(path))

    def symlink(self, target: str, source: str) -> None:
        os.symlink(source, self._real(target))


def main(source: str, mountpoint: str) -> None:
    fuse.fuse_operations = _Operations29  # what fuse.FUSE builds its table from
    _FlockFUSE(NoFlockLoopback(source), mountpoint, foreground=True, allow_other=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
