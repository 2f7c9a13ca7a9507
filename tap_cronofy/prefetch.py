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

T = t.TypeVar("T")
_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class OrderedPrefetcher(t.Generic[T]):
    """Runs ``produce(key)`` for each key on daemon worker threads, at most ``workers`` keys
    ahead of the consumer, buffering at most ``buffer`` items per key."""

    def __init__(
        self,
        keys: list[str],
        produce: t.Callable[[str], t.Iterator[T]],
        *,
        workers: int,
        buffer: int = 2,
    ) -> None:
        self.keys = list(keys)
        self._index = {key: i for i, key in enumerate(self.keys)}
        self._produce = produce
        self._queues: dict[str, queue.Queue] = {key: queue.Queue(maxsize=buffer) for key in keys}
        self._lookahead = max(1, workers)
        self._next_key = 0
        self._consumed = 0
        self._cond = threading.Condition()
        self.closed = False
        self.idle = 0
        self._threads = [
            threading.Thread(target=self._work, daemon=True, name=f"cronofy-prefetch-{n}")
            for n in range(min(self._lookahead, len(self.keys)))
        ]
        for thread in self._threads:
            thread.start()

    def _claim(self) -> str | None:
        """The next key in order, once it is within the look-ahead window."""
        with self._cond:
            while not self.closed:
                if self._next_key >= len(self.keys):
                    return None
                if self._next_key < self._consumed + self._lookahead:
                    key = self.keys[self._next_key]
                    self._next_key += 1
                    return key
                self.idle += 1  # observable: a worker held back by the look-ahead
                self._cond.notify_all()
                self._cond.wait()
                self.idle -= 1
            return None

    def _work(self) -> None:
        while (key := self._claim()) is not None:
            target = self._queues[key]
            try:
                for item in self._produce(key):
                    if not self._put(target, item):
                        return
                self._put(target, _DONE)
            except BaseException as error:
                self._put(target, _Failure(error))

    def _put(self, target: queue.Queue, item: object) -> bool:
        while not self.closed:
            try:
                target.put(item, timeout=0.1)
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
                yield item
        finally:
            with self._cond:
                self._consumed = max(self._consumed, self._index[key] + 1)
                self._cond.notify_all()
            if self._consumed >= len(self.keys):
                self.close()

    def close(self) -> None:
        """Stop the workers; safe to call more than once."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()
