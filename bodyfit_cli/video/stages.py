"""Running the first stages of a clip a few frames ahead of the others, in a second thread.

Per frame, finding people (decoding, MediaPipe, tracking, smoothing) and fitting them take about as
long as each other, and both spend their time in native code that releases the GIL (MediaPipe's graph,
torch's kernels). Run one after the other they cost their sum; with the next frames' people found
while this frame's are fitted, about the longer of the two.

`ahead` does that for any iterator and keeps what a plain loop promises: the same items in the same
order; an exception of the producer raised in the consumer after the items made before it (a truncated
video keeps the frames that decoded); and when the consumer stops early (an error, Ctrl-C), the producer
stops too, within the item it is making, before `ahead` returns, so nothing reads a closed video.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

_END = object()  # after the last item
# How often a producer waiting for room in the queue checks whether the consumer has stopped.
_POLL_S = 0.05


@contextmanager
def ahead(items: Iterable[T], size: int, name: str = "bodyfit-ahead") -> Iterator[Iterator[T]]:
    """`items`, made by a thread of their own up to `size` ahead of the consumer (0: no thread, in line).

    Usage: `with ahead(frames, 4) as frames: for frame in frames: ...`.
    """
    if size <= 0:
        yield iter(items)
        return
    made: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=size)
    stop = threading.Event()

    def put(entry: tuple[object, BaseException | None]) -> bool:
        """Queue `entry` once there is room; False if the consumer stopped meanwhile."""
        while not stop.is_set():
            try:
                made.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as error:  # handed to the consumer, which raises it
            put((_END, error))
        finally:
            close = getattr(items, "close", None)  # a generator's cleanup runs here, in its own thread
            if close is not None:
                close()

    def consume() -> Iterator[T]:
        while True:
            item, error = made.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item  # type: ignore[misc]

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        thread.join()
