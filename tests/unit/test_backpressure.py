"""After a 429: how long to wait, how far to slow down, and how the rate comes back."""

from __future__ import annotations

from tap_cronofy.backpressure import FLOOR, PATIENCE, RECOVERY, STEP, Backpressure
from tap_cronofy.ratelimit import SlidingWindowLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_without_retry_after_the_wait_doubles_up_to_the_longest_and_resets_on_an_answer():
    clock = Clock()
    pressure = Backpressure(1.0, deadline=None, longest_wait=60, clock=clock)
    assert [pressure.refused(None) for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    pressure.accepted()
    assert pressure.refused(None) == 1
    assert pressure.refusals == 9


def test_retry_after_is_taken_as_given_up_to_a_minute():
    pressure = Backpressure(1.0, deadline=None, longest_wait=600)
    assert pressure.refused(7.5) == 7.5
    assert pressure.refused(3600) == 60, "Cronofy's longest window is a minute"
    assert pressure.refused(-3) == 1.0, "a Retry-After of 0 or in the past: never a busy loop"


def test_waits_are_paid_from_the_runs_time_else_from_patience():
    clock = Clock()
    timed = Backpressure(1.0, deadline=clock.now + 100, clock=clock)
    assert timed.may_wait(99, waited_so_far=10_000), "tries do not count, time does"
    assert not timed.may_wait(101, waited_so_far=0)
    untimed = Backpressure(1.0, deadline=None, clock=clock)
    assert untimed.may_wait(60, waited_so_far=PATIENCE - 60)
    assert not untimed.may_wait(60, waited_so_far=PATIENCE - 59)


def test_the_rate_comes_back_a_step_per_calm_period():
    clock = Clock()
    pressure = Backpressure(1.0, deadline=None, clock=clock)
    pressure.refused(None)
    clock.now += RECOVERY - 0.1
    assert pressure.accepted() == 0
    clock.now += 0.2
    assert pressure.accepted() == STEP
    clock.now += 3 * RECOVERY
    assert pressure.accepted() == 3 * STEP
    assert pressure.accepted() == 0, "each calm period counted once"


def test_the_limiter_halves_what_it_sent_never_below_the_floor_and_climbs_back():
    clock = Clock()

    def sleep(seconds: float) -> None:
        clock.now += seconds

    limiter = SlidingWindowLimiter([(10, 1.0), (500, 60.0)], clock=clock, sleep=sleep)
    for _ in range(600):
        with limiter.request():
            clock.now += 0.1  # ten a second: the per-second window is full
    assert limiter.slow_down(FLOOR) == [5, 250], "half of the 10 a second and 500 a minute held"
    assert limiter.slow_down(FLOOR) == [5, 250], "the same held: no lower"
    idle = SlidingWindowLimiter([(10, 1.0), (500, 60.0)], clock=clock)
    assert idle.slow_down(FLOOR) == [1, 50], "it sent nothing: a tenth of its limits"
    idle.speed_up(0.5)
    assert idle.limits() == [6, 300]
    idle.speed_up(5)
    assert idle.limits() == [10, 500], "never above the configured limits"


def test_a_pause_holds_every_request_until_it_ends():
    clock = Clock()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    limiter = SlidingWindowLimiter([(10, 1.0)], clock=clock, sleep=sleep)
    limiter.pause(7.0)
    with limiter.request():
        pass
    assert slept == [7.0]
