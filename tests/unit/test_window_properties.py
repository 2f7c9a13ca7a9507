"""The read planner against brute force, over random days, zones, settings and periods.

Each reference below is written from Cronofy's documents and the README's promises, not
from window.py: days are enumerated one by one, midnights computed with pendulum (window.py
uses zoneinfo), and the requests Cronofy would answer are worked out from its defaults."""

from __future__ import annotations

import datetime as dt

import pendulum
from hypothesis import assume, given
from hypothesis import strategies as st

from tap_cronofy import window as w
from tap_cronofy.settings import Settings

ZONES = [
    "Etc/UTC",
    "Asia/Tokyo",
    "Pacific/Kiritimati",  # UTC+14: its today is tomorrow in most of the world
    "Pacific/Pago_Pago",  # UTC-11
    "America/St_Johns",  # a half-hour offset, DST
    "Europe/London",
    "America/New_York",
    "Australia/Lord_Howe",  # a half-hour DST shift
    "Asia/Kathmandu",  # +05:45
]

moments = st.datetimes(min_value=dt.datetime(2021, 1, 1), max_value=dt.datetime(2034, 12, 31)).map(
    lambda moment: moment.replace(tzinfo=dt.timezone.utc)
)


@st.composite
def configs(draw) -> tuple[Settings, dt.datetime]:
    """Settings (dates near Cronofy's edges or anywhere) and Cronofy's now."""
    now = draw(moments)
    tzid = draw(st.sampled_from(ZONES))
    today = pendulum.instance(now).in_timezone(tzid).date()
    config: dict = {
        "access_token": "token-1234",
        "tzid": tzid,
        "include_managed": draw(st.booleans()),
    }
    near = st.integers(-50, 210).map(lambda days: today.add(days=days))
    anywhere = st.dates(dt.date(2020, 1, 1), dt.date(2036, 1, 1))
    for name in ("start_date", "end_date"):
        if draw(st.booleans()):
            day = draw(st.one_of(near, anywhere))
            config[name] = day.isoformat()
    if "start_date" in config and draw(st.booleans()):  # windows of a few days, or none
        first = pendulum.Date.fromisoformat(config["start_date"])
        config["end_date"] = first.add(days=draw(st.integers(-3, 3))).isoformat()
    return Settings.from_config(config), now


def kept_days(settings: Settings, today: pendulum.Date) -> list[pendulum.Date]:
    """The days the tap keeps, one by one: Cronofy's default window (42 days back, 201
    ahead, the last excluded), cut to start_date (included) and end_date (excluded)."""
    days = []
    for offset in range(-42, 201):
        day = today.add(days=offset)
        if settings.start_date and day < settings.start_date:
            continue
        if settings.end_date and day >= settings.end_date:
            continue
        days.append(day)
    return days


def midnight(day: pendulum.Date, tzid: str) -> dt.datetime:
    return pendulum.datetime(day.year, day.month, day.day, tz=tzid).in_timezone("UTC")


def utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@st.composite
def periods(draw, settings: Settings, today: pendulum.Date) -> tuple[str, str, bool]:
    """A period as make_record gives it (UTC times): timed, all-day, multi-day or
    zero-length, often on or around an edge of the window; managed or not."""
    tzid = settings.tzid
    edges = [today.subtract(days=42), today.add(days=201)]
    edges += [d for d in (settings.start_date, settings.end_date) if d]
    day = draw(st.one_of(st.sampled_from(edges), st.integers(-400, 400).map(today.add)))
    day = day.add(days=draw(st.integers(-2, 2)))
    kind = draw(st.sampled_from(["timed", "all_day", "multi_day", "zero"]))
    if kind in ("all_day", "multi_day"):
        length = 1 if kind == "all_day" else draw(st.integers(2, 9))
        start = midnight(day, tzid)
        end = midnight(day.add(days=length), tzid)
    else:
        start = midnight(day, tzid) + dt.timedelta(minutes=draw(st.integers(-120, 120)))
        minutes = 0 if kind == "zero" else draw(st.integers(1, 60 * 30))
        end = start + dt.timedelta(minutes=minutes)
    return utc_text(start), utc_text(end), draw(st.booleans())


@given(data=st.data(), config=configs())
def test_a_period_is_kept_exactly_when_it_overlaps_a_kept_day_or_is_a_managed_one(data, config):
    settings, now = config
    today = w.server_date(now, settings.tzid)
    start, end, managed = data.draw(periods(settings, today))
    days = kept_days(settings, today)
    if managed and settings.include_managed and not (settings.start_date or settings.end_date):
        expected = True  # Cronofy returns managed events across all time then
    elif not days:
        expected = False
    else:
        lower, upper = (
            midnight(days[0], settings.tzid),
            midnight(days[-1].add(days=1), settings.tzid),
        )
        # overlapping [lower, upper): ends after lower (touching it is not enough), starts
        # before upper; a zero-length period strictly inside
        expected = start < utc_text(upper) and end > utc_text(lower)
    assert w.bounds(settings, today).keeps(start, end, managed) is expected


def cronofy_window(params: dict, today: pendulum.Date) -> tuple[pendulum.Date, pendulum.Date]:
    """The dates a Cronofy query covers: its from/to, else Cronofy's defaults."""
    lower = (
        pendulum.Date.fromisoformat(params["from"]) if "from" in params else today.subtract(days=42)
    )
    upper = pendulum.Date.fromisoformat(params["to"]) if "to" in params else today.add(days=201)
    return lower, upper


def refused(params: dict, today: pendulum.Date) -> bool:
    """Whether Cronofy would answer 422 when its today is ``today``."""
    lower, upper = cronofy_window(params, today)
    return lower < today.subtract(days=42) or upper > today.add(days=201) or lower >= upper


@given(config=configs(), state=st.sampled_from(["first", "scope changed"]))
def test_a_full_read_asks_for_exactly_the_kept_days_and_is_never_refused(config, state):
    settings, now = config
    today = w.server_date(now, settings.tzid)
    previous = (
        {}
        if state == "first"
        else {
            "replication_key_value": "2021-01-01T00:00:00Z",
            w.HORIZON: "2021-07-01",
            w.SCOPE: "0" * 16,
        }
    )
    read = w.first_read(previous, settings, today, utc_text(now))
    days = kept_days(settings, today)
    if not days:
        assert read.kind == "incremental"
        return
    assert read.kind == "full" and read.params["include_deleted"] == "true"
    lower, upper = cronofy_window(read.params, today)
    assert (lower, upper) == (days[0], days[-1].add(days=1))
    # Cronofy answers it today, and still tomorrow (a day turning mid-run) unless the only
    # day kept is the one that leaves Cronofy's window tomorrow
    assert not refused(read.params, today)
    leaving = days == [today.subtract(days=42)]
    assert leaving or not refused(read.params, today.add(days=1))
    state_after = w.completed(previous, settings, [read], today, utc_text(now))
    assert state_after[w.HORIZON] == upper.isoformat()


@given(config=configs(), gap=st.integers(0, 400), since_full=st.integers(0, 3))
def test_the_horizon_slice_and_the_previous_runs_leave_no_kept_day_unread(config, gap, since_full):
    """A run ``gap`` days after the last one: its reads and the earlier horizon together
    cover every kept day (none unread at the far edge), and no read is refused."""
    settings, now = config
    today = w.server_date(now, settings.tzid)
    previous_today = today.subtract(days=gap)
    first = w.first_read({}, settings, previous_today, utc_text(now))
    assume(first.kind == "full")
    before = w.completed({}, settings, [first], previous_today, "2021-01-01T00:00:00Z")
    before[w.FULL_READ] = today.subtract(days=since_full).isoformat()
    incremental = w.first_read(before, settings, None, utc_text(now))
    assert incremental.kind == "incremental"
    extra = w.follow_up(before, settings, "acc_1", today, incremental)
    read_up_to = pendulum.Date.fromisoformat(before[w.HORIZON])
    days = kept_days(settings, today)
    unread = [d for d in days if d >= read_up_to]
    if extra is None:
        assert unread == []
        return
    assert not refused(extra.params, today)
    lower, upper = cronofy_window(extra.params, today)
    assert all(lower <= d < upper for d in unread)
    after = w.completed(before, settings, [incremental, extra], today, utc_text(now))
    assert not days or after[w.HORIZON] == days[-1].add(days=1).isoformat()


@given(
    bookmark=moments,
    lookback=st.integers(0, 3600),
    notified=st.one_of(st.none(), moments, st.just("not a time")),
)
def test_an_incremental_read_starts_at_the_earliest_of_bookmark_and_notified_change(
    bookmark, lookback, notified
):
    settings = Settings.from_config({"access_token": "token-1234", "lookback_seconds": lookback})
    since = notified if isinstance(notified, str) or notified is None else utc_text(notified)
    read = w.incremental_read(settings, utc_text(bookmark), since)
    candidates = [bookmark.replace(microsecond=0) - dt.timedelta(seconds=lookback)]
    if isinstance(notified, dt.datetime):
        candidates.append(notified.replace(microsecond=0))
    assert read.params["last_modified"] == utc_text(min(candidates))
    assert "from" not in read.params and "to" not in read.params


@given(
    stored=st.one_of(st.none(), st.integers(1, 2**31)),
    current=st.integers(1, 2**31),
    position=st.integers(0, 50),
    pruned=st.integers(0, 50),
)
def test_a_change_log_the_state_has_not_seen_queries_the_account(stored, current, position, pruned):
    settings = Settings.from_config({"access_token": "token-1234"})
    state = {
        "replication_key_value": "2030-01-01T10:00:00Z",
        w.SCOPE: w.scope_fingerprint(settings),
        w.HORIZON: "2030-07-01",
        w.NOTIFIED: position,
    }
    if stored is not None:
        state[w.LOG] = stored
    now = dt.datetime(2030, 1, 1, 10, 30, tzinfo=dt.timezone.utc)
    reason = w.change_due(state, settings, [], pruned, "acc_1", now, current)
    if stored != current:
        assert reason is not None and "change log is not the one" in reason
    elif position < pruned:
        assert reason == "the change log was pruned past its position"
    else:
        assert reason is None or reason == "daily sweep"
