"""Client-side limit on request rate, shared by every thread and stream of a run."""

from __future__ import annotations

import collections
import contextlib
import threading
import time


class SlidingWindowLimiter:
    """Allows at most ``limit`` requests in any ``window`` seconds, as the server counts them.

    Cronofy counts requests per application per second and per minute; keeping every
    window (not just aligned ones) under the limit means the server can never count more,
    whichever way it aligns its own windows. A request counts from the moment it is
    allowed until its answer is back, and is then remembered by that moment: it reached
    Cronofy somewhere in between, so however late a busy thread sends it, no window of the
    server's can hold more than ``limit``. Each window is also widened by ``margin`` (a
    fraction) plus ``slack`` seconds, for the clocks' differences.
    """

    def __init__(
        self,
        limits: list[tuple[int, float]],
        margin: float = 0.0,
        slack: float = 0.0,
        clock: collections.abc.Callable[[], float] = time.monotonic,
        sleep: collections.abc.Callable[[float], None] = time.sleep,
        on_pause: collections.abc.Callable[[float], None] | None = None,
        long_pause: float = 5.0,
    ) -> None:
        self._windows = [(limit, window * (1 + margin) + slack) for limit, window in limits]
        self._done: list[collections.deque[float]] = [collections.deque() for _ in limits]
        self._in_flight = 0
        self._cond = threading.Condition()
        self._clock = clock
        self._sleep = sleep
        self._on_pause = on_pause  # told of a pause of ``long_pause`` s or more as it begins
        self._long_pause = long_pause
        self._waiters = 0
        self._blocked_since = 0.0
        # Wall time during which at least one thread waited: threads waiting together
        # count once, so this never exceeds the run's own length.
        self.waited_seconds = 0.0

    @contextlib.contextmanager
    def request(self) -> collections.abc.Iterator[None]:
        """Wait until one more request may be sent; it counts until the block ends."""
        self._acquire()
        try:
            yield
        finally:
            with self._cond:
                self._in_flight -= 1
                now = self._clock()
                for done in self._done:
                    done.append(now)
                self._cond.notify_all()

    def _acquire(self) -> None:
        waiting = False
        try:
            while True:
                with self._cond:
                    now = self._clock()
                    wait = 0.0
                    answers_awaited = False  # a window full of requests still in flight
                    for (limit, window), done in zip(self._windows, self._done):
                        while done and done[0] <= now - window:
                            done.popleft()
                        if len(done) + self._in_flight >= limit:
                            if done:  # the oldest finished request leaves the window then
                                wait = max(wait, done[0] + window - now)
                            else:
                                answers_awaited = True
                    if wait <= 0 and not answers_awaited:
                        self._in_flight += 1
                        return
                    if not waiting:
                        waiting = True
                        self._waiters += 1
                        if self._waiters == 1:
                            self._blocked_since = now
                    if wait <= 0:  # the next answer frees a place
                        self._cond.wait(timeout=1.0)
                        continue
                if self._on_pause is not None and wait >= self._long_pause:
                    self._on_pause(wait)
                self._sleep(wait)
        finally:
            if waiting:
                with self._cond:
                    self._waiters -= 1
                    if self._waiters == 0:
                        self.waited_seconds += self._clock() - self._blocked_since
