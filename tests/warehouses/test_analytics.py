"""dbt on the end-to-end warehouse: the busy-time union checked against an independent
computation from the simulator's calendars, the funnel, freshness, and the demo's chart."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

import duckdb

from demo import chart
from harness.project import meltano, meltano_env
from harness.tap import expected_first_sync, own_meltano_dir

BUSY = {"busy", "tentative"}


def book(sim, account_id: str, start: dt.datetime, minutes: int, status: str = "busy") -> None:
    sim.create_event(
        account_id,
        start=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        end=(start + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        status=status,
    )


def week_pieces(start: dt.datetime, end: dt.datetime, zone: ZoneInfo):
    """(Monday in ``zone``, hours) of each part of [start, end) inside one local week,
    quarter-hour by quarter-hour of UTC: a brute-force cut, DST included. (Every zone's
    offset is a whole number of quarter hours: St John's -3:30, Lord Howe +10:30, Nepal
    +5:45; stepping whole hours put the half hour after St John's local midnight in the
    week before, which dbt on PostgreSQL found.)"""
    hours: dict[dt.date, float] = defaultdict(float)
    moment = start
    while moment < end:
        quarter = moment.replace(minute=moment.minute - moment.minute % 15, second=0)
        step = min(end, quarter + dt.timedelta(minutes=15))
        local = moment.astimezone(zone).date()
        hours[local - dt.timedelta(days=local.weekday())] += (step - moment).total_seconds() / 3600
        moment = step
    return hours.items()


def add_weeks(
    weeks: dict[tuple[str, dt.date], list[float]],
    account_id: str,
    spans: list[tuple[dt.datetime, dt.datetime]],
    zone: ZoneInfo,
) -> None:
    """Into ``weeks[(account, Monday)]``: [union hours (overlaps merged), summed hours] of an
    account's busy spans, each cut at its local week boundaries."""
    for start, end in spans:
        for week, hours in week_pieces(start, end, zone):
            weeks[(account_id, week)][1] += hours
    merged: list[list[dt.datetime]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in merged:
        for week, hours in week_pieces(start, end, zone):
            weeks[(account_id, week)][0] += hours


def expected_weeks(sim) -> dict[tuple[str, dt.date], tuple[float, float]]:
    """(account, ISO week in the account's zone) -> (union hours, summed hours), computed
    here in Python from the periods a full sync loads."""
    events = {}
    for account in sim.accounts.values():
        for event in sim.events_of(account.account_id):
            events[(account.account_id, event.calendar_id, event.event_uid)] = event
    periods = defaultdict(list)
    for key in expected_first_sync(sim):
        event = events[key]
        if not event.all_day and event.status in BUSY:
            start, end = event.bounds(ZoneInfo("UTC"))
            periods[key[0]].append((start, end))
    weeks: dict[tuple[str, dt.date], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for account_id, spans in periods.items():
        add_weeks(weeks, account_id, spans, ZoneInfo(sim.accounts[account_id].zoneinfo))
    return {k: (round(v[0], 4), round(v[1], 4)) for k, v in weeks.items()}


def an_empty_week(sim, account_id: str) -> dt.date:
    """The Monday (in the account's zone) of a week well inside Cronofy's window in which
    none of the account's periods starts."""
    zone = ZoneInfo(sim.accounts[account_id].zoneinfo)
    starts = set()
    for event in sim.events_of(account_id):
        local = event.bounds(zone)[0].astimezone(zone).date()
        starts.add(local - dt.timedelta(days=local.weekday()))
    today = sim.now_dt().astimezone(zone).date()
    monday = today - dt.timedelta(days=today.weekday())
    for weeks in range(2, 25):
        candidate = monday + dt.timedelta(weeks=weeks)
        if candidate not in starts:
            return candidate
    raise AssertionError("the simulator's calendars left no empty week")


def test_dbt_busy_hours_count_overlaps_once_and_match_the_calendars(sim, tmp_path):
    first = sorted(sim.accounts)[0]
    nine = sim.now_dt().replace(hour=9, minute=0, second=0, microsecond=0) + dt.timedelta(days=3)
    book(sim, first, nine, 60)  # 09:00-10:00
    book(sim, first, nine + dt.timedelta(minutes=30), 60, "tentative")  # 09:30-10:30
    book(sim, first, nine + dt.timedelta(minutes=45), 15)  # inside both
    # Sunday 23:00-01:00 local, and 00:30-01:00 inside it on Monday: each week gets the
    # busy time inside it, so the block's second hour and the whole 30 minutes are Monday's.
    monday = an_empty_week(sim, first)
    zone = ZoneInfo(sim.accounts[first].zoneinfo)
    midnight = dt.datetime.combine(monday, dt.time(), zone).astimezone(dt.timezone.utc)
    book(sim, first, midnight - dt.timedelta(hours=1), 120)
    book(sim, first, midnight + dt.timedelta(minutes=30), 30)
    warehouse = tmp_path / "warehouse.duckdb"
    settings = dict(sim.tap_config(sim.url), max_retry_wait_seconds=1)
    env = meltano_env(
        settings,
        MELTANO_DATABASE_URI=f"sqlite:///{tmp_path / 'meltano.db'}",
        TARGET_DUCKDB_FILEPATH=str(warehouse),
        DBT_DUCKDB_PATH=str(warehouse),
        **own_meltano_dir(tmp_path),
    )
    meltano("run", "tap-cronofy", "target-duckdb", env=env)
    build = meltano("invoke", "dbt-duckdb:build", env=env)
    assert "ERROR=0" in build.stdout and "PASS=" in build.stdout, build.stdout[-2000:]
    assert meltano("invoke", "dbt-duckdb:freshness", env=env).returncode == 0

    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select account_id, week_start, busy_hours, booked_hours "
            "from analytics.busy_hours_weekly"
        ).fetchall()
        funnel = dict(
            con.execute(
                "select slot_selection, requests from analytics.scheduling_requests_funnel"
            ).fetchall()
        )
    loaded = {
        (a, w): (round(busy, 4), round(booked, 4)) for a, w, busy, booked in rows if busy or booked
    }
    expected = expected_weeks(sim)
    assert loaded == expected
    week = nine.date() - dt.timedelta(days=nine.date().weekday())
    busy, booked = expected[(first, week)]
    assert round(booked - busy, 4) >= 0.75, "2.25 h booked within 1.5 h: overlaps count once"
    assert loaded[(first, monday)] == (1.0, 1.5), "blocks are cut at the local week's start"
    selections = defaultdict(int)
    for request in sim.scheduling.values():
        selections[request["slot_selection"]] += 1
    assert funnel == dict(selections)

    days, series = chart.weekly(warehouse)
    assert series and set(series) <= {a.name for a in sim.accounts.values()}
    assert series[sim.accounts[first].name][days.index(week)] == busy
    text = chart.terminal(days, series)
    assert all(name in text for name in series)
    assert chart.weeks_label(days) in text and f"{days[0]:%Y}" in text, "which weeks, which year"
    picture = chart.png(days, series, tmp_path / "busy.png")
    assert picture.stat().st_size > 5000 and picture.read_bytes()[:4] == b"\x89PNG"


def test_the_terminal_chart_aligns_wide_names():
    """A CJK name takes two columns a character: rows stay aligned."""
    days = [dt.date(2026, 11, 30), dt.date(2026, 12, 7)]
    text = chart.terminal(days, {"田中 太郎": [1.0, 2.0], "Ann": [3.0, 0.0]})
    rows = text.splitlines()[1:]  # the header of dates, then one row per name
    assert len({chart.columns(row) for row in rows}) == 1, text
    assert chart.columns("田中") == 4 and chart.columns(chart.pad("田中", 6)) == 6
    assert chart.weeks_label(days) == "2 ISO weeks starting Monday 30 Nov 2026 to 07 Dec 2026"
