"""The read planner: from an account's state, the settings and Cronofy's today, which
free-busy queries a run makes, which periods it may emit, and the state it leaves.

Pure functions only (no clock, no I/O): every decision about what is read lives here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import typing as t
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pendulum

from tap_cronofy import zones

if t.TYPE_CHECKING:
    from tap_cronofy.settings import Settings

DAYS_BACK = 42  # Cronofy's window: 42 days back ...
DAYS_AHEAD = 201  # ... to 201 days ahead of today, `to` exclusive
# A read whose window edge is Cronofy's own sends no `from`/`to` there: Cronofy then applies
# its default by its own clock, so the window's last day is read and no day turning between
# asking and answering can provoke a 422. A fresh sync and a months-old one hold the same
# periods: those overlapping the window (and, with include_managed and no start_date or
# end_date, managed events wherever they lie, as Cronofy returns them).

# Keys of an account's state besides the SDK's bookmark name.
HORIZON = "horizon"  # the window has been read up to this date (exclusive)
SCOPE = "scope"  # fingerprint of the settings that decide what a query returns
FULL_READ = "full_read"  # date of the last whole-window read
NOTIFIED = "notified"  # change-driven mode: the change log position its last query covers
LOG = "log"  # change-driven mode: the identity of the change log that position counts in
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# Keys of an account's calendars state.
READ_ON = "read_on"  # the day (in tzid, by Cronofy's clock) its calendars were last read
CALENDARS = "calendars"  # calendar_id -> fingerprint of the record last emitted
FULL_LISTING = "full_listing"  # when its calendars were last listed with nothing to compare
UNLISTED = "unlisted"  # calendars free_busy reports that the listing did not include
LAST_RUN = "last_run"  # calendars' stream state: when its previous run started


@dataclass(frozen=True)
class Read:
    """One query of an account's run."""

    kind: str  # "full", "incremental" or "horizon"
    params: dict[str, t.Any]
    reason: str = ""

    @property
    def label(self) -> str:
        return self.kind + (f" ({self.reason})" if self.reason else "")


@dataclass(frozen=True)
class Bounds:
    """What a run keeps live: periods overlapping [lower, upper), as UTC times in Cronofy's
    format (string order is time order), and, when ``managed_anywhere``, managed periods
    wherever they lie. Every other period a read returns is emitted marked deleted: it has
    left what the tap keeps, and its row must not stay live at its old value."""

    lower: str
    upper: str
    managed_anywhere: bool = False

    def keeps(self, start_time: str | None, end_time: str | None, managed: bool = False) -> bool:
        """Live when it ends after ``lower`` and starts before ``upper`` (a period that only
        touches ``lower`` is not kept), or when it is managed and ``managed_anywhere``."""
        if start_time is None or end_time is None:
            return True  # malformed: kept, so that nothing is dropped silently
        if managed and self.managed_anywhere:
            return True
        return self.lower < self.upper and start_time < self.upper and end_time > self.lower


SCOPE_SETTINGS = (
    "calendar_ids",
    "include_managed",
    "localized_times",
    "start_date",
    "end_date",
    "tzid",
)  # the settings that decide which periods a whole-window query returns


def scope_values(settings: Settings) -> dict[str, t.Any]:
    """The values of SCOPE_SETTINGS, canonical (calendar ids sorted, dates as text)."""
    return {
        "calendar_ids": sorted(settings.calendar_ids),
        "include_managed": settings.include_managed,
        "localized_times": settings.localized_times,
        "start_date": str(settings.start_date) if settings.start_date else None,
        "end_date": str(settings.end_date) if settings.end_date else None,
        "tzid": settings.tzid,
    }


def scope_fingerprint(settings: Settings) -> str:
    """Changes whenever the set of periods a whole-window query returns could change: each
    of SCOPE_SETTINGS with a short fingerprint of its value (``tzid=1a2b3c,...``), so a
    change can be named. (As written, a value most accounts share costs one copy per
    stream: statecodec.)"""
    values = scope_values(settings)
    return ",".join(
        f"{name}={hashlib.sha256(json.dumps(values[name]).encode()).hexdigest()[:8]}"
        for name in SCOPE_SETTINGS
    )


def legacy_scope_fingerprint(settings: Settings) -> str:
    """The one hash release 0.2 saved (the same scope, its settings unnamed): still taken
    as equal, so an upgrade re-reads nothing."""
    canonical = json.dumps(scope_values(settings), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def scope_change(recorded: str, settings: Settings) -> list[str]:
    """The scope settings whose value differs from the ``recorded`` fingerprint; all of
    them when it does not name them (a fingerprint written before they were named). A
    shorter fingerprint of a setting (6 hex, as 6ffc80f..9a4b93d wrote) that begins the
    current one is the same value."""
    current = dict(part.split("=", 1) for part in scope_fingerprint(settings).split(","))
    parts = [part.split("=", 1) for part in recorded.split(",")]
    before = dict(p for p in parts if len(p) == 2)
    if set(before) != set(current):
        return list(SCOPE_SETTINGS)
    return [
        name
        for name in SCOPE_SETTINGS
        if not (len(before[name]) >= 6 and current[name].startswith(before[name]))
    ]


def flag(value: bool) -> str:
    return "true" if value else "false"


def base_params(settings: Settings) -> dict[str, t.Any]:
    params: dict[str, t.Any] = {
        "tzid": settings.tzid,
        "include_ids": "true",
        "include_free": "true",
        "include_managed": flag(settings.include_managed),
        "localized_times": flag(settings.localized_times),
        "include_userinfo": "true",  # to check that the token is the account's own
    }
    if settings.calendar_ids:
        params["calendar_ids[]"] = list(settings.calendar_ids)
    return params


def window(settings: Settings, today: pendulum.Date) -> tuple[pendulum.Date, pendulum.Date]:
    """The dates a run covers: from ``start_date`` (clamped to Cronofy's limit; else
    Cronofy's own 42 days back) to ``end_date`` or Cronofy's edge, 201 days ahead,
    exclusive."""
    lower = today.subtract(days=DAYS_BACK)
    if settings.start_date:
        lower = max(lower, settings.start_date)
    upper = today.add(days=DAYS_AHEAD)
    if settings.end_date:
        upper = min(upper, settings.end_date)
    return lower, upper


def needs_today(settings: Settings) -> bool:
    """Whether a whole-window read's parameters depend on the date: only with start_date or
    end_date (else Cronofy's defaults are the window, and no date is sent)."""
    return bool(settings.start_date or settings.end_date)


def date_params(lower: pendulum.Date, upper: pendulum.Date, today: pendulum.Date) -> dict[str, str]:
    """``from``/``to`` for [lower, upper), each left out where it is Cronofy's own default
    (or beyond it): Cronofy then decides that edge by its clock."""
    params = {}
    if lower > today.subtract(days=DAYS_BACK):
        params["from"] = lower.isoformat()
    if upper < today.add(days=DAYS_AHEAD):
        params["to"] = upper.isoformat()
    return params


def bounds(settings: Settings, today: pendulum.Date) -> Bounds:
    """The window as the instants every read's periods are checked against: midnights in
    ``tzid``, in UTC."""
    lower, upper = window(settings, today)
    return Bounds(
        _midnight_utc(lower, settings.tzid),
        _midnight_utc(upper, settings.tzid),
        managed_anywhere=settings.include_managed and not needs_today(settings),
    )


def _midnight_utc(day: pendulum.Date, tzid: str) -> str:
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=zone(tzid))
    return midnight.astimezone(dt.timezone.utc).strftime(TIME_FORMAT)


def needs_full_read(state: t.Mapping[str, t.Any], settings: Settings) -> str | None:
    """Why an account's first query this run must read the whole window, or None when an
    incremental query will do."""
    if not state.get("replication_key_value"):
        return "first sync"
    if HORIZON not in state or SCOPE not in state:
        return "its state predates horizon tracking"
    if state[SCOPE] != legacy_scope_fingerprint(settings) and (
        changed := scope_change(str(state[SCOPE]), settings)
    ):
        if changed == list(SCOPE_SETTINGS):
            return "the query scope changed (" + ", ".join(changed[:-1]) + " or tzid)"
        return "the query scope changed: " + ", ".join(changed)
    return None


def full_read(settings: Settings, today: pendulum.Date | None, *, reason: str) -> Read | None:
    """The whole window; None when ``start_date``/``end_date`` leave nothing to read today.
    ``today`` (Cronofy's) is needed only when ``needs_today``. Deleted periods are always
    asked for: a first sync of an account may follow rows loaded before (state cleared,
    the account removed and added again, --full-refresh)."""
    params = base_params(settings)
    params["include_deleted"] = "true"
    if needs_today(settings):
        assert today is not None, "start_date/end_date: a full read needs Cronofy's today"
        lower, upper = window(settings, today)
        if lower >= upper:
            return None
        params.update(date_params(lower, upper, today))
    return Read("full", params, reason)


def incremental_read(settings: Settings, bookmark: str, notified_since: str | None = None) -> Read:
    """Cronofy's incremental recipe: no from/to, deletions included, changes since the
    bookmark minus ``lookback_seconds``, or since ``notified_since`` (the earliest
    ``changes_since`` of the notifications it serves) when that is earlier."""
    moment = dt.datetime.fromisoformat(bookmark.replace("Z", "+00:00"))
    since = moment - dt.timedelta(seconds=settings.lookback_seconds)
    if notified_since:
        try:
            notified = dt.datetime.fromisoformat(notified_since.replace("Z", "+00:00"))
        except ValueError:
            notified = None  # not a Time: the bookmark decides
        if notified is not None and notified.tzinfo is not None:
            since = min(since, notified)
    params = base_params(settings)
    params["include_deleted"] = "true"
    params["last_modified"] = since.astimezone(dt.timezone.utc).strftime(TIME_FORMAT)
    return Read("incremental", params)


def first_read(
    state: t.Mapping[str, t.Any],
    settings: Settings,
    today: pendulum.Date | None,
    now: str,
    notified_since: str | None = None,
) -> Read:
    """An account's first query this run. ``today`` (Cronofy's) is only needed when
    ``needs_full_read`` and ``needs_today``; ``now`` stands in for a bookmark that does not
    exist yet."""
    reason = needs_full_read(state, settings)
    if reason is not None and (read := full_read(settings, today, reason=reason)) is not None:
        return read
    bookmark = state.get("replication_key_value") or now
    return incremental_read(settings, bookmark, notified_since)


def earlier_to(read: Read) -> Read | None:
    """After Cronofy refused a read's ``to`` as too far ahead (the clocks disagree by the
    day): the same read ending one day earlier; None when it sends no ``to``."""
    if "to" not in read.params:
        return None
    to = pendulum.Date.fromisoformat(read.params["to"]).subtract(days=1)
    params = {**read.params, "to": to.isoformat()}
    if "from" in params and params["from"] >= params["to"]:
        return None
    return Read(read.kind, params, read.reason)


def follow_up(
    state: t.Mapping[str, t.Any],
    settings: Settings,
    account_id: str,
    today: pendulum.Date,
    first: Read,
) -> Read | None:
    """After an incremental first query: a periodic full re-read when due, else the slice
    of the window that time has brought in since the last run (no `last_modified`: those
    periods were not modified, they only came into range)."""
    if first.kind != "incremental" or HORIZON not in state:
        return None
    if resync_due(state.get(FULL_READ), account_id, today, settings.full_resync_days):
        return full_read(settings, today, reason="periodic full re-read (full_resync_days)")
    lower, upper = window(settings, today)
    start = max(pendulum.Date.fromisoformat(state[HORIZON]), lower)
    if start >= upper:
        return None
    params = base_params(settings)
    params["include_deleted"] = "true"
    params.update(date_params(start, upper, today))
    return Read("horizon", params, f"window moved on to {upper}")


def completed(
    state: t.Mapping[str, t.Any],
    settings: Settings,
    reads: t.Sequence[Read],
    today: pendulum.Date,
    watermark: str,
    position: int | None = None,
    log_id: int | None = None,
) -> dict[str, t.Any]:
    """The partition state an account's run leaves once all its ``reads`` completed:
    the bookmark, how far the window has been read, the scope, the last full read, and in
    change-driven mode the change log ``position`` read before its first query and the
    identity (``log_id``) of the log it counts in."""
    new: dict[str, t.Any] = {
        "replication_key_value": watermark,
        SCOPE: scope_fingerprint(settings),
    }
    if position is not None:
        new[NOTIFIED] = position
        if log_id is not None:
            new[LOG] = log_id
    edge = window(settings, today)[1].isoformat()  # where a read with no `to` stops
    horizon = state.get(HORIZON)
    last_full = state.get(FULL_READ)
    for read in reads:
        if read.kind == "full":
            last_full = today.isoformat()
        if read.kind != "incremental":
            horizon = read.params.get("to", edge)
    if horizon is None:  # no day of the window could be read: nothing to catch up later
        horizon = edge
    new[HORIZON] = horizon
    if last_full is not None:
        new[FULL_READ] = last_full
    return new


def stalest_first(ids: t.Sequence[str], states: t.Mapping[str, t.Mapping[str, t.Any]]) -> list[str]:
    """The order a run serves accounts in: never synced first, then the oldest bookmark, so
    that a run cut short by its budget leaves the freshest accounts for the next one (and
    no account waits two runs in a row behind fresher ones). Ties keep ``ids``' order."""
    return sorted(ids, key=lambda a: (states.get(a) or {}).get("replication_key_value") or "")


def change_due(
    state: t.Mapping[str, t.Any] | None,
    settings: Settings,
    notified: t.Sequence[str],
    pruned_through: int,
    account_id: str,
    now: dt.datetime,
    log_id: int | None = None,
) -> str | None:
    """Change-driven mode: why an account is queried this run, or None (no request at all).
    ``notified``: the notification types the change log holds for it after its position.
    Besides notifications, an account is queried when it has no usable state, when the log
    was pruned past its position (a notification may be lost), and once a day from its
    ``calendar_slot`` hour: the sweep that reads what Cronofy never notifies (the
    application's own changes, periods entering the window)."""
    state = state or {}
    if (reason := needs_full_read(state, settings)) is not None:
        return reason
    if NOTIFIED not in state:
        return "first run in change-driven mode"
    if state.get(LOG) != log_id:
        return "the change log is not the one its position counts in (replaced or recreated)"
    if state[NOTIFIED] < pruned_through:
        return "the change log was pruned past its position"
    if notified:
        return "notified (" + ", ".join(notified) + ")"
    if state["replication_key_value"] < sweep_moment(account_id, now, settings.tzid):
        return "daily sweep"
    return None


def sweep_moment(account_id: str, now: dt.datetime, tzid: str) -> str:
    """The latest start of an account's daily sweep at or before ``now``: its
    ``calendar_slot`` hour (in tzid) today, else yesterday; as a UTC time string."""
    day = now.astimezone(zone(tzid)).date()
    hour = calendar_slot(account_id)
    moment = dt.datetime(day.year, day.month, day.day, hour, tzinfo=zone(tzid))
    if moment > now:
        day -= dt.timedelta(days=1)
        moment = dt.datetime(day.year, day.month, day.day, hour, tzinfo=zone(tzid))
    return moment.astimezone(dt.timezone.utc).strftime(TIME_FORMAT)


def calendar_slot(account_id: str) -> int:
    """The hour (1 to 23, in tzid) from which an account's calendars are re-read each day:
    spread over the day, and never at midnight, when free_busy's horizon slice is read."""
    return 1 + int(hashlib.sha256(account_id.encode()).hexdigest(), 16) % 23


def calendars_due(
    state: t.Mapping[str, t.Any] | None,
    account_id: str,
    today: pendulum.Date,
    hour: int,
    gap_hours: float,
    seen: t.Iterable[str],
) -> str | None:
    """Why an account's calendars are read this run, or None. At once when free_busy read
    periods of a calendar not read before (``seen``); else once a day, on the first run at
    or after the account's ``calendar_slot`` hour, or on the day's last run when the slot is
    later than that (``gap_hours`` since the previous run: the next run is tomorrow)."""
    if not state or READ_ON not in state:
        return "first read"
    known = state.get(CALENDARS) or {}
    unlisted = set(state.get(UNLISTED) or ())
    if unknown := sorted(c for c in seen if c not in known and c not in unlisted):
        return f"free_busy read periods of {len(unknown)} calendar(s) not read before"
    if state[READ_ON] >= today.isoformat():
        return None
    if hour >= calendar_slot(account_id):
        return "daily re-read"
    if hour + gap_hours >= 24:
        return "daily re-read (no later run expected today)"
    return None


def run_gap_hours(previous: str | None, now: dt.datetime) -> float:
    """Hours since the previous run started (24 when unknown: as if runs were daily)."""
    if not previous:
        return 24.0
    then = dt.datetime.fromisoformat(previous.replace("Z", "+00:00"))
    return max(0.0, (now - then).total_seconds() / 3600)


def calendar_changes(
    state: t.Mapping[str, t.Any] | None,
    today: pendulum.Date,
    calendars: t.Mapping[str, str],
    seen_at: str,
    seen: t.Iterable[str] = (),
) -> tuple[list[str], list[str], dict[str, t.Any]]:
    """From a read's calendars (calendar_id -> fingerprint): the ids to emit (new or
    changed), the ids to emit marked deleted (emitted before, no longer listed), and the
    account's new calendars state (those no longer listed drop out). A read with no
    calendars state is a full listing: every calendar is emitted, and ``seen_at`` kept
    as its time (a calendar deleted before it, which no state remembers, is then told
    apart in the warehouse by an older last_modified). Calendars free_busy reported
    (``seen``) that the listing lacks are kept as unlisted: they do not bring the next run
    to read the calendars again."""
    recorded = (state or {}).get(CALENDARS)
    full = not isinstance(recorded, t.Mapping)
    known: t.Mapping[str, t.Any] = {} if full else t.cast(t.Mapping[str, t.Any], recorded)
    changed = [c for c, fingerprint in calendars.items() if known.get(c) != fingerprint]
    removed = sorted(c for c in known if c not in calendars)
    listing = seen_at if full else (state or {}).get(FULL_LISTING)
    new_state: dict[str, t.Any] = {READ_ON: today.isoformat(), CALENDARS: dict(calendars)}
    if listing:
        new_state[FULL_LISTING] = listing
    before = set((state or {}).get(UNLISTED) or ())
    if unlisted := sorted((before | set(seen)) - set(calendars)):
        new_state[UNLISTED] = unlisted
    return changed, removed, new_state


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
    local = moment.astimezone(zone(tzid))
    return pendulum.Date(local.year, local.month, local.day)


def zone(tzid: str) -> ZoneInfo:
    """The zone of a tzid, from the tzdata package (cached: no file read per call)."""
    return zones.zone(tzid)
