"""Client-side limit on request rate, shared by every thread and stream of a run."""

from __future__ import annotations

import collections
import threading
import time


class SlidingWindowLimiter:
    """Allows at most ``limit`` request starts in any ``window`` seconds.

    Cronofy counts requests per application per second and per minute; keeping every
    window (not just aligned ones) under the limit means the server can never count more,
    whichever way it aligns its own windows. Each window is widened by ``margin`` (a
    fraction) plus ``slack`` seconds, to absorb the difference between when a request
    leaves here and when it arrives there (network and scheduling jitter).
    """

    def __init__(
        self,
        limits: list[tuple[int, float]],
        margin: float = 0.0,
        slack: float = 0.0,
        clock: collections.abc.Callable[[], float] = time.monotonic,
        sleep: collections.abc.Callable[[float], None] = time.sleep,
    ) -> None:
        self._windows = [(limit, window * (1 + margin) + slack) for limit, window in limits]
        self._starts: list[collections.deque[float]] = [collections.deque() for _ in limits]
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep
        self.waited_seconds = 0.0

    def acquire(self) -> None:
        """Block until one more request may start, then count it."""
        while True:
            with self._lock:
                now = self._clock()
                wait = 0.0
                for (limit, window), starts in zip(self._windows, self._starts):
                    while starts and starts[0] <= now - window:
                        starts.popleft()
                    if len(starts) >= limit:
                        wait = max(wait, starts[0] + window - now)
                if wait <= 0:
                    for starts in self._starts:
                        starts.append(now)
                    return
            self.waited_seconds += wait
            self._sleep(wait)
