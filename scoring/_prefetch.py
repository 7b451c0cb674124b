"""Read the next input batch on a background thread while TensorFlow computes.

In a mapInArrow task the Python worker alternates: read a batch from the JVM,
compute, write the result. Without read-ahead the JVM blocks on a full socket
while TensorFlow runs, and TensorFlow waits while the JVM decodes the next
batch, so each side idles part of the time. One thread reading ``depth``
batches ahead overlaps the two (TensorFlow and Arrow IPC reads release the
GIL). Exceptions from the source are re-raised in the consumer, in order.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["prefetch"]

T = TypeVar("T")

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(source: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Yield the items of ``source``, reading up to ``depth`` items ahead on a thread.

    ``depth`` < 1 disables read-ahead. When the consumer stops early, the
    reader stops after at most ``depth + 1`` further items.
    """
    if depth < 1:
        yield from source
        return
    items: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            items.put(_Failure(exc))

    reader = threading.Thread(target=read, name="scoring-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        reader.join(timeout=5)
