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
        self._announced = float("-inf")  # when the last pause announced ends
        self._long_pause = long_pause
        self._waiters = 0
        self._blocked_since = 0.0
        # After 429s, each window's limit as cut (half what it held), climbing back.
        self._caps = [float(limit) for limit, _ in self._windows]
        self._paused_until = 0.0  # nothing is sent before this (a 429's wait)
        # Wall time during which at least one thread waited: threads waiting together
        # count once, so this never exceeds the run's own length.
        self.waited_seconds = 0.0

    def slow_down(self, floor: float) -> list[int]:
        """A 429: each window's limit becomes half of what it holds now (requests answered
        in it and in flight), but not below ``floor`` of the configured limit (nor 1): a
        tap that sends little is not what fills the quota. The new limits."""
        with self._cond:
            now = self._clock()
            for i, ((limit, window), done) in enumerate(zip(self._windows, self._done)):
                held = sum(1 for moment in done if moment > now - window) + self._in_flight
                self._caps[i] = min(self._caps[i], max(1.0, limit * floor, held / 2))
            return self.limits()

    def speed_up(self, share: float) -> None:
        """``share`` of each configured limit back, up to the configured limit."""
        if share <= 0:
            return
        with self._cond:
            for i, (limit, _) in enumerate(self._windows):
                self._caps[i] = min(float(limit), self._caps[i] + share * limit)
            self._cond.notify_all()

    def limits(self) -> list[int]:
        return [int(cap) for cap in self._caps]

    def pause(self, seconds: float) -> None:
        """No request of any thread starts for ``seconds`` (a 429 was answered)."""
        with self._cond:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

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

    @property
    def windows(self) -> list[tuple[int, float]]:
        """Each limit with its window as widened (seconds)."""
        return list(self._windows)

    def _acquire(self) -> None:
        waiting = False
        try:
            while True:
                with self._cond:
                    now = self._clock()
                    wait = max(0.0, self._paused_until - now)
                    answers_awaited = False  # a window full of requests still in flight
                    for (_, window), done, cap in zip(self._windows, self._done, self._caps):
                        limit = int(cap)
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
                    # one pause, however many threads wait it out: said once
                    announce = wait >= self._long_pause and now + wait > self._announced + 1.0
                    if announce:
                        self._announced = now + wait
                if announce and self._on_pause is not None:
                    self._on_pause(wait)
                self._sleep(wait)
        finally:
            if waiting:
                with self._cond:
                    self._waiters -= 1
                    if self._waiters == 0:
                        self.waited_seconds += self._clock() - self._blocked_since
