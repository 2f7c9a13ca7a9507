"""A run's budget: which accounts a run may still start, within its requests and minutes."""

from __future__ import annotations

import datetime as dt
import threading
import time
import typing as t

# Requests an account is expected to cost (a token refresh, its query, one more read): kept
# in reserve for each account in progress, so that parallel workers do not all start
# accounts the budget cannot pay for.
ACCOUNT_COST = 3


class RunBudget:
    """Admits accounts in the order they are asked for until the budget is spent; every
    account asked for after that waits for the next run. An admitted account is finished
    (by every stream), so a run may go over by what its accounts in progress cost beyond
    ``ACCOUNT_COST`` each."""

    def __init__(
        self,
        max_requests: int,
        max_minutes: float,
        spent: t.Callable[[], int],
        clock: t.Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_requests = max_requests
        self._max_minutes = max_minutes
        self._deadline = clock() + max_minutes * 60 if max_minutes > 0 else None
        self._spent = spent
        self._clock = clock
        self._cond = threading.Condition()
        self._admitted: set[str] = set()
        self._in_progress: set[str] = set()
        self.waiting: dict[str, str | None] = {}  # account -> when it was last synced
        self.spent_on: str | None = None  # what ran out: "requests" or "minutes"

    @property
    def limited(self) -> bool:
        return bool(self._max_requests) or self._deadline is not None

    def admit(self, account_id: str, last_synced: str | None = None) -> bool:
        """Whether the account may be served this run (yes again for one already admitted).
        Waits while accounts in progress hold the reserve it would need."""
        with self._cond:
            if account_id in self._admitted:
                return True
            while account_id not in self.waiting:
                if (reason := self._exhausted()) is not None:
                    self.spent_on = reason
                    self.waiting[account_id] = last_synced
                    break
                reserve = ACCOUNT_COST * (len(self._in_progress) + 1)
                if not self._max_requests or self._spent() + reserve <= self._max_requests:
                    self._admitted.add(account_id)
                    self._in_progress.add(account_id)
                    return True
                if not self._in_progress:  # not even one more account fits
                    self.spent_on = "requests"
                    self.waiting[account_id] = last_synced
                    break
                self._cond.wait(timeout=1.0)  # until an account in progress finishes
            return False

    def allows(self, requests: int = 1) -> bool:
        """Whether ``requests`` more may be made now, for work that is not an account's (the
        scheduling request queries, after every account's streams)."""
        with self._cond:
            reason = self._exhausted()
            over = bool(self._max_requests) and self._spent() + requests > self._max_requests
            if reason is None and over:
                reason = "requests"
            if reason is not None:
                self.spent_on = reason
                return False
            return True

    def finished(self, account_id: str) -> None:
        """The account's requests are made: its reserve is released."""
        with self._cond:
            self._in_progress.discard(account_id)
            self._cond.notify_all()

    def _exhausted(self) -> str | None:
        if self._max_requests and self._spent() >= self._max_requests:
            return "requests"
        if self._deadline is not None and self._clock() >= self._deadline:
            return "minutes"
        return None

    def summary(self, now: dt.datetime) -> str | None:
        """What waited for the next run and since when; None when nothing did."""
        if not self.waiting:
            return None
        spent = (
            f"its time budget of {self._max_minutes:g} minutes (max_run_minutes) ran out"
            if self.spent_on == "minutes"
            else f"its budget of {self._max_requests} requests (max_requests_per_run) was spent"
        )
        line = (
            f"{len(self._admitted)} account(s) served; {len(self.waiting)} waited for the next "
            f"run, which serves them first: {spent}."
        )
        synced = sorted(v for v in self.waiting.values() if v)
        if synced:
            line += (
                f" They were last synced {_ago(now, synced[-1])} to {_ago(now, synced[0])} "
                f"ago (the stalest at {synced[0]})"
            )
        if never := len(self.waiting) - len(synced):
            line += f"{';' if synced else ''} {never} never synced"
        return line + "."  # someone waited: synced before, or never


def _ago(now: dt.datetime, moment: str) -> str:
    then = dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    minutes = max(0, int((now - then).total_seconds() // 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
