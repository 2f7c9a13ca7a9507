"""A long stream's progress: one line at a steady interval, never one per account."""

from __future__ import annotations

import time
import typing as t

EVERY_SECONDS = 60.0


class Progress:
    """Says, at most once every ``every`` seconds of a stream, how many of its accounts are
    done, what the run spent, and about how long the stream has left at its pace so far."""

    def __init__(
        self, every: float = EVERY_SECONDS, clock: t.Callable[[], float] = time.monotonic
    ) -> None:
        self.every, self._clock = every, clock
        self._total: int | None = None
        self._started = self._last = clock()

    def line(self, done: int, total: int, requests: int, waited: float) -> str | None:
        """The line due after the ``done``-th of ``total`` accounts, if one is due."""
        now = self._clock()
        if total != self._total or done <= 1:  # a new stream: its own clock
            self._total, self._started, self._last = total, now, now
        if done >= total or now - self._last < self.every:
            return None
        self._last = now
        left = (now - self._started) / done * (total - done)
        return (
            f"Progress: {done:,} of {total:,} accounts done; {requests:,} requests so far, "
            f"{waited:.0f} s waiting on the rate limit; about {_duration(left)} left for "
            "this stream."
        )


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return "a minute"
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
