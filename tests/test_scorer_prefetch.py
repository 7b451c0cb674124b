"""Read-ahead of input batches (scoring._prefetch): order, errors, early stop."""

import threading
import time

import pytest

from scoring._prefetch import prefetch


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
    read_at = {}

    def source():
        for i in range(3):
            read_at[i] = time.monotonic()
            yield i

    it = prefetch(source(), 1)
    assert next(it) == 0
    time.sleep(0.3)  # the consumer "computes"; the reader fetches item 1 meanwhile
    start = time.monotonic()
    assert next(it) == 1
    assert read_at[1] < start
    assert list(it) == [2]


def test_early_stop_stops_the_reader():
    pulled = []

    def source():
        for i in range(1000):
            pulled.append(i)
            yield i

    it = prefetch(source(), 2)
    assert next(it) == 0
    it.close()
    time.sleep(0.3)
    assert len(pulled) <= 5
    assert not [t for t in threading.enumerate() if t.name == "scoring-prefetch" and t.is_alive()]
