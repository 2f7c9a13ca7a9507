"""How the tap yields to a quota it shares with your product: after a 429 it waits for the
window to reopen and slows down, then speeds up again slowly (additive increase,
multiplicative decrease); the waits are paid from the run's time, never from its tries."""

from __future__ import annotations

import threading
import time
import typing as t

MINUTE = 60.0  # Cronofy's longest window: no wait for it need be longer
FLOOR = 0.1  # after 429s the tap goes no slower than this share of its configured rate
STEP = 0.05  # the share of the configured rate that comes back per RECOVERY seconds ...
RECOVERY = 15.0  # ... without a 429
PATIENCE = 15 * MINUTE  # without a time budget, how long one request waits out 429s


class Backpressure:
    """Shared by every thread of a run: how long to wait after a 429, whether the run
    may wait that long, and when the rate the limiter cut may climb a step again."""

    def __init__(
        self,
        first_wait: float,
        deadline: float | None,
        longest_wait: float = MINUTE,
        clock: t.Callable[[], float] = time.monotonic,
    ) -> None:
        self._first_wait = max(first_wait, 0.01)
        self._longest = min(max(longest_wait, 0.01), MINUTE)
        self._clock = clock
        self._deadline = deadline  # the run's time budget ends (monotonic), or None
        self._lock = threading.Lock()
        self._streak = 0  # 429s since the last answer that was not one
        self._calm_since = clock()
        self.refusals = 0  # 429s this run
        self.waited = 0.0  # seconds of waiting for them (threads together count once each)

    def refused(self, retry_after: float | None) -> float:
        """A 429: the wait before this request's next try is
        Retry-After when Cronofy gave it, else a doubling wait from ``first_wait``; at most
        ``longest_wait`` (itself at most a minute, Cronofy's longest window)."""
        with self._lock:
            self.refusals += 1
            self._streak += 1
            self._calm_since = self._clock()
            if retry_after is not None:  # at least first_wait: a 0 would never end
                wait = min(max(retry_after, self._first_wait), self._longest)
            else:
                wait = min(self._first_wait * 2 ** (self._streak - 1), self._longest)
            self.waited += wait
            return wait

    def accepted(self) -> float:
        """An answer that was not a 429: the share of the configured rate to add back
        (STEP per RECOVERY seconds since the last 429 or step; 0 most of the time)."""
        with self._lock:
            self._streak = 0
            steps = int((self._clock() - self._calm_since) / RECOVERY)
            self._calm_since += steps * RECOVERY
            return STEP * steps

    def may_wait(self, wait: float, waited_so_far: float) -> bool:
        """Whether a request that has waited ``waited_so_far`` for the quota may wait
        ``wait`` more: while the run's time budget lasts, else up to PATIENCE."""
        if self._deadline is not None:
            return self._clock() + wait <= self._deadline
        return waited_so_far + wait <= PATIENCE
