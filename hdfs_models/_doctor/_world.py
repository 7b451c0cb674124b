"""What a doctor check may look at, passed in: environment, clocks, processes, sockets, files.

Every check is a function of a :class:`World` (and its own arguments) that
returns one :class:`Check`; the defaults are the real machine, tests pass
fakes. Nothing here raises for a broken environment: a check turns every
failure into a ``fail``/``warn`` line with its fix.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

__all__ = ["Check", "Status", "World"]

Status = Literal["ok", "warn", "fail", "skip"]


@dataclasses.dataclass(frozen=True)
class Check:
    """One line of the doctor's report.

    ``status``: ``ok``; ``warn`` (works, but worth knowing); ``fail`` (this
    will break a job; exit status 1); ``skip`` (not applicable here).
    ``detail`` says what was found, ``fix`` what to do when not ``ok``.
    """

    name: str
    status: Status
    detail: str
    fix: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return dataclasses.asdict(self)


def _run(argv: Sequence[str], env: Mapping[str, str], timeout: float) -> tuple[int, str]:
    """Run ``argv``; ``(exit status, stdout + stderr)``. Raises ``FileNotFoundError`` when absent."""
    done = subprocess.run(list(argv), env=dict(env), capture_output=True, text=True, timeout=timeout, check=False)
    return done.returncode, done.stdout + done.stderr


def _connect(host: str, port: int, timeout: float) -> None:
    """Open and close a TCP connection; raises ``OSError`` (refused, timeout, unknown host)."""
    with socket.create_connection((host, port), timeout=timeout):
        pass


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _disk_free(path: str) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclasses.dataclass(frozen=True, kw_only=True)
class World:
    """The doctor's view of the machine; every field defaults to the real one.

    ``run(argv, env, timeout)`` → (status, output), raising
    ``FileNotFoundError`` for a missing program; ``connect(host, port,
    timeout)`` raises ``OSError`` when no TCP connection opens; ``now`` is
    wall-clock (ticket expiry), ``monotonic`` measures latency;
    ``version(dist)`` is the installed version of a distribution or ``None``;
    ``disk_free(path)`` the bytes an unprivileged user may still write there.
    """

    env: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(os.environ))
    now: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    run: Callable[[Sequence[str], Mapping[str, str], float], tuple[int, str]] = _run
    which: Callable[[str], str | None] = shutil.which
    connect: Callable[[str, int, float], None] = _connect
    read_bytes: Callable[[str], bytes] = _read_bytes
    version: Callable[[str], str | None] = _dist_version
    disk_free: Callable[[str], int] = _disk_free
    uid: Callable[[], int] = os.geteuid
    timeout: float = 3.0
