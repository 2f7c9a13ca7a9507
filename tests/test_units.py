"""Small pieces tested directly: secret masking, the rate limiter, the prefetcher."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from tap_cronofy.prefetch import OrderedPrefetcher
from tap_cronofy.ratelimit import SlidingWindowLimiter
from tap_cronofy.redact import MASK, SecretRegistry, install_log_redaction
from tap_cronofy.report import quota_warning


def test_secrets_are_masked_longest_first():
    registry = SecretRegistry()
    registry.add("abcd1234")
    registry.add("abcd1234-extended")
    registry.add("xy")  # too short to be a token: never masked
    text = registry.redact("token=abcd1234-extended other=abcd1234 xy")
    assert text == f"token={MASK} other={MASK} xy"


def test_log_records_are_masked_including_tracebacks(caplog):
    from tap_cronofy.redact import SECRETS

    SECRETS.add("very-secret-token-42")
    install_log_redaction()
    logger = logging.getLogger("tap-cronofy-test")
    with caplog.at_level(logging.INFO):
        logger.info("sending %s", "very-secret-token-42")
        try:
            raise ValueError("bad token very-secret-token-42")
        except ValueError:
            logger.exception("failed")
    text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "very-secret-token-42" not in text
    assert MASK in text


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_sliding_window_never_exceeds_any_window():
    clock = FakeClock()
    limiter = SlidingWindowLimiter([(5, 1.0), (12, 10.0)], clock=clock.time, sleep=clock.sleep)
    starts = []
    for _ in range(40):
        with limiter.request():  # answered at once
            starts.append(clock.now)
    for limit, window in ((5, 1.0), (12, 10.0)):
        for i, start in enumerate(starts):
            inside = [s for s in starts[i:] if s < start + window]
            assert len(inside) <= limit
    # and it does not wait longer than needed: 40 starts at 12 per 10 s take 30 s
    assert starts[-1] == pytest.approx(30.0)


def test_requests_in_flight_count_until_answered():
    """A request counts from when it is allowed until its answer: a slow answer holds its
    place, so a late-sent request can never make the server see more than the limit."""
    limiter = SlidingWindowLimiter([(2, 0.2)])
    answered = threading.Event()
    allowed: list[float] = []

    def slow_request():
        with limiter.request():
            allowed.append(time.monotonic())
            answered.wait(5)

    threads = [threading.Thread(target=slow_request) for _ in range(2)]
    for thread in threads:
        thread.start()
    while len(allowed) < 2:
        time.sleep(0.01)
    third = threading.Thread(target=slow_request)
    third.start()
    time.sleep(0.5)  # more than the window: yet both places are still held
    assert len(allowed) == 2
    released = time.monotonic()
    answered.set()
    third.join(5)
    assert len(allowed) == 3
    assert allowed[2] - released >= 0.2 - 0.01, "and the window runs from the answers"
    for thread in threads:
        thread.join(5)


def test_prefetcher_keeps_order_and_bounds_lookahead():
    started: list[str] = []
    lock = threading.Lock()

    def produce(key: str):
        with lock:
            started.append(key)
        for n in range(3):
            yield f"{key}-{n}"

    keys = [f"k{n}" for n in range(10)]
    prefetcher = OrderedPrefetcher(keys, produce, workers=3, buffer=1)
    deadline = time.monotonic() + 10
    while len(started) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # give a fourth key the chance to start, were the bound broken
    assert sorted(started) == ["k0", "k1", "k2"], "at most `workers` keys ahead of the consumer"
    out = [item for key in keys for item in prefetcher.items(key)]
    assert out == [f"{k}-{n}" for k in keys for n in range(3)]
    assert prefetcher.closed


def test_prefetcher_hands_errors_to_the_consumer():
    def produce(key: str):
        yield key
        if key == "b":
            raise RuntimeError("boom")

    prefetcher = OrderedPrefetcher(["a", "b", "c"], produce, workers=2)
    assert list(prefetcher.items("a")) == ["a"]
    with pytest.raises(RuntimeError, match="boom"):
        list(prefetcher.items("b"))
    assert list(prefetcher.items("c")) == ["c"]


def test_the_quota_warning_needs_waiting_to_be_most_of_the_run_and_shows_the_arithmetic():
    numbers = {"requests": 300, "accounts": 150, "per_minute": 500}
    assert quota_warning(**numbers, waited=29.9, elapsed=60.0) is None
    assert quota_warning(**numbers, waited=0.0, elapsed=0.0) is None
    warning = quota_warning(**numbers, waited=45.0, elapsed=60.0)
    assert warning is not None
    assert "300 requests (2.0 per account, 150 accounts) at 500 requests/minute" in warning
    assert "at least 0.6 minutes; 45 of the run's 60 s were spent waiting" in warning
