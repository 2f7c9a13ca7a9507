"""The run budget: which accounts a run starts, in order, within its requests and minutes."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from tap_cronofy.budget import ACCOUNT_COST, RunBudget


class Counter:
    def __init__(self) -> None:
        self.requests = 0

    def __call__(self) -> int:
        return self.requests


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)


def test_no_budget_admits_every_account_however_many_requests():
    spent = Counter()
    budget = RunBudget(0, 0, spent)
    spent.requests = 10**9
    assert not budget.limited
    assert all(budget.admit(f"acc_{n}") for n in range(100))
    assert budget.waiting == {} and budget.summary(NOW) is None


def test_a_request_budget_admits_while_the_reserve_fits_then_everyone_waits():
    spent = Counter()
    budget = RunBudget(10, 0, spent)
    assert budget.limited
    assert budget.admit("a")  # 0 spent + 3 reserved <= 10
    budget.finished("a")
    spent.requests = 4
    assert budget.admit("b")  # 4 + 3 <= 10
    budget.finished("b")
    spent.requests = 8  # 8 + 3 > 10 and nothing in progress: no more accounts
    assert not budget.admit("c", "2026-12-01T10:00:00Z")
    assert not budget.admit("c"), "refused once, refused for the run"
    assert not budget.admit("d")
    assert budget.admit("a"), "an admitted account is served by every stream"
    assert budget.spent_on == "requests"
    assert budget.waiting == {"c": "2026-12-01T10:00:00Z", "d": None}


def test_a_spent_budget_refuses_at_once():
    spent = Counter()
    budget = RunBudget(5, 0, spent)
    spent.requests = 5
    assert not budget.admit("a")
    assert budget.spent_on == "requests"


def waits_seen(budget: RunBudget) -> threading.Event:
    """Set once a caller is blocked inside the budget, waiting for a reserve to free (so a
    test forces the wait rather than racing the thread it started)."""
    entered = threading.Event()
    original = budget._cond.wait

    def wait(timeout: float | None = None) -> bool:
        entered.set()
        return original(timeout)

    budget._cond.wait = wait  # type: ignore[method-assign]
    return entered


def test_accounts_in_progress_hold_their_reserve_until_they_finish():
    spent = Counter()
    budget = RunBudget(2 * ACCOUNT_COST + 2, 0, spent)
    assert budget.admit("a") and budget.admit("b")  # two reserves fit, a third does not
    entered = waits_seen(budget)
    answer: list[bool] = []
    waiter = threading.Thread(target=lambda: answer.append(budget.admit("c")))
    waiter.start()
    assert entered.wait(5) and answer == [], "c waits while a and b hold the budget"
    spent.requests = 2  # a finished with 2 requests: 2 + b's reserve + c's fit in 8
    budget.finished("a")
    waiter.join(5)
    assert answer == [True]
    budget.finished("b")
    budget.finished("c")


def test_an_account_waiting_for_the_reserve_is_refused_once_nothing_is_in_progress():
    spent = Counter()
    budget = RunBudget(ACCOUNT_COST + 1, 0, spent)
    assert budget.admit("a")
    entered = waits_seen(budget)
    answer: list[bool] = []
    waiter = threading.Thread(target=lambda: answer.append(budget.admit("b")))
    waiter.start()
    assert entered.wait(5), "b is waiting for a's reserve"
    spent.requests = 3  # a spent its reserve: 3 + 3 > 4
    budget.finished("a")
    waiter.join(5)
    assert answer == [False] and "b" in budget.waiting


def test_a_time_budget_stops_admitting_at_its_deadline():
    clock = Clock()
    budget = RunBudget(0, 0.5, Counter(), clock=clock)
    assert budget.limited
    clock.now += 29.9
    assert budget.admit("a")
    clock.now += 0.1  # 30 s: half a minute
    assert not budget.admit("b")
    assert budget.spent_on == "minutes"


def test_the_summary_says_who_waited_since_when_and_why():
    spent = Counter()
    budget = RunBudget(3, 0, spent)
    assert budget.admit("a")
    spent.requests = 3
    assert budget.admit("b", "2026-12-01T09:15:00Z") is False
    assert not budget.admit("c", "2026-12-01T11:50:00Z")
    assert not budget.admit("e", "2026-12-01T10:00:00Z")
    assert not budget.admit("d")
    assert budget.summary(NOW) == (
        "1 account(s) served; 4 waited for the next run, which serves them first: its budget "
        "of 3 requests (max_requests_per_run) was spent. They were last synced 10 min to "
        "2 h 45 min ago (the stalest at 2026-12-01T09:15:00Z); 1 never synced."
    )


def test_the_summary_of_a_time_budget_with_only_new_accounts_waiting():
    clock = Clock()
    budget = RunBudget(0, 1.5, Counter(), clock=clock)
    clock.now += 90
    assert not budget.admit("a")
    assert budget.summary(NOW) == (
        "0 account(s) served; 1 waited for the next run, which serves them first: its time "
        "budget of 1.5 minutes (max_run_minutes) ran out. 1 never synced."
    )


@pytest.mark.parametrize(
    ("then", "said"),
    [
        ("2026-12-01T12:00:30Z", "0 min"),
        ("2026-12-01T11:00:00Z", "1 h 00 min"),
        ("2026-12-01T12:05:00Z", "0 min"),
    ],
)
def test_ages_are_whole_minutes_never_negative(then, said):
    from tap_cronofy.budget import _ago

    assert _ago(NOW, then) == said
