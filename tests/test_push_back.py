"""RELIABILITY P14: a NameNode that pushes back (RetriableException, call-queue backoff,
StandbyException mid-failover) on the cache-hit check or the resolution is retried with jittered
backoff within a window; never a task failure on the first push-back, never permission denied.
The store is a local filesystem behind a fault-injecting wrapper (unit tests of the retries)."""

import errno
import threading

import pytest
from fsspec.implementations.local import LocalFileSystem

from hdfs_models import StoreError, StorePermissionError, localize, resolve
from hdfs_models._publish import publish
from hdfs_models._retry import RetryPolicy, is_transient, retry_transient
from hdfs_models._versions import version_files
from hdfs_models.store import translate_errors
from hdfs_models.testing import write_fake_model

STANDBY = "org.apache.hadoop.ipc.StandbyException: Operation category READ is not supported in state standby"
RETRIABLE = "org.apache.hadoop.ipc.RetriableException: Server too busy, retry later"


class PushBackFS(LocalFileSystem):
    """A local filesystem whose metadata calls and opens fail ``times`` times with ``error`` first."""

    def __init__(self, error: BaseException, times: int, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.error, self.left, self.calls = error, times, []
        self._lock = threading.Lock()

    def _maybe_fail(self, op: str) -> None:
        with self._lock:
            self.calls.append(op)
            if self.left > 0:
                self.left -= 1
                raise self.error

    def info(self, path, **kwargs):
        self._maybe_fail("info")
        return super().info(path, **kwargs)

    def ls(self, path, detail=True, **kwargs):
        self._maybe_fail("ls")
        return super().ls(path, detail=detail, **kwargs)

    def _open(self, path, mode="rb", *args, **kwargs):
        if "r" in mode:  # on HDFS an open is the NameNode's getBlockLocations
            self._maybe_fail("open")
        return super()._open(path, mode, *args, **kwargs)


@pytest.fixture
def base(tmp_path):
    base = str(tmp_path / "store" / "mnist")
    publish(write_fake_model(str(tmp_path / "src"), data_bytes=20_000), base, signatures=False)
    return base


def _translated(exc):
    with pytest.raises(Exception) as caught, translate_errors("hdfs://nn/m", "checking"):
        raise exc
    return caught.value


@pytest.mark.parametrize(
    "exc",
    [
        PermissionError(errno.EACCES, f"Forbidden: RemoteException {STANDBY}"),  # WebHDFS: HTTP 403
        RuntimeError(RETRIABLE),  # hdfs-native
        OSError(f"Call queue is full: org.apache.hadoop.ipc.CallQueueOverflowException: {RETRIABLE}"),
    ],
)
def test_push_back_is_a_transient_store_error_never_permission_denied(exc):
    err = _translated(exc)
    assert type(err) is StoreError and not isinstance(err, StorePermissionError)
    assert err.reason == "pushed back" and "pushed back" in str(err) and is_transient(err)


def test_a_real_refusal_is_still_permission_denied_and_not_transient():
    err = _translated(PermissionError(errno.EACCES, "AccessControlException: Permission denied: user=bob"))
    assert isinstance(err, StorePermissionError) and not is_transient(err)


def test_retry_transient_backs_off_with_jitter_and_gives_up_at_the_window():
    now = [0.0]
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        now[0] += seconds

    def always_busy():
        raise StoreError("hdfs://nn/m: the NameNode pushed back", url="hdfs://nn/m", reason="pushed back")

    with pytest.raises(StoreError) as caught:
        retry_transient(always_busy, what="t", window=30.0, sleep=sleep, clock=lambda: now[0])
    assert caught.value.attempts == len(waits) + 1 > 5 and 20.0 <= caught.value.elapsed <= 30.0
    assert caught.value.details["attempts"] == caught.value.attempts  # what localize's annotation keeps
    policy = RetryPolicy(backoff=0.5, backoff_max=8.0, jitter=0.5)
    for k, wait in enumerate(waits, start=1):
        full = min(0.5 * 2 ** (k - 1), 8.0)
        assert full * 0.5 <= wait <= full  # jittered: never more than the plain backoff
    assert len({round(w, 6) for w in waits}) > 1 and policy.delay(1) <= 0.5


def test_retry_transient_never_retries_a_refusal():
    calls = []

    def refused():
        calls.append(1)
        raise StorePermissionError("denied", url="hdfs://nn/m", reason="permission denied")

    with pytest.raises(StorePermissionError):
        retry_transient(refused, what="t", window=30.0, sleep=lambda s: pytest.fail("slept"))
    assert calls == [1]


@pytest.mark.parametrize(
    "error",
    [
        PermissionError(errno.EACCES, f"Forbidden: {STANDBY}"),  # WebHDFS's 403 from a standby
        PermissionError(errno.EACCES, f"Forbidden: {RETRIABLE}"),
        # P1 on the executors: the NameNode is down for a moment (a failover, a restart)
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    ],
    ids=["standby", "retriable", "refused"],
)
def test_a_pinned_hit_survives_push_back_on_the_cache_hit_check(base, tmp_path, error):
    cache = str(tmp_path / "cache")
    pinned = resolve(base)
    localize(base, cache_dir=cache, pinned=pinned).release()  # the entry is there
    fs = PushBackFS(error, times=2)
    model = localize(base, cache_dir=cache, pinned=pinned, filesystem=fs)  # the K5 check is pushed back twice
    files = len(version_files(pinned))  # the check opens each file, in parallel (P10)
    assert files >= 3 and fs.left == 0 and model.version == pinned.version
    assert fs.calls == ["open"] * (2 * files)  # both failures in the first check; the second one passes
    model.release()


def test_the_resolution_survives_push_back(base, tmp_path):
    fs = PushBackFS(RuntimeError(RETRIABLE), times=2)
    model = localize(base, cache_dir=str(tmp_path / "cache"), filesystem=fs)
    assert model.version == 1 and fs.left == 0  # both push-backs were met and retried
    model.release()


def test_store_window_zero_fails_on_the_first_push_back(base, tmp_path):
    pinned = resolve(base)
    cache = str(tmp_path / "cache")
    localize(base, cache_dir=cache, pinned=pinned).release()
    fs = PushBackFS(RuntimeError(STANDBY), times=1)
    with pytest.raises(StoreError, match="pushed back"):
        localize(base, cache_dir=cache, pinned=pinned, filesystem=fs, store_window=0)


def test_a_refusal_on_the_cache_hit_check_is_not_retried(base, tmp_path):
    pinned = resolve(base)
    cache = str(tmp_path / "cache")
    localize(base, cache_dir=cache, pinned=pinned).release()
    fs = PushBackFS(PermissionError(errno.EACCES, "AccessControlException: Permission denied"), times=5)
    with pytest.raises(StorePermissionError):
        localize(base, cache_dir=cache, pinned=pinned, filesystem=fs)
    assert fs.calls == ["open"] * len(version_files(pinned))  # one check, not retried


def test_a_publish_started_during_an_outage_waits_for_the_store_p1(tmp_path):
    """The base listing (and the base dir, the manifest) of a publish ride out a refused NameNode."""
    fs = PushBackFS(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), times=2)
    base = str(tmp_path / "store" / "m")
    pinned = publish(write_fake_model(str(tmp_path / "src")), base, filesystem=fs, signatures=False)
    assert pinned.version == 1 and fs.left == 0  # both refusals met, retried, and the version committed
