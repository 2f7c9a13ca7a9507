"""free_busy records from Cronofy periods: exact types, UTC times, stable keys."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest

from tap_cronofy.streams.free_busy import make_record

WATERMARK = "2026-12-01T10:00:00Z"


def record(period: dict, zone: str = "Etc/UTC") -> dict:
    return make_record(period, "acc_1", WATERMARK, zone)


def test_a_timed_utc_period():
    r = record(
        {
            "calendar_id": "cal_1",
            "event_uid": "evt_1",
            "start": "2026-12-02T09:00:00Z",
            "end": "2026-12-02T10:30:00Z",
            "free_busy_status": "busy",
        }
    )
    assert r == {
        "account_id": "acc_1",
        "calendar_id": "cal_1",
        "event_uid": "evt_1",
        "event_id": None,
        "start": "2026-12-02T09:00:00Z",
        "end": "2026-12-02T10:30:00Z",
        "start_tzid": None,
        "end_tzid": None,
        "start_time": "2026-12-02T09:00:00Z",
        "end_time": "2026-12-02T10:30:00Z",
        "all_day": False,
        "start_date": None,
        "end_date": None,
        "free_busy_status": "busy",
        "deleted": False,
        "last_modified": WATERMARK,
        "_sdc_deleted_at": None,
    }


def test_an_all_day_period_starts_at_midnight_in_the_query_zone():
    r = record(
        {"calendar_id": "c", "event_uid": "e", "start": "2026-12-24", "end": "2026-12-26"},
        zone="Asia/Tokyo",
    )
    assert r["all_day"] is True
    assert (r["start_time"], r["end_time"]) == ("2026-12-23T15:00:00Z", "2026-12-25T15:00:00Z")
    assert (r["start_date"], r["end_date"]) == ("2026-12-24", "2026-12-26"), "typed dates"


def test_localized_times_keep_their_zone_and_give_utc():
    r = record(
        {
            "calendar_id": "c",
            "event_uid": "e",
            "start": {"time": "2026-12-02T09:00:00+01:00", "tzid": "Europe/Paris"},
            "end": {"time": "2026-12-02T10:00:00+01:00", "tzid": "Europe/Paris"},
        }
    )
    assert (r["start"], r["start_tzid"], r["end_tzid"]) == (
        "2026-12-02T09:00:00+01:00",
        "Europe/Paris",
        "Europe/Paris",
    )
    assert (r["start_time"], r["end_time"]) == ("2026-12-02T08:00:00Z", "2026-12-02T09:00:00Z")
    assert r["all_day"] is False


def test_a_localized_all_day_period_is_midnight_in_the_query_zone_not_its_own():
    r = record(
        {
            "calendar_id": "c",
            "event_uid": "e",
            "start": {"time": "2026-12-24", "tzid": "America/Chicago"},
            "end": {"time": "2026-12-25", "tzid": "America/Chicago"},
        },
        zone="Asia/Tokyo",
    )
    assert r["all_day"] is True and r["start_time"] == "2026-12-23T15:00:00Z"
    assert r["start_tzid"] == "America/Chicago", "its own zone is kept beside it"


def test_a_deletion_is_stamped_with_the_watermark():
    r = record(
        {
            "calendar_id": "c",
            "event_uid": "e",
            "start": "2026-12-24",
            "end": "2026-12-25",
            "deleted": True,
            "event_id": "app-1",
        }
    )
    assert r["deleted"] is True and r["_sdc_deleted_at"] == WATERMARK
    assert r["event_id"] == "app-1"


def test_without_an_event_uid_the_key_is_stable_and_distinct():
    period = {"calendar_id": "c", "start": "2026-12-02T09:00:00Z", "end": "2026-12-02T10:00:00Z"}
    first, again = record(period)["event_uid"], record(dict(period))["event_uid"]
    other = record({**period, "end": "2026-12-02T11:00:00Z"})["event_uid"]
    assert first == again and first != other
    assert first.startswith("period_") and len(first) == len("period_") + 20


@pytest.mark.parametrize("missing", ["start", "end"])
def test_a_period_without_a_boundary_has_no_time(missing):
    period = {
        "calendar_id": "c",
        "event_uid": "e",
        "start": "2026-12-02T09:00:00Z",
        "end": "2026-12-02T10:00:00Z",
    }
    del period[missing]
    assert record(period)[f"{missing}_time"] is None


# Answers that cannot be read: an error naming the period, never a record against its schema

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from jsonschema import Draft202012Validator, FormatChecker  # noqa: E402

from tap_cronofy.schemas import FREE_BUSY  # noqa: E402
from tap_cronofy.streams.free_busy import UNREADABLE  # noqa: E402

VALIDATOR = Draft202012Validator(FREE_BUSY, format_checker=FormatChecker())
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
BAD_TIMES = st.sampled_from(
    [
        "2026-13-45T25:61:00Z",
        "2026-02-30",
        "2026-12-02 09:00:00",
        "2026-12-02T09:00:00",
        "",
        "Z" * 20,
    ]
)
FIELDS = ["calendar_id", "event_uid", "event_id", "start", "end", "free_busy_status", "deleted"]


def good_period(all_day: bool, localized: bool) -> dict:
    start, end = (
        ("2026-12-24", "2026-12-26")
        if all_day
        else ("2026-12-02T09:00:00Z", "2026-12-02T10:00:00Z")
    )
    period: dict = {"calendar_id": "cal_1", "event_uid": "evt_1", "free_busy_status": "busy"}
    for name, value in (("start", start), ("end", end)):
        period[name] = {"time": value, "tzid": "America/Coyhaique"} if localized else value
    return period


@given(
    all_day=st.booleans(),
    localized=st.booleans(),
    field=st.sampled_from([*FIELDS, "start.time", "start.tzid", "end.time"]),
    value=JSON | BAD_TIMES,
)
def test_a_corrupted_period_raises_a_readable_error_or_gives_a_valid_record(
    all_day, localized, field, value
):
    period = good_period(all_day, localized)
    name, _, inner = field.partition(".")
    if inner:
        if not isinstance(period[name], dict):
            period[name] = {"time": period[name]}
        period[name][inner] = value
    else:
        period[name] = value
    try:
        made = record(period, zone="Europe/Paris")
    except UNREADABLE:
        return
    errors = [e.message for e in VALIDATOR.iter_errors(made)]
    assert not errors, (period, made, errors)


@pytest.mark.parametrize(
    "start",
    ["2026-13-45T25:61:00Z", "2026-02-30", {"time": "2026-12-24", "tzid": 7}, {"time": 5}],
)
def test_an_unreadable_time_or_zone_raises(start):
    with pytest.raises(UNREADABLE):
        record({"calendar_id": "c", "event_uid": "e", "start": start, "end": "2026-12-26"})


def test_a_zone_newer_than_the_host_comes_from_tzdata():
    r = record(
        {"calendar_id": "c", "event_uid": "e", "start": "2026-12-24", "end": "2026-12-25"},
        zone="America/Coyhaique",
    )
    assert r["start_time"] == "2026-12-24T03:00:00Z"  # UTC-3 all year since 2025b


# Cronofy's window is by the query tzid: no all-day period inside it is ever tombstoned

from tap_cronofy.settings import Settings  # noqa: E402
from tap_cronofy.window import DAYS_AHEAD, DAYS_BACK, bounds  # noqa: E402
from tap_cronofy.zones import names  # noqa: E402

# Every zone, and most often the farthest apart (26 hours: an edge day lies wholly outside).
EXTREMES = ["Pacific/Kiritimati", "Etc/GMT-14", "Pacific/Pago_Pago", "Etc/GMT+12", "Etc/UTC"]
ZONES = st.sampled_from(EXTREMES) | st.sampled_from(sorted(names()))


@given(
    query_zone=ZONES,
    own_zone=ZONES,
    today=st.dates(min_value=dt.date(2024, 1, 1), max_value=dt.date(2030, 12, 31)),
    first=st.sampled_from([-DAYS_BACK, DAYS_AHEAD - 1]) | st.integers(-DAYS_BACK, DAYS_AHEAD - 1),
    days=st.integers(1, 5),
)
def test_an_all_day_period_inside_cronofys_window_is_kept_in_any_zone(
    query_zone, own_zone, today, first, days
):
    """Brute force: Cronofy's window is the days from today - 42 to today + 201 in the
    query zone; an all-day period (in any own zone) on any of those days is kept live."""
    settings = Settings.from_config({"tzid": query_zone, "localized_times": True})
    window_ = bounds(settings, pendulum.Date(today.year, today.month, today.day))
    start = today + dt.timedelta(days=first)
    end = start + dt.timedelta(days=days)
    made = record(
        {
            "calendar_id": "c",
            "event_uid": "e",
            "start": {"time": start.isoformat(), "tzid": own_zone},
            "end": {"time": end.isoformat(), "tzid": own_zone},
        },
        zone=query_zone,
    )
    assert window_.keeps(made["start_time"], made["end_time"]), (made, window_)
