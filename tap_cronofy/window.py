"""Cronofy's free-busy window over time: which queries a run makes for an account, and why."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import typing as t
from dataclasses import dataclass

import pendulum

if t.TYPE_CHECKING:
    from tap_cronofy.settings import Settings

DAYS_BACK = 42  # Cronofy's window: 42 days back ...
DAYS_AHEAD = 201  # ... to 201 days ahead of today, `to` exclusive
# One day inside each limit, so that clock or time-zone differences never provoke a 422.
SAFE_BACK = DAYS_BACK - 1
SAFE_AHEAD = DAYS_AHEAD - 1

# Keys of an account's partition state besides the SDK's bookmark.
HORIZON = "horizon"  # the window has been read up to this date (exclusive)
SCOPE = "scope"  # fingerprint of the settings that decide what a query returns
FULL_READ = "full_read"  # date of the last whole-window read


@dataclass(frozen=True)
class Read:
    """One query of an account's run."""

    kind: str  # "full", "incremental" or "horizon"
    params: dict[str, t.Any]
    reason: str = ""


def scope_fingerprint(settings: Settings) -> str:
    """Changes whenever the set of periods a whole-window query returns could change."""
    scope = {
        "calendar_ids": sorted(settings.calendar_ids),
        "include_managed": settings.include_managed,
        "localized_times": settings.localized_times,
        "start_date": str(settings.start_date) if settings.start_date else None,
        "end_date": str(settings.end_date) if settings.end_date else None,
        "tzid": settings.tzid,
    }
    canonical = json.dumps(scope, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def base_params(settings: Settings) -> dict[str, t.Any]:
    params: dict[str, t.Any] = {
        "tzid": settings.tzid,
        "include_ids": "true",
        "include_free": "true",
        "include_managed": flag(settings.include_managed),
        "localized_times": flag(settings.localized_times),
    }
    if settings.calendar_ids:
        params["calendar_ids[]"] = list(settings.calendar_ids)
    if settings.has_account_list:
        params["include_userinfo"] = "true"  # to check each token belongs to its account
    return params


def flag(value: bool) -> str:
    return "true" if value else "false"


def first_read(state: t.Mapping[str, t.Any], settings: Settings) -> tuple[str, str]:
    """The kind of an account's first query this run, and why when it is not incremental."""
    if not state.get("replication_key_value"):
        return "full", "first sync"
    if HORIZON not in state or SCOPE not in state:
        return "full", "its state predates horizon tracking"
    if state[SCOPE] != scope_fingerprint(settings):
        return "full", (
            "the query scope changed (calendar_ids, include_managed, localized_times, "
            "start_date, end_date or tzid)"
        )
    return "incremental", ""


def full_read(
    settings: Settings, today: pendulum.Date, *, first_sync: bool, reason: str
) -> Read | None:
    """The whole window (``start_date``/``end_date`` clamped into Cronofy's limits); None
    when those dates leave nothing to read today."""
    params = base_params(settings)
    if not first_sync:
        params["include_deleted"] = "true"  # mark rows loaded earlier that were deleted since
    lower, upper = bounds(settings, today)
    if settings.start_date:
        params["from"] = lower.isoformat()
    if settings.end_date:
        params["to"] = upper.isoformat()
    if "from" in params and "to" in params and params["from"] >= params["to"]:
        return None
    return Read("full", params, reason)


def incremental_read(settings: Settings, bookmark: str) -> Read:
    """Cronofy's incremental recipe: no from/to, deletions included, changes since the
    bookmark minus ``lookback_seconds``."""
    moment = dt.datetime.fromisoformat(bookmark.replace("Z", "+00:00"))
    since = moment - dt.timedelta(seconds=settings.lookback_seconds)
    params = base_params(settings)
    params["include_deleted"] = "true"
    params["last_modified"] = since.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Read("incremental", params)


def follow_up(
    state: t.Mapping[str, t.Any], settings: Settings, account_id: str, today: pendulum.Date
) -> Read | None:
    """After an incremental query: a periodic full re-read when due, else the slice of the
    window that time has brought in since the last run (no `last_modified`: those periods
    were not modified, they only came into range)."""
    if resync_due(state.get(FULL_READ), account_id, today, settings.full_resync_days):
        return full_read(
            settings, today, first_sync=False, reason="periodic full re-read (full_resync_days)"
        )
    lower, end = bounds(settings, today)
    start = max(pendulum.Date.fromisoformat(state[HORIZON]), lower)
    if start >= end:
        return None
    params = base_params(settings)
    params.update({"include_deleted": "true", "from": start.isoformat(), "to": end.isoformat()})
    return Read("horizon", params, f"window moved on to {end}")


def bounds(settings: Settings, today: pendulum.Date) -> tuple[pendulum.Date, pendulum.Date]:
    """What may be read today: Cronofy's window (one day inside its limits), narrowed by
    ``start_date``/``end_date``; the end is exclusive."""
    lower = today.subtract(days=SAFE_BACK)
    upper = today.add(days=SAFE_AHEAD)
    if settings.start_date:
        lower = max(lower, settings.start_date)
    if settings.end_date:
        upper = min(upper, settings.end_date)
    return lower, upper


def resync_due(last: str | None, account_id: str, today: pendulum.Date, every: int) -> bool:
    """Every ``every`` days per account, on a day picked by the account id so that accounts
    spread over the cycle rather than all re-reading on the same run."""
    if every <= 0:
        return False
    if last is None:
        return True
    elapsed = (today - pendulum.Date.fromisoformat(last)).days
    slot = int(hashlib.sha256(account_id.encode()).hexdigest(), 16) % every
    return elapsed > every or (elapsed >= 1 and today.toordinal() % every == slot)


def server_date(moment: dt.datetime, tzid: str) -> pendulum.Date:
    """The date at ``moment`` (Cronofy's clock) in the query zone."""
    return pendulum.instance(moment).in_timezone(tzid).date()
