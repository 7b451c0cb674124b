"""P4: the download's retry deadline counts time without progress, not total time.

A healthy download that takes 40 minutes (on a fake clock the slow link
advances) meets a transient error in its last chunk: with the default
30-minute deadline it is still retried, and the file arrives intact. A
stalled link (no bytes for longer than the deadline) still gives up.
"""

import hashlib
import os

import pytest
from _faulty_fs import Fault, FaultyFS, FileProxy

import hdfs_models._download as download_module
from hdfs_models import CacheOptions, StoreError
from hdfs_models._download import DownloadJob, download_tree
from hdfs_models._manifest import plan_download
from hdfs_models._retry import Deadline, RetryPolicy

CHUNK = 64 * 1024
CHUNKS = 8
MINUTES_PER_CHUNK = 5.0  # 8 chunks: a 40-minute download


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class SlowLink(FaultyFS):
    """Every chunk read takes ``minutes`` on ``clock``; ``faults`` as FaultyFS."""

    def __init__(self, clock, minutes, faults):
        super().__init__(None, faults)
        self.clock, self.minutes = clock, minutes

    def _open(self, path, mode="rb", *args, **kwargs):
        handle = super()._open(path, mode, *args, **kwargs)
        link = self

        class Slow(FileProxy):
            def read(self, size=-1):
                link.clock.now += link.minutes * 60
                return self.inner.read(size)

        return Slow(handle)


@pytest.fixture
def source(tmp_path, monkeypatch):
    monkeypatch.setattr(download_module, "CHUNK", CHUNK)
    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(CHUNK * CHUNKS)
    (src / "shard").write_bytes(data)
    return str(src), data


def _download(fs, src, dest, clock, deadline):
    data_sha = hashlib.sha256(open(os.path.join(src, "shard"), "rb").read()).hexdigest()
    plan = plan_download([("shard", CHUNK * CHUNKS, data_sha)], [], src)
    os.makedirs(dest)
    defaults = CacheOptions()
    job = DownloadJob(
        fs=fs,
        src=src,
        url=f"file://{src}",
        dest=dest,
        cache_root=os.path.dirname(dest),
        policy=RetryPolicy(attempts=defaults.attempts, backoff=defaults.backoff, backoff_max=defaults.backoff_max),
        deadline=Deadline(deadline, clock),
        manifest=True,
        sleep=clock.sleep,
    )
    return job, download_tree(job, plan, 1)


def test_a_40_minute_download_still_retries_an_error_at_its_end_p4(source, tmp_path):
    src, data = source
    clock = Clock()
    started = clock.now
    # the last chunk of the first attempt fails: 40 minutes in, past the 30-minute default
    fs = SlowLink(clock, MINUTES_PER_CHUNK, {"shard": Fault(fail_after=CHUNK * (CHUNKS - 1) + 10, times=1)})
    job, nbytes = _download(fs, src, str(tmp_path / "dest"), clock, CacheOptions().deadline)
    assert CacheOptions().deadline == 1800.0
    assert nbytes == len(data) and job.attempts == 2
    assert (tmp_path / "dest" / "shard").read_bytes() == data
    assert clock.now - started > 60 * 60  # both attempts together: over an hour of healthy transfer


def test_a_link_without_progress_for_longer_than_the_deadline_gives_up(source, tmp_path):
    src, _data = source
    clock = Clock()
    # every read takes 40 minutes and the first one fails: no progress for longer than the deadline
    fs = SlowLink(clock, 40.0, {"shard": Fault(fail_after=0)})
    with pytest.raises(StoreError, match="deadline reached"):
        _download(fs, src, str(tmp_path / "dest"), clock, CacheOptions().deadline)
