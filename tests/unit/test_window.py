"""The read planner, table by table: what a run reads, what it may emit, what it saves."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest

from tap_cronofy import window as w
from tap_cronofy.settings import Settings

TODAY = pendulum.Date(2026, 12, 1)
BOOKMARK = "2026-11-30T10:00:00Z"
NOW = "2026-12-01T10:00:00Z"


def settings(**config) -> Settings:
    return Settings.from_config({"access_token": "token-1234", **config})


def state_after(s: Settings, *, horizon: str, full_read: str | None = None) -> dict:
    """A partition state as a previous run left it."""
    state = {
        "replication_key_value": BOOKMARK,
        w.SCOPE: w.scope_fingerprint(s),
        w.HORIZON: horizon,
    }
    if full_read:
        state[w.FULL_READ] = full_read
    return state


# First read of a run


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ({}, "first sync"),
        ({"replication_key_value": BOOKMARK}, "its state predates horizon tracking"),
        ({"replication_key_value": BOOKMARK, w.HORIZON: "2027-06-19"}, "its state predates"),
        ({"replication_key_value": BOOKMARK, w.SCOPE: "x"}, "its state predates"),
        (
            {"replication_key_value": BOOKMARK, w.HORIZON: "2027-06-19", w.SCOPE: "0" * 16},
            "the query scope changed",
        ),
    ],
)
def test_a_full_read_is_needed_when_state_cannot_support_an_incremental_one(state, reason):
    found = w.needs_full_read(state, settings())
    assert found is not None and found.startswith(reason)


def test_an_incremental_read_follows_a_complete_state():
    s = settings()
    assert w.needs_full_read(state_after(s, horizon="2027-06-19"), s) is None


@pytest.mark.parametrize(
    "change",
    [
        {"calendar_ids": ["cal_1"]},
        {"include_managed": False},
        {"localized_times": True},
        {"start_date": "2026-11-01"},
        {"end_date": "2027-01-01"},
        {"tzid": "Europe/Paris"},
    ],
)
def test_each_scope_setting_changes_the_fingerprint(change):
    assert w.scope_fingerprint(settings(**change)) != w.scope_fingerprint(settings())


def test_the_fingerprint_ignores_order_and_unrelated_settings():
    a = settings(calendar_ids=["b", "a"], max_retries=2, lookback_seconds=1)
    b = settings(calendar_ids=["a", "b"])
    assert w.scope_fingerprint(a) == w.scope_fingerprint(b)
    assert [p.split("=")[0] for p in w.scope_fingerprint(a).split(",")] == list(w.SCOPE_SETTINGS)


def test_first_sync_reads_cronofys_own_window_with_deletions():
    """No from/to: Cronofy's defaults (42 days back, 201 ahead, managed events across all
    time) by its own clock; deletions, since rows may have been loaded before."""
    read = w.first_read({}, settings(), None, NOW)
    assert read.kind == "full" and read.reason == "first sync"
    assert read.params == {
        "tzid": "Etc/UTC",
        "include_ids": "true",
        "include_free": "true",
        "include_managed": "true",
        "localized_times": "false",
        "include_userinfo": "true",
        "include_deleted": "true",
    }
    assert read.label == "full (first sync)"


def test_a_rereading_full_read_asks_for_deletions():
    s = settings()
    state = {"replication_key_value": BOOKMARK}
    read = w.first_read(state, s, TODAY, NOW)
    assert read.kind == "full" and read.params["include_deleted"] == "true"


def test_start_and_end_date_beyond_cronofys_window_leave_its_defaults():
    s = settings(start_date="2000-01-01", end_date="2999-01-01")
    read = w.first_read({}, s, TODAY, NOW)
    assert "from" not in read.params and "to" not in read.params
    assert w.window(s, TODAY) == (pendulum.Date(2026, 10, 20), pendulum.Date(2027, 6, 20))


@pytest.mark.parametrize(
    ("start", "end", "sent"),
    [
        ("2026-10-20", "2027-06-20", {}),  # exactly Cronofy's edges: left to it
        ("2026-10-21", "2027-06-19", {"from": "2026-10-21", "to": "2027-06-19"}),
        ("2026-10-19", "2027-06-21", {}),
    ],
)
def test_only_dates_inside_cronofys_defaults_are_sent(start, end, sent):
    read = w.first_read({}, settings(start_date=start, end_date=end), TODAY, NOW)
    assert {k: v for k, v in read.params.items() if k in ("from", "to")} == sent


def test_dates_inside_the_window_are_sent_as_they_are():
    s = settings(start_date="2026-11-20", end_date="2026-12-24", calendar_ids=["c1", "c2"])
    read = w.first_read({}, s, TODAY, NOW)
    assert (read.params["from"], read.params["to"]) == ("2026-11-20", "2026-12-24")
    assert read.params["calendar_ids[]"] == ["c1", "c2"]


def test_dates_outside_the_window_leave_only_an_incremental_read():
    s = settings(start_date="2025-01-01", end_date="2025-02-01")
    read = w.first_read({}, s, TODAY, NOW)
    assert read.kind == "incremental"
    # with no bookmark yet, changes since now (minus the lookback)
    assert read.params["last_modified"] == "2026-12-01T09:50:00Z"


def test_a_full_read_needs_cronofys_today_only_with_start_or_end_date():
    assert not w.needs_today(settings())
    assert w.needs_today(settings(start_date="2026-11-01"))
    assert w.needs_today(settings(end_date="2027-01-01"))
    with pytest.raises(AssertionError):
        w.first_read({}, settings(end_date="2027-01-01"), None, NOW)


def test_the_incremental_read_is_cronofys_recipe_minus_the_lookback():
    s = settings(lookback_seconds=90, include_managed=False, localized_times=True)
    read = w.first_read(state_after(s, horizon="2027-06-19"), s, None, NOW)
    assert read.kind == "incremental" and read.reason == "" and read.label == "incremental"
    assert read.params == {
        "tzid": "Etc/UTC",
        "include_ids": "true",
        "include_free": "true",
        "include_managed": "false",
        "localized_times": "true",
        "include_userinfo": "true",
        "include_deleted": "true",
        "last_modified": "2026-11-30T09:58:30Z",
    }


def test_the_default_lookback_covers_minute_scale_propagation_lag():
    read = w.incremental_read(settings(), BOOKMARK)
    assert read.params["last_modified"] == "2026-11-30T09:50:00Z"


def test_a_bookmark_with_an_offset_is_read_in_utc():
    read = w.incremental_read(settings(lookback_seconds=0), "2026-11-30T11:00:00+01:00")
    assert read.params["last_modified"] == "2026-11-30T10:00:00Z"


# Follow-up: the horizon slice and the periodic re-read


def test_the_horizon_slice_reads_what_time_brought_into_the_window():
    s = settings()
    state = state_after(s, horizon="2027-06-17")
    first = w.first_read(state, s, None, NOW)
    extra = w.follow_up(state, s, "acc_1", TODAY, first)
    assert extra is not None and extra.kind == "horizon"
    assert extra.params["from"] == "2027-06-17" and "to" not in extra.params  # Cronofy's edge
    assert extra.params["include_deleted"] == "true" and "last_modified" not in extra.params
    assert extra.reason == "window moved on to 2027-06-20"


def test_no_slice_when_the_horizon_is_already_at_the_far_edge():
    s = settings()
    state = state_after(s, horizon="2027-06-20")
    first = w.first_read(state, s, None, NOW)
    assert w.follow_up(state, s, "acc_1", TODAY, first) is None


def test_a_slice_never_starts_before_the_window():
    s = settings(start_date="2026-11-25", end_date="2026-12-10")
    state = state_after(s, horizon="2026-11-01")
    first = w.first_read(state, s, None, NOW)
    extra = w.follow_up(state, s, "acc_1", TODAY, first)
    assert extra is not None
    assert (extra.params["from"], extra.params["to"]) == ("2026-11-25", "2026-12-10")


def test_no_follow_up_after_a_full_read_or_without_a_horizon():
    s = settings()
    full = w.first_read({}, s, TODAY, NOW)
    assert w.follow_up(state_after(s, horizon="2027-06-01"), s, "a", TODAY, full) is None
    incremental = w.incremental_read(s, BOOKMARK)
    assert w.follow_up({"replication_key_value": BOOKMARK}, s, "a", TODAY, incremental) is None


def test_a_due_periodic_reread_replaces_the_slice():
    s = settings(full_resync_days=7)
    state = state_after(s, horizon="2027-06-17", full_read="2026-11-20")  # 11 days ago
    first = w.first_read(state, s, None, NOW)
    extra = w.follow_up(state, s, "acc_1", TODAY, first)
    assert extra is not None and extra.kind == "full"
    assert extra.reason == "periodic full re-read (full_resync_days)"
    assert extra.params["include_deleted"] == "true" and "to" not in extra.params


@pytest.mark.parametrize(
    ("last", "every", "due"),
    [
        (None, 0, False),  # off
        ("2026-01-01", 0, False),
        (None, 7, True),  # never read whole
        ("2026-11-23", 7, True),  # 8 days > 7: overdue whatever the slot
        ("2026-12-01", 1, False),  # read today already
        ("2026-11-30", 1, True),  # every day
    ],
)
def test_resync_due(last, every, due):
    assert w.resync_due(last, "acc_1", TODAY, every) is due


def test_resync_spreads_accounts_over_the_cycle():
    """Within the cycle, each account is due on exactly one day of it (its slot)."""
    for account in ("acc_a", "acc_b", "acc_c", "acc_d"):
        due_days = [
            day for day in range(7) if w.resync_due("2026-11-30", account, TODAY.add(days=day), 7)
        ]
        assert len(due_days) == 1, account
        # and never before a day has passed
        assert not w.resync_due(TODAY.isoformat(), account, TODAY, 7)
    slots = {
        next(d for d in range(7) if w.resync_due("2026-11-30", a, TODAY.add(days=d), 7))
        for a in ("acc_a", "acc_b", "acc_c", "acc_d", "acc_e", "acc_f")
    }
    assert len(slots) > 1, "accounts do not all re-read on the same day"


# The state a run leaves


def test_a_first_sync_leaves_bookmark_horizon_scope_and_full_read():
    s = settings()
    read = w.first_read({}, s, TODAY, NOW)
    new = w.completed({}, s, [read], TODAY, "2026-12-01T10:00:01Z")
    assert new == {
        "replication_key_value": "2026-12-01T10:00:01Z",
        w.SCOPE: w.scope_fingerprint(s),
        w.HORIZON: "2027-06-20",  # Cronofy's edge: today + 201, its last day read
        w.FULL_READ: "2026-12-01",
    }


def test_an_incremental_run_moves_the_horizon_only_by_its_slice():
    s = settings()
    state = state_after(s, horizon="2027-06-17", full_read="2026-11-02")
    first = w.first_read(state, s, None, NOW)
    extra = w.follow_up(state, s, "acc_1", TODAY, first)
    assert extra is not None
    new = w.completed(state, s, [first], TODAY, NOW)
    assert new[w.HORIZON] == "2027-06-17", "without its slice, the horizon stays"
    new = w.completed(state, s, [first, extra], TODAY, NOW)
    assert new[w.HORIZON] == "2027-06-20" and new[w.FULL_READ] == "2026-11-02"
    assert new["replication_key_value"] == NOW


def test_a_window_with_no_days_still_leaves_a_horizon():
    s = settings(start_date="2025-01-01", end_date="2025-02-01")
    read = w.first_read({}, s, TODAY, NOW)
    new = w.completed({}, s, [read], TODAY, NOW)
    assert new[w.HORIZON] == "2025-02-01" and w.FULL_READ not in new
    # so the next run reads incrementally, without a full read
    assert w.needs_full_read(new, s) is None


# What may be emitted


def test_bounds_are_midnights_in_the_query_zone():
    s = settings(tzid="Asia/Tokyo", start_date="2026-11-20", end_date="2026-12-24")
    b = w.bounds(s, TODAY)
    assert b == w.Bounds("2026-11-19T15:00:00Z", "2026-12-23T15:00:00Z")


def test_default_bounds_are_cronofys_window_and_managed_events_anywhere():
    b = w.bounds(settings(), TODAY)
    assert b == w.Bounds("2026-10-20T00:00:00Z", "2027-06-20T00:00:00Z", managed_anywhere=True)
    assert not w.bounds(settings(include_managed=False), TODAY).managed_anywhere
    assert not w.bounds(settings(end_date="2027-01-01"), TODAY).managed_anywhere


@pytest.mark.parametrize(
    ("start", "end", "admitted"),
    [
        ("2026-11-20T09:00:00Z", "2026-11-20T10:00:00Z", True),  # inside
        ("2026-11-19T23:00:00Z", "2026-11-20T01:00:00Z", True),  # across the lower edge
        ("2026-11-19T23:00:00Z", "2026-11-20T00:00:00Z", False),  # ends on it: outside
        ("2026-12-23T23:00:00Z", "2026-12-24T01:00:00Z", True),  # across the upper edge
        ("2026-12-24T00:00:00Z", "2026-12-24T01:00:00Z", False),  # starts on it: outside
        ("2027-06-01T00:00:00Z", "2027-06-01T01:00:00Z", False),  # far beyond end_date
        ("2026-10-01T00:00:00Z", "2026-10-01T01:00:00Z", False),  # before start_date
        (None, "2026-11-20T01:00:00Z", True),  # malformed: kept
        ("2026-11-20T01:00:00Z", None, True),
    ],
)
def test_only_periods_overlapping_the_window_are_kept(start, end, admitted):
    b = w.bounds(settings(start_date="2026-11-20", end_date="2026-12-24"), TODAY)
    assert b.keeps(start, end) is admitted
    assert b.keeps(start, end, managed=True) is admitted, "dates set: managed ones too"


def test_managed_periods_are_kept_anywhere_without_start_or_end_date():
    b = w.bounds(settings(), TODAY)
    far = ("2028-01-01T00:00:00Z", "2028-01-01T01:00:00Z")
    assert b.keeps(*far, managed=True) and not b.keeps(*far)


@pytest.mark.parametrize(
    ("moment", "tzid", "day"),
    [
        ("2026-11-30T23:30:00+00:00", "Etc/UTC", "2026-11-30"),
        ("2026-11-30T23:30:00+00:00", "Europe/Paris", "2026-12-01"),  # already tomorrow
        ("2026-12-01T03:00:00+00:00", "America/Chicago", "2026-11-30"),  # still yesterday
        ("2026-12-01T14:59:59+00:00", "Asia/Tokyo", "2026-12-01"),
        ("2026-12-01T15:00:00+00:00", "Asia/Tokyo", "2026-12-02"),
    ],
)
def test_cronofys_today_is_the_date_in_the_query_zone(moment, tzid, day):
    assert w.server_date(dt.datetime.fromisoformat(moment), tzid).isoformat() == day


def test_today_near_midnight_moves_every_edge_together():
    """Just before and after midnight in the zone, the far edge moves by exactly a day."""
    s = settings(tzid="Europe/Paris")
    before = w.server_date(dt.datetime.fromisoformat("2026-11-30T22:59:59+00:00"), s.tzid)
    after = w.server_date(dt.datetime.fromisoformat("2026-11-30T23:00:00+00:00"), s.tzid)
    assert (after - before).days == 1
    assert w.window(s, after)[1] == w.window(s, before)[1].add(days=1)
    assert w.bounds(s, after).upper == "2027-06-19T22:00:00Z"  # midnight in Paris


def test_the_fingerprint_is_stable_across_releases():
    """Saved in every account's state: if its value changed, an upgrade would re-read every
    account's whole window once. These values were saved by earlier releases (0.2: one
    hash, still taken as the same scope)."""
    assert w.scope_fingerprint(settings()) == (
        "calendar_ids=4f53cda1,include_managed=b5bea41b,localized_times=fcbcf165,"
        "start_date=74234e98,end_date=74234e98,tzid=b1260a15"
    )
    for s in (settings(), settings(calendar_ids=["b", "a"], start_date="2026-11-01")):
        legacy = {"replication_key_value": BOOKMARK, w.HORIZON: "2027-06-19"}
        legacy[w.SCOPE] = w.legacy_scope_fingerprint(s)
        assert w.needs_full_read(legacy, s) is None
        assert w.needs_full_read(legacy, settings(tzid="Asia/Tokyo")) is not None
    assert w.legacy_scope_fingerprint(settings()) == "e1cab9c2622d137e"
    assert (
        w.legacy_scope_fingerprint(
            settings(calendar_ids=["b", "a"], start_date="2026-11-01", tzid="Europe/Paris")
        )
        == "8328810d60db0b15"
    )


def test_different_end_dates_are_different_scopes():
    a = w.scope_fingerprint(settings(end_date="2027-01-01"))
    assert a != w.scope_fingerprint(settings(end_date="2027-02-01"))


def test_the_scope_change_reason_names_the_settings():
    state = {"replication_key_value": BOOKMARK, w.HORIZON: "2027-06-19", w.SCOPE: "0" * 16}
    assert w.needs_full_read(state, settings()) == (
        "the query scope changed (calendar_ids, include_managed, localized_times, "
        "start_date, end_date or tzid)"
    )
    state[w.SCOPE] = w.scope_fingerprint(settings())
    assert w.needs_full_read(state, settings(tzid="Asia/Tokyo")) == (
        "the query scope changed: tzid"
    )
    changed = settings(tzid="Asia/Tokyo", include_managed=False, calendar_ids=["cal_1"])
    assert w.needs_full_read(state, changed) == (
        "the query scope changed: calendar_ids, include_managed, tzid"
    )


def test_a_window_of_no_days_after_clamping_is_not_read():
    """start_date at the far edge: from == to would be refused by Cronofy."""
    s = settings(start_date="2027-06-20", end_date="2027-07-01")
    assert w.window(s, TODAY) == (pendulum.Date(2027, 6, 20), pendulum.Date(2027, 6, 20))
    assert w.full_read(s, TODAY, reason="first sync") is None


def test_a_periodic_reread_not_yet_due_leaves_the_slice():
    s = settings(full_resync_days=7)
    due = [d for d in range(7) if w.resync_due("2026-11-30", "acc_1", TODAY.add(days=d), 7)]
    quiet_day = TODAY.add(days=next(d for d in range(1, 7) if d not in due))
    state = state_after(s, horizon="2027-06-17", full_read=TODAY.isoformat())
    first = w.first_read(state, s, None, NOW)
    extra = w.follow_up(state, s, "acc_1", quiet_day, first)
    assert extra is not None and extra.kind == "horizon"


def test_each_accounts_reread_day_is_stable_across_releases():
    """Changing the slot moves every account's re-read day once: keep it."""
    due = [d for d in range(7) if w.resync_due("2026-11-30", "acc_1", TODAY.add(days=d), 7)]
    assert due == [5]


def test_times_are_utc_whatever_the_hosts_zone(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        read = w.incremental_read(settings(lookback_seconds=0), "2026-11-30T11:00:00+01:00")
        assert read.params["last_modified"] == "2026-11-30T10:00:00Z"
        assert w.bounds(settings(), TODAY).upper == "2027-06-20T00:00:00Z"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# Which accounts first, when a budget cuts the run short


def test_the_stalest_accounts_come_first_never_synced_before_all():
    states = {
        "acc_a": {"replication_key_value": "2026-12-01T10:00:00Z"},
        "acc_b": {"replication_key_value": "2026-12-01T08:00:00Z"},
        "acc_d": {},  # a state without a bookmark: never synced
    }
    ids = ["acc_a", "acc_b", "acc_c", "acc_d", "acc_e"]
    assert w.stalest_first(ids, states) == ["acc_c", "acc_d", "acc_e", "acc_b", "acc_a"]


def test_accounts_equally_stale_keep_their_order():
    same = {"replication_key_value": "2026-12-01T10:00:00Z"}
    states = {"acc_z": same, "acc_a": same, "acc_m": same}
    assert w.stalest_first(["acc_z", "acc_a", "acc_m"], states) == ["acc_z", "acc_a", "acc_m"]


# When calendars are read, and what is emitted


ACC = "acc_1"  # its calendar_slot is pinned below


def due(state, hour: int = 12, gap: float = 1.0, seen=(), today=TODAY):
    return w.calendars_due(state, ACC, today, hour, gap, seen)


def test_each_accounts_calendar_hour_is_stable_and_never_midnight():
    assert w.calendar_slot(ACC) == 15
    slots = {w.calendar_slot(f"acc_{n}") for n in range(2000)}
    assert slots == set(range(1, 24)), "spread over every hour but midnight"


def test_calendars_are_read_first_then_once_a_day_from_the_accounts_hour():
    assert due(None) == "first read"
    assert due({}) == "first read"
    yesterday = {w.READ_ON: TODAY.subtract(days=1).isoformat(), w.CALENDARS: {"cal_1": "f"}}
    assert due(yesterday, hour=14) is None, "before the account's hour (15)"
    assert due(yesterday, hour=15) == "daily re-read"
    assert due(yesterday, hour=23) == "daily re-read"
    read_today = {w.READ_ON: TODAY.isoformat(), w.CALENDARS: {"cal_1": "f"}}
    assert due(read_today, hour=23, gap=24) is None, "once a day"
    tomorrow = {w.READ_ON: TODAY.add(days=1).isoformat(), w.CALENDARS: {}}
    assert due(tomorrow, hour=23) is None, "a clock behind is not a new day"


def test_the_days_last_run_reads_calendars_whose_hour_it_would_miss():
    yesterday = {w.READ_ON: TODAY.subtract(days=1).isoformat(), w.CALENDARS: {}}
    assert due(yesterday, hour=2, gap=24) == "daily re-read (no later run expected today)"
    assert due(yesterday, hour=12, gap=12) == "daily re-read (no later run expected today)"
    assert due(yesterday, hour=12, gap=11.9) is None, "a run at 23:54 comes before 24:00"


def test_a_calendar_free_busy_met_but_never_read_makes_them_due_at_once():
    state = {w.READ_ON: TODAY.isoformat(), w.CALENDARS: {"cal_1": "f1"}}
    assert due(state, seen=["cal_1", "cal_9", "cal_8"]) == (
        "free_busy read periods of 2 calendar(s) not read before"
    )
    assert due(state, seen=["cal_1"]) is None


def test_the_gap_between_runs_is_hours_since_the_previous_one():
    now = dt.datetime(2026, 12, 1, 12, 30, tzinfo=dt.timezone.utc)
    assert w.run_gap_hours(None, now) == 24.0
    assert w.run_gap_hours("2026-12-01T11:00:00Z", now) == 1.5
    assert w.run_gap_hours("2026-12-01T13:00:00Z", now) == 0.0, "never negative"


def test_only_new_or_changed_calendars_are_emitted_and_gone_ones_are_marked_deleted():
    state = {w.READ_ON: "2026-11-30", w.CALENDARS: {"cal_1": "f1", "cal_2": "f2", "gone": "f"}}
    state = {**state, w.FULL_LISTING: "2026-11-01T08:00:00Z"}
    emit, removed, new = w.calendar_changes(
        state, TODAY, {"cal_1": "f1", "cal_2": "F2", "cal_3": "f3"}, "2026-12-01T09:00:00Z"
    )
    assert emit == ["cal_2", "cal_3"] and removed == ["gone"]
    assert new == {
        w.READ_ON: TODAY.isoformat(),
        w.CALENDARS: {"cal_1": "f1", "cal_2": "F2", "cal_3": "f3"},
        w.FULL_LISTING: "2026-11-01T08:00:00Z",
    }, "the full listing's time carries over"


def test_a_first_read_emits_every_calendar_and_is_a_full_listing():
    at = "2026-12-01T09:00:00Z"
    emit, removed, new = w.calendar_changes(None, TODAY, {"cal_1": "f1", "cal_2": "f2"}, at)
    assert emit == ["cal_1", "cal_2"] and removed == []
    assert new[w.CALENDARS] == {"cal_1": "f1", "cal_2": "f2"} and new[w.FULL_LISTING] == at
    again = w.calendar_changes({w.READ_ON: "2026-11-30"}, TODAY, {"cal_1": "f1"}, at)
    assert again[0] == ["cal_1"] and again[2][w.FULL_LISTING] == at, "no calendars known"


def test_a_calendar_free_busy_reports_but_the_listing_lacks_is_remembered_as_unlisted():
    at = "2026-12-01T09:00:00Z"
    _, _, state = w.calendar_changes(None, TODAY, {"cal_1": "f1"}, at, seen={"cal_1", "cal_x"})
    assert state[w.UNLISTED] == ["cal_x"]
    assert w.calendars_due(state, "acc_1", TODAY, 0, 1.0, {"cal_1", "cal_x"}) is None
    assert w.calendars_due(state, "acc_1", TODAY, 0, 1.0, {"cal_y"}) is not None, "a new one"
    _, _, later = w.calendar_changes(state, TODAY, {"cal_1": "f1", "cal_x": "fx"}, at)
    assert w.UNLISTED not in later, "listed now: no longer unlisted"
