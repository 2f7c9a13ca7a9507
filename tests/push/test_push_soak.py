"""30 days in change-driven mode, two runs a day, into a real DuckDB through target-duckdb:
the simulator notifies the receiver of every change but the application's own (managed
events) and of none for time passing. After every run, each account's live rows equal what
Cronofy held when the tap last queried it; within 36 hours every account is queried; and at
the end the warehouse equals a fresh full sync, as the polling soak's does."""

from __future__ import annotations

import datetime as dt
import random

from harness.tap import account_states, run_tap
from tap_cronofy.window import calendar_slot
from tests.push.test_push import Push
from tests.state.test_soak import WINDOW_AHEAD, WINDOW_BACK, Pipeline, _utc, truth

DAYS = 30
HOUR = 3600
UTC = dt.timezone.utc


def ts(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def a_day_of_changes(push: Push, rng: random.Random, day: int) -> None:
    """Each account, by turns: edits of its own (notified: a new event, a move, a deletion,
    and a managed edit that rides along), or only edits of managed events (never notified:
    the daily sweep must find them)."""
    sim = push.sim
    today = sim.now_dt().replace(hour=0, minute=0, second=0, microsecond=0)
    for index, account_id in enumerate(push.ids):
        events = sorted(
            (e for e in sim.events_of(account_id) if not e.deleted and not e.all_day),
            key=lambda e: e.event_uid,
        )
        managed = [e for e in events if e.managed]
        own = [e for e in events if not e.managed]
        if (day + index) % 3:
            begin = today + dt.timedelta(days=rng.randint(-5, 230), hours=rng.randint(7, 18))
            sim.create_event(
                account_id,
                start=ts(begin),
                end=ts(begin + dt.timedelta(minutes=45)),
                status=rng.choice(["busy", "tentative", "free"]),
            )
            moved = rng.choice(own)
            begin = today + dt.timedelta(days=rng.randint(1, 150), hours=9)
            sim.modify_event(
                account_id,
                moved.event_uid,
                start=ts(begin),
                end=ts(begin + dt.timedelta(hours=1)),
            )
            sim.delete_event(account_id, rng.choice([e for e in own if e is not moved]).event_uid)
        for event in rng.sample(managed, 2):
            status = "free" if event.status != "free" else "busy"
            sim.modify_event(account_id, event.event_uid, status=status)


def test_thirty_days_change_driven_match_what_cronofy_held(tmp_path):
    push = Push(tmp_path, accounts=3, seed=21, events_per_account=30, page_size=40)
    sim = push.sim
    try:
        sim.sync_lag = 120.0
        sim.log_bodies = False
        now = sim.now_dt().replace(minute=0, second=0, microsecond=0)
        for index, account_id in enumerate(push.ids):
            # weekly from a month ago, forever; daily from 150 days ahead: both keep entering
            # the window with no notification at all
            sim.create_series(account_id, first=ts(now - dt.timedelta(30)))
            sim.create_series(
                account_id, first=ts(now + dt.timedelta(150 + index)), every_days=1, minutes=30
            )
        made = push.channels()
        assert made.returncode == 0, made.stderr[-2000:]
        push.flush()
        calendars = {c for a in sim.accounts.values() for c in a.calendars}
        pipeline = Pipeline(tmp_path, push.config)
        held: dict[str, tuple[dict, dt.datetime]] = {}  # at each account's last query
        bookmarks: dict[str, str] = {}
        unqueried = 0  # (run, account) pairs that cost no request
        rng = random.Random(2027)
        for day in range(DAYS):
            a_day_of_changes(push, rng, day)
            for _ in range(2):
                push.flush()
                sim.requests.clear()
                run = pipeline.run()
                assert run["returncode"] == 0, run["stderr"][-3000:]
                today = sim.now_dt().replace(hour=0, minute=0, second=0, microsecond=0)
                lower = today - dt.timedelta(days=WINDOW_BACK)
                upper = today + dt.timedelta(days=WINDOW_AHEAD)
                states = account_states(pipeline.state)
                for account_id in push.ids:
                    bookmark = states[account_id]["replication_key_value"]
                    if bookmarks.get(account_id) == bookmark:
                        unqueried += 1
                        assert not any(r["account_id"] == account_id for r in sim.requests)
                    else:  # queried this run
                        bookmarks[account_id] = bookmark
                        rows = truth(sim, calendars, lower, upper)
                        held[account_id] = (
                            {k: v for k, v in rows.items() if k[0] == account_id},
                            upper,
                        )
                    age = sim.now_dt() - _utc(bookmark)
                    assert age <= dt.timedelta(hours=36), (account_id, calendar_slot(account_id))
                loaded = pipeline.live_rows(lower, upper)
                for account_id, (then, edge) in held.items():
                    expected = {k: v for k, v in then.items() if v[0] < edge and v[1] >= lower}
                    got = {
                        k: v
                        for k, v in loaded.items()
                        if k[0] == account_id and v[0] < edge and v[1] >= lower
                    }
                    missing = sorted(set(expected) - set(got))[:3]
                    extra = sorted(set(got) - set(expected))[:3]
                    stale = [k for k in expected if k in got and expected[k] != got[k]][:3]
                    assert not (missing or extra or stale), (
                        f"day {day}, {account_id}: missing {missing}, extra {extra}, stale {stale}"
                    )
                sim.advance(12 * HOUR)
        # A day with no change at all: every account's sweep comes round.
        sim.advance(24 * HOUR)
        assert pipeline.run()["returncode"] == 0
        today = sim.now_dt().replace(hour=0, minute=0, second=0, microsecond=0)
        lower = today - dt.timedelta(days=WINDOW_BACK)
        upper = today + dt.timedelta(days=WINDOW_AHEAD)
        assert pipeline.live_rows(lower, upper) == truth(sim, calendars, lower, upper)
        fresh = run_tap(push.config | {"change_log": None}, streams=["free_busy"])
        assert fresh.returncode == 0, fresh.stderr[-2000:]
        fresh_keys = {
            (r["account_id"], r["calendar_id"], r["event_uid"])
            for r in fresh.records()
            if r["_sdc_deleted_at"] is None
            and _utc(r["start_time"]) < upper
            and _utc(r["end_time"]) >= lower
        }
        assert fresh_keys == set(pipeline.live_rows(lower, upper))
        # Polling queries every account on every run. Here an account is queried at most
        # twice a day (when notified, and by its sweep), and one with only managed edits
        # that day at most once: after the first day (the first sync), at least one
        # (run, account) pair in six costs nothing.
        assert unqueried >= DAYS - 1, unqueried
    finally:
        push.stop()
