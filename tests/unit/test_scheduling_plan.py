"""scheduling_plan.py: which tracked scheduling requests a run queries, against brute force
over random hours, cycles and status histories."""

from __future__ import annotations

import datetime as dt
import itertools
import zlib

from hypothesis import given
from hypothesis import strategies as st

from tap_cronofy.scheduling_plan import (
    EPOCH,
    GONE,
    OPEN,
    SETTLED,
    Tracked,
    after_query,
    decode,
    encode,
    hour_of,
    is_due,
    period_hours,
    plan,
    tier_of,
)

NOW = dt.datetime(2026, 12, 8, 12, tzinfo=dt.timezone.utc)


def at(hours: float) -> str:
    return (NOW + dt.timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def test_tiers_as_the_manual_names_them():
    event = lambda hours: {"end": {"time": at(hours), "tzid": "Europe/London"}}  # noqa: E731
    cases = [
        ({"slot_selection": "pending"}, OPEN),
        ({"slot_selection": "pending_rescheduling", "event": event(-5)}, OPEN),
        ({"slot_selection": "complete", "event": event(2)}, OPEN),
        ({"slot_selection": "complete", "event": event(-0.01)}, SETTLED),
        ({"slot_selection": "complete", "event": {"end": {"time": "soon"}}}, OPEN),
        ({"slot_selection": "complete", "event": {"end": {"time": "2026-12-01T10:00:00"}}}, OPEN),
        ({"slot_selection": "complete"}, OPEN),
        ({"slot_selection": "expired"}, SETTLED),
        ({"slot_selection": "cancelled"}, SETTLED),
        ({"slot_selection": "something_new"}, OPEN),
    ]
    assert [tier_of(request, NOW) for request, _ in cases] == [tier for _, tier in cases]


trackeds = st.builds(
    Tracked,
    fingerprint=st.sampled_from(["", "0123456789abcdef"]),
    tier=st.sampled_from([OPEN, SETTLED, GONE]),
    read_at=st.one_of(st.none(), st.integers(0, 200_000)),
    misses=st.integers(0, 12),
).map(lambda t: t if t.tier == GONE else Tracked(t.fingerprint, t.tier, t.read_at, 0))
ids = st.from_regex(r"srq_[0-9a-f]{24}", fullmatch=True)


@given(ids, trackeds)
def test_an_entry_is_written_and_read_back_unchanged(request_id, tracked):
    if tracked.tier == GONE and tracked.misses == 0:
        tracked = Tracked(tracked.fingerprint, GONE, tracked.read_at, 1)
    assert decode(encode(request_id, tracked)) == (request_id, tracked)


def test_an_earlier_releases_entry_is_open_and_due():
    request_id, tracked = decode("srq_0123:89abcdef01234567")
    assert (request_id, tracked) == ("srq_0123", Tracked("89abcdef01234567"))
    assert is_due(request_id, tracked, 10, 24)


@given(ids, trackeds, st.integers(0, 24 * 40), st.integers(1, 72))
def test_due_exactly_when_its_own_hour_came_since_its_last_query(request_id, tracked, gap, cycle):
    """Brute force: step through every hour since the last query and look for the id's own
    hour of its period."""
    now_hour = (tracked.read_at or 0) + gap
    period = period_hours(tracked, cycle)
    if period == 0 or tracked.read_at is None:
        expected = True
    else:
        offset = zlib.crc32(request_id.encode()) % period
        expected = any(hour % period == offset for hour in range(tracked.read_at + 1, now_hour + 1))
    assert is_due(request_id, tracked, now_hour, cycle) is expected


def test_settled_ids_spread_evenly_over_the_cycles_runs():
    population = [f"srq_{n:024x}" for n in range(2400)]
    tracked = {i: Tracked("f", SETTLED, 1000) for i in population}
    per_run = []
    for hour in range(1001, 1025):
        due = plan(population, tracked, hour, 24)
        per_run.append(len(due))
        for request_id in due:
            tracked[request_id] = Tracked("f", SETTLED, hour)
    assert sum(per_run) == len(population), "each exactly once a cycle"
    assert max(per_run) <= 1.5 * len(population) / 24, per_run


def test_the_stalest_come_first_and_never_queried_before_all():
    tracked = {"a": Tracked("f", OPEN, 50), "b": Tracked("f", OPEN, 10), "c": Tracked()}
    assert plan(["a", "b", "c", "d"], tracked, 60, 24) == ["c", "d", "b", "a"]


def test_an_id_not_found_is_asked_less_and_less_often():
    tracked, asked = None, []
    for hour in range(24 * 70):
        if is_due("srq_gone", tracked, hour, 24):
            asked.append(hour)
            tracked = after_query(tracked, None, "", EPOCH + dt.timedelta(hours=hour))
    gaps = [b - a for a, b in itertools.pairwise(asked)]
    assert gaps == sorted(gaps) and gaps[-1] > 24 * 8, gaps
    assert all(g <= 24 * 2**5 for g in gaps)


statuses = st.sampled_from(["pending", "pending_rescheduling", "complete", "expired", "cancelled"])


@given(
    st.integers(2, 8),
    st.sampled_from([6, 12, 24]),
    st.lists(
        st.tuples(st.integers(0, 96), st.integers(0, 7), st.one_of(statuses, st.none())),
        max_size=40,
    ),
    st.lists(st.integers(-30, 120), min_size=8, max_size=8),
)
def test_the_warehouse_holds_cronofys_status_within_each_tiers_promise(
    count, cycle, history, meeting_hours
):
    """Random histories (booked, rescheduled, cancelled, expired, reopened, ids vanishing
    and back) over four days of hourly runs: after every run, each id's loaded status is
    Cronofy's, except a settled or vanished one changed less than its period ago."""
    request_ids = [f"srq_{n:024x}" for n in range(count)]
    start = hour_of(NOW)
    truth: dict[str, dict | None] = {i: {"slot_selection": "pending"} for i in request_ids}
    changed_at = dict.fromkeys(request_ids, start)
    loaded: dict[str, dict | None] = {}
    tracked: dict[str, Tracked] = {}
    for hour in range(start, start + 97):
        for when, index, status in history:
            if start + when == hour and index < count:
                request_id = request_ids[index]
                truth[request_id] = (
                    None
                    if status is None
                    else {
                        "slot_selection": status,
                        "event": {"end": {"time": at(meeting_hours[index])}},
                    }
                )
                changed_at[request_id] = hour
        now = EPOCH + dt.timedelta(hours=hour, minutes=5)
        for request_id in plan(request_ids, tracked, hour, cycle):
            found = truth[request_id]
            tracked[request_id] = after_query(tracked.get(request_id), found, "f", now)
            if found is not None:
                loaded[request_id] = found
        for request_id in request_ids:
            if truth[request_id] is None or loaded.get(request_id) == truth[request_id]:
                continue
            known = tracked[request_id]
            assert known.tier in (SETTLED, GONE), (request_id, known, hour)
            # the manual's promise: settled, within the cycle; gone, after 1, 2, 4 ... 32
            promise = cycle if known.tier == SETTLED else cycle * 2 ** min(known.misses - 1, 5)
            assert hour - changed_at[request_id] < promise, (request_id, known, hour)


def test_the_back_off_of_an_id_not_found_doubles_from_one_cycle_to_thirty_two():
    periods = [period_hours(Tracked("", GONE, 0, misses), 24) for misses in range(1, 9)]
    assert periods == [24, 48, 96, 192, 384, 768, 768, 768]
    assert period_hours(Tracked("", SETTLED, 0), 24) == 24
    assert period_hours(Tracked("", OPEN, 0), 24) == 0 == period_hours(Tracked("", SETTLED), 24)


def test_what_a_query_leaves_behind():
    at_noon = NOW
    first = after_query(None, None, "", at_noon)
    assert first == Tracked("", GONE, hour_of(at_noon), 1), "a first miss"
    known = Tracked("abcd", SETTLED, 5)
    again = after_query(known, None, "", at_noon)
    assert again == Tracked("abcd", GONE, hour_of(at_noon), 1), "its last version's fingerprint"
    assert after_query(again, None, "", at_noon).misses == 2
    found = after_query(again, {"slot_selection": "pending"}, "ef01", at_noon)
    assert found == Tracked("ef01", OPEN, hour_of(at_noon), 0)
    assert decode("srq_1:ab:g:7") == ("srq_1", Tracked("ab", GONE, 7, 1))
    assert plan(["a", "b"], {"a": Tracked("f", OPEN, 0)}, 10, 24) == ["b", "a"]
