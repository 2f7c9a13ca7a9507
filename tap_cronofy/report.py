"""What a run did, per stream and account: for progress lines, the summary and the exit code."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class StreamTally:
    accounts: int = 0
    pages: int = 0
    records: int = 0
    deleted: int = 0
    collisions: int = 0
    reads: Counter = field(default_factory=Counter)
    # change-driven mode: why accounts were queried, and how many were not
    queried: Counter = field(default_factory=Counter)
    unqueried: int = 0


class RunReport:
    """Shared by the streams of a run; read by the tap at the end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.streams: dict[str, StreamTally] = {}
        self.failed_accounts: dict[str, str] = {}

    def tally(self, stream: str) -> StreamTally:
        with self._lock:
            return self.streams.setdefault(stream, StreamTally())

    def account_failed(self, account_id: str, reason: str) -> None:
        with self._lock:
            self.failed_accounts[account_id] = reason

    def summary_lines(self, waited_seconds: float, requests: int) -> list[str]:
        lines = []
        for name, tally in sorted(self.streams.items()):
            reads = ", ".join(f"{n} {kind}" for kind, n in sorted(tally.reads.items()))
            line = f"Summary {name}: {plural(tally.records, 'record')}"
            if tally.accounts:
                line += (
                    f" from {plural(tally.accounts, 'account')} ({plural(tally.pages, 'page')}; "
                    f"reads: {reads or 'none'}), {plural(tally.deleted, 'deletion')}"
                )
                if tally.collisions:
                    line += f", {plural(tally.collisions, 'key collision')}"
            elif reads:
                line += f" (reads: {reads})"
            if tally.queried or tally.unqueried:
                why = ", ".join(f"{n} {reason}" for reason, n in sorted(tally.queried.items()))
                line += (
                    f"; change-driven: {plural(sum(tally.queried.values()), 'account')} queried"
                    f" ({why or 'none'}), {tally.unqueried} unchanged with no request"
                )
            lines.append(line + ".")
        failed = len(self.failed_accounts)
        lines.append(
            f"Summary run: {plural(requests, 'request')} to Cronofy, {waited_seconds:.1f} s "
            f"waiting on the client-side rate limit, {plural(failed, 'failed account')}."
        )
        return lines


def plural(count: int, noun: str) -> str:
    """``1 page``, ``2 pages``, ``0 pages``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def quota_warning(
    *, requests: int, accounts: int, per_minute: int, waited: float, elapsed: float
) -> str | None:
    """When waiting on the rate limit took most of a run, what to say, with the numbers."""
    if elapsed <= 0 or waited < 0.5 * elapsed:
        return None
    return (
        f"The rate limit bounded this run: {requests} requests ({requests / accounts:.1f} per "
        f"account, {accounts} accounts) at {per_minute} requests/minute need at least "
        f"{requests / per_minute:.1f} minutes; {waited:.0f} of the run's {elapsed:.0f} s were "
        "spent waiting. Run less often, give each run a budget (max_requests_per_run or "
        "max_run_minutes: the stalest accounts are served first, the others by the next "
        "runs), or raise requests_per_minute/requests_per_second only if your Cronofy quota "
        "is higher than that and no other application shares it."
    )


# A run with no state for at least this many accounts is said to cost what it will.
FIRST_SYNC_WARN_AT = 100
FIRST_SYNC_REQUESTS = 3  # per account: token, the whole window, calendars


def first_sync_warning(*, new: int, configured: int, per_minute: int) -> str | None:
    """Before a run reads many accounts whole (no state for them): what it will cost, and
    what to do if the state was moved rather than never made."""
    if new < FIRST_SYNC_WARN_AT:
        return None
    requests = new * FIRST_SYNC_REQUESTS
    return (
        f"{new:,} of {configured:,} accounts have no state: this run reads each of them whole, "
        f"at least {requests:,} requests ({requests / per_minute:,.0f} minutes at "
        f"{per_minute} requests/minute), plus one for each further page of 500 periods. If "
        "they were synced before and the state was moved (a new Meltano system database, "
        "environment or state id), stop this run and carry the state over first (the "
        "manual's State page, 'Moving state'); a first sync needs nothing."
    )
