"""free_busy records from Cronofy periods: exact types, UTC times, stable keys."""

from __future__ import annotations

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


def test_a_localized_all_day_period_is_midnight_in_its_own_zone():
    r = record(
        {
            "calendar_id": "c",
            "event_uid": "e",
            "start": {"time": "2026-12-24", "tzid": "America/Chicago"},
            "end": {"time": "2026-12-25", "tzid": "America/Chicago"},
        }
    )
    assert r["all_day"] is True and r["start_time"] == "2026-12-24T06:00:00Z"


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
