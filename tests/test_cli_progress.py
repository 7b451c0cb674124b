"""fetch, publish, pack and unpack draw a bar on a terminal and nothing on a pipe.

Each command runs as a subprocess of the real console entry point, once with
stderr on a pseudo-terminal (what a user at a shell sees) and once with
stderr on a pipe (a script, a log file); ``--json`` output is the same in
both and never comes with a bar.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from hdfs_models import publish
from hdfs_models.testing import write_fake_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# tqdm's line: "fetch: 100%|██████████| 2.10M/2.10M [00:00<00:00, 35.2MB/s]"
BAR = re.compile(r"(\w+): +100%\|[^|]+\| [\d.]+[kMG]?/[\d.]+[kMG]? \[\d\d:\d\d<\d\d:\d\d, +[\d.]+ ?[kMG]?B/s\]")
DEADLINE = 120.0


def _command(argv):
    return [sys.executable, "-m", "hdfs_models.cli", *argv]


def in_pty(argv):
    """Run with stderr on a pseudo-terminal (100 columns); returns (exit status, stdout, terminal text)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(_command(argv), cwd=ROOT, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer of the terminal has exited
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    out = proc.stdout.read().decode()
    return proc.wait(timeout=DEADLINE), out, b"".join(chunks).decode("utf-8", "replace")


def in_pipe(argv):
    done = subprocess.run(_command(argv), cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def setup(tmp_path):
    """A 2 MB model exported locally and published once (fetch and pack read it)."""
    export = write_fake_model(tmp_path / "export", data_bytes=2_000_000)
    base = str(tmp_path / "store" / "m")
    publish(export, base, signatures=False)
    return tmp_path, export, base


def commands(tmp_path, export, base, run):
    """The four commands, each with fresh targets; ``run`` tags the paths."""
    archive = str(tmp_path / f"m-{run}.tar")
    return {
        "publish": ["publish", export, base, "--no-signatures"],
        "fetch": ["fetch", base, "--cache", str(tmp_path / f"cache-{run}")],
        "pack": ["pack", f"{base}/1", archive],
        "unpack": ["unpack", archive, str(tmp_path / f"unpacked-{run}")],
    }


@pytest.mark.parametrize("name", ["publish", "fetch", "pack", "unpack"])
def test_a_terminal_sees_the_bar_a_pipe_none(setup, name):
    tmp_path, export, base = setup
    for run in ("tty", "pipe"):
        if name == "unpack":  # needs an archive of its own first
            assert in_pipe(commands(tmp_path, export, base, run)["pack"])[0] == 0
    code, out, terminal = in_pty(commands(tmp_path, export, base, "tty")[name])
    assert code == 0, terminal
    bars = BAR.findall(terminal)
    assert bars and set(bars) == {name}, terminal
    assert "\r" in terminal  # redrawn in place
    code, piped_out, err = in_pipe(commands(tmp_path, export, base, "pipe")[name])
    assert code == 0 and err == "", err

    def shape(text):  # the report less run tags and numbers (versions, timings)
        return re.sub(r"tty|pipe|[0-9a-f]{64}|\d+", "", text)

    assert out and shape(out) == shape(piped_out)


def test_json_output_has_no_bar_even_on_a_terminal(setup):
    tmp_path, export, base = setup
    code, out, terminal = in_pty(["fetch", base, "--cache", str(tmp_path / "cache"), "--json"])
    assert code == 0 and terminal == ""
    assert json.loads(out)["version"] == 1
