"""Rows that would stay live at a value Cronofy no longer holds, and requests spent on
nothing: each case of the review that found them, reproduced against the simulator."""

from __future__ import annotations

import collections
import datetime as dt

from harness.tap import (
    FAST_RETRIES,
    account_states,
    costs,
    run_tap,
    tap_config,
)
from simulator import Simulator, SimulatorServer
from simulator.core import fmt_time

FB = ["free_busy"]
TOKEN, FREE_BUSY, USERINFO = "/oauth/token", "/v1/free_busy", "/v1/userinfo"


def key(record: dict) -> tuple:
    return record["account_id"], record["calendar_id"], record["event_uid"]


def by_uid(run) -> dict[str, dict]:
    return {r["event_uid"]: r for r in run.records("free_busy")}


def test_a_managed_event_moved_far_away_stays_live_at_its_new_time(sim):
    """Cronofy returns managed events across all time: one moved 300 days ahead or 90 back
    is returned, and its row moves with it instead of staying at its old time."""
    config = tap_config(sim, sim.url)
    first = run_tap(config, streams=FB)
    a = sorted(sim.accounts)[0]
    managed = sorted(
        (e for e in sim.accounts[a].events.values() if e.managed and not e.deleted),
        key=lambda e: e.event_uid,
    )[:2]
    assert len(managed) == 2 and all(e.event_uid in by_uid(first) for e in managed)
    now = sim.now_dt().replace(microsecond=0)
    moves = {
        managed[0].event_uid: now + dt.timedelta(days=300),
        managed[1].event_uid: now - dt.timedelta(days=90),
    }
    sim.advance(60)
    for uid, start in moves.items():
        sim.modify_event(a, uid, start=fmt_time(start), end=fmt_time(start + dt.timedelta(hours=1)))
    second = run_tap(config, first.state, streams=FB)
    assert second.returncode == 0, second.stderr
    rows = by_uid(second)
    for uid, start in moves.items():
        assert rows[uid]["start"] == fmt_time(start)
        assert rows[uid]["_sdc_deleted_at"] is None, "Cronofy still returns it: live"


def test_a_first_sync_after_state_was_cleared_learns_the_deletions(sim):
    """A cleared state (or --full-refresh, or an account added again) reads the window
    whole: rows loaded before may have been deleted meanwhile, so it asks for deletions."""
    config = tap_config(sim, sim.url)
    first = run_tap(config, streams=FB)
    live = next(r for r in first.records() if r["_sdc_deleted_at"] is None)
    sim.advance(60)
    sim.delete_event(live["account_id"], live["event_uid"])
    again = run_tap(config, None, streams=FB)  # the state is gone
    row = next(r for r in again.records() if key(r) == key(live))
    assert row["deleted"] is True and row["_sdc_deleted_at"] is not None
    params = next(r for r in sim.requests if r["path"] == FREE_BUSY)["params"]
    assert params["include_deleted"] == ["true"]


def test_a_failed_identification_keeps_the_state_and_the_next_run_stays_incremental():
    """A lone access_token: a 503 on /v1/userinfo (retries exhausted) fails the run, names
    the setting's account as unidentified, and drops no state."""
    sim = Simulator(seed=3, accounts=1, events_per_account=20)
    server = SimulatorServer(sim).start()
    try:
        account = next(iter(sim.accounts.values()))
        config = {
            "api_url": server.url,
            "access_token": account.access_token,
            **FAST_RETRIES,
        }
        first = run_tap(config, streams=FB)
        assert first.returncode == 0, first.stderr
        assert set(account_states(first.state)) == {account.account_id}
        sim.add_fault(path=USERINFO, status=503, times=FAST_RETRIES["max_retries"] + 1)
        failed = run_tap(config, first.state, streams=FB)
        assert failed.returncode != 0
        assert account_states(failed.state) == account_states(first.state), "state kept"
        sim.requests.clear()
        sim.advance(60)
        later = run_tap(config, failed.state, streams=FB)
        assert later.returncode == 0, later.stderr
        params = next(r for r in sim.requests if r["path"] == FREE_BUSY)["params"]
        assert "last_modified" in params, "incremental: its state was there"
        assert "first sync" not in later.stderr
    finally:
        server.stop()


def test_a_calendar_no_longer_listed_is_marked_deleted(sim):
    config = tap_config(sim, sim.url)
    a = sorted(sim.accounts)[0]
    gone = sim.add_calendar(a, "Side project")
    first = run_tap(config, streams=["calendars"])
    assert any(r["calendar_id"] == gone for r in first.records("calendars"))
    assert all(r["_sdc_deleted_at"] is None for r in first.records("calendars"))
    sim.remove_calendar(a, gone)
    sim.advance(25 * 3600)  # its daily re-read is due
    second = run_tap(config, first.state, streams=["calendars"])
    assert second.returncode == 0, second.stderr
    marked = [r for r in second.records("calendars") if r["_sdc_deleted_at"] is not None]
    assert [(r["account_id"], r["calendar_id"], r["calendar_deleted"]) for r in marked] == [
        (a, gone, True)
    ]
    assert "1 no longer listed (marked deleted)" in second.stderr
    third = run_tap(config, second.state, streams=["calendars"])
    assert third.records("calendars") == [], "marked once"


def test_a_refused_to_is_read_a_day_earlier_once(sim):
    """Should Cronofy's date and the tap's disagree, a `to` refused as too far ahead is
    moved one day earlier, once, logged, and the horizon says what was read."""
    today = sim.now_dt().date()
    end = today + dt.timedelta(days=150)
    config = tap_config(sim, sim.url, end_date=end.isoformat())
    sim.add_fault(
        path=FREE_BUSY,
        status=422,
        body={"errors": {"to": [{"key": "errors.too_far_in_future", "description": "no"}]}},
    )
    run = run_tap(config, streams=FB)
    assert run.returncode == 0, run.stderr
    sent = collections.Counter(
        r["params"].get("to", ["none"])[0] for r in sim.requests if r["path"] == FREE_BUSY
    )
    earlier = (end - dt.timedelta(days=1)).isoformat()
    # three accounts: one refused, then read a day earlier; the other two as planned
    assert sent == {end.isoformat(): 3, earlier: 1}
    assert run.stderr.count("reading to " + earlier + " instead, once") == 1
    horizons = {s["horizon"] for s in account_states(run.state).values()}
    assert horizons <= {earlier, end.isoformat()}


def test_a_full_run_asks_exactly_one_token_and_one_query_per_account():
    """Forty accounts, eight at a time, with and without start_date: no account asks for
    its userinfo (Cronofy's today comes from the first answer, asked by one worker)."""
    sim = Simulator(seed=8, accounts=40, events_per_account=3, page_size=500)
    server = SimulatorServer(sim).start()
    try:
        today = sim.now_dt().date()
        for extra in ({}, {"start_date": (today - dt.timedelta(days=10)).isoformat()}):
            config = tap_config(sim, server.url, max_parallel_accounts=8, **extra)
            for _ in range(2):
                costs(sim)
                run = run_tap(config, streams=FB)
                assert run.returncode == 0, run.stderr
                spent = {a: dict(c) for a, c in costs(sim).items()}
                assert spent == {a: {TOKEN: 1, FREE_BUSY: 1} for a in sim.accounts}, extra
    finally:
        server.stop()
