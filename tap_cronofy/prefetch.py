"""Fetch upcoming partitions' pages in parallel while records are emitted in order.

Cronofy's quota, not the CPU, bounds a sync; one account at a time spends most of its
time waiting on the network. Workers fetch the next few partitions' pages into small
bounded queues; the stream still consumes partitions strictly in order, so records,
STATE messages and bookmarks are exactly those of a sequential run.
"""

from __future__ import annotations

import queue
import threading
import typing as t
from concurrent.futures import ThreadPoolExecutor

T = t.TypeVar("T")
_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class OrderedPrefetcher(t.Generic[T]):
    """Runs ``produce(key)`` for each key on worker threads, at most ``lookahead`` keys ahead
    of the consumer, buffering at most ``buffer`` items per key."""

    def __init__(
        self,
        keys: list[str],
        produce: t.Callable[[str], t.Iterator[T]],
        *,
        workers: int,
        buffer: int = 2,
    ) -> None:
        self._keys = keys
        self._index = {key: i for i, key in enumerate(keys)}
        self._produce = produce
        self._queues = {key: queue.Queue(maxsize=buffer) for key in keys}
        self._lookahead = max(1, workers)
        self._consumed = 0
        self._cond = threading.Condition()
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=max(1, workers),
                                            thread_name_prefix="cronofy-prefetch")
        for key in keys:  # FIFO: a key is never waiting for a thread behind a later one
            self._executor.submit(self._run, key)

    def _run(self, key: str) -> None:
        position = self._index[key]
        with self._cond:
            while not self._closed and position >= self._consumed + self._lookahead:
                self._cond.wait()
        if self._closed:
            return
        target = self._queues[key]
        try:
            for item in self._produce(key):
                if not self._put(target, item):
                    return
            self._put(target, _DONE)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer to raise
            self._put(target, _Failure(error))

    def _put(self, target: queue.Queue, item: object) -> bool:
        while not self._closed:
            try:
                target.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def items(self, key: str) -> t.Iterator[T]:
        """The items of ``key``, in order; raises what its producer raised."""
        source = self._queues[key]
        try:
            while True:
                item = source.get()
                if item is _DONE:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item  # type: ignore[misc]
        finally:
            with self._cond:
                self._consumed = max(self._consumed, self._index[key] + 1)
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._executor.shutdown(wait=True, cancel_futures=True)
