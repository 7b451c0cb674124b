"""Read-ahead of input batches (scoring._runner): order, errors, early stop."""

import threading
import time

import pytest

from scoring._runner import prefetch


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_yields_every_item_in_order(depth):
    assert list(prefetch(iter(range(50)), depth)) == list(range(50))


def test_source_errors_reach_the_consumer_after_the_items_before_them():
    def source():
        yield 1
        yield 2
        raise ValueError("row 7 is bad")

    got = []
    with pytest.raises(ValueError, match="row 7 is bad"):
        for item in prefetch(source(), 1):
            got.append(item)
    assert got == [1, 2]


def test_reads_ahead_while_the_consumer_works():
    read = {i: threading.Event() for i in range(3)}

    def source():
        for i in range(3):
            read[i].set()
            yield i

    it = prefetch(source(), 1)
    assert next(it) == 0
    # the consumer "computes" and has not asked for item 1: the reader fetches it meanwhile
    assert read[1].wait(timeout=30), "item 1 was not read ahead"
    assert next(it) == 1
    assert list(it) == [2]


def _wait_until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        time.sleep(0.01)


def test_early_stop_stops_the_reader():
    pulled = []
    depth = 2

    def source():
        for i in range(1000):
            pulled.append(i)
            yield i

    it = prefetch(source(), depth)
    assert next(it) == 0
    # the reader fills the queue (items 1, 2) and blocks putting item 3
    _wait_until(lambda: len(pulled) >= depth + 2)
    it.close()  # joins the reader
    assert not [t for t in threading.enumerate() if t.name == "scoring-prefetch" and t.is_alive()]
    assert len(pulled) == depth + 2  # item 0, the queue's two, the one it was putting; no more
