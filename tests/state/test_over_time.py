"""What months of scheduled runs need: horizons, scope changes, bounded state, isolation,
a free_busy-only config, the Scheduler's own secret, key collisions."""

from __future__ import annotations

import datetime as dt
import json

from harness.tap import account_states, expected_first_sync, run_tap, tap_config
from simulator import Simulator, SimulatorServer

FB = ["free_busy"]
DAY = 86400


def partitions(state: dict) -> dict[str, dict]:
    return account_states(state)


def bookmarked(state: dict) -> set[str]:
    return {a for a, p in partitions(state).items() if p.get("replication_key_value")}


def test_a_period_that_enters_the_window_by_time_passing_is_loaded(sim):
    account_id = sorted(sim.accounts)[0]
    start = sim.now_dt().replace(hour=10, minute=0, second=0, microsecond=0)
    start += dt.timedelta(days=215)  # beyond Cronofy's 201 days: not returned today
    far = sim.create_event(
        account_id,
        start=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        end=(start + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    sim.advance(3600)  # booked long before the runs below: never "modified since" them
    config = tap_config(sim, sim.url)
    state = run_tap(config, streams=FB).state
    horizon = partitions(state)[account_id]["horizon"]
    loaded_on = None
    for day in range(1, 31, 10):  # runs on days 10, 20, 30
        sim.advance(10 * DAY)
        run = run_tap(config, state, streams=FB)
        assert run.returncode == 0, run.stderr
        state = run.state
        if far.event_uid in {r["event_uid"] for r in run.records()}:
            loaded_on = loaded_on or day
    assert loaded_on is not None, "the far-ahead booking was never loaded"
    assert partitions(state)[account_id]["horizon"] > horizon
    slices = [r for r in sim.requests if r["path"] == "/v1/free_busy" and "from" in r["params"]]
    assert slices and all("last_modified" not in r["params"] for r in slices)


def test_widening_the_scope_backfills_and_says_why(sim):
    narrow = [a.calendars[0] for a in sim.accounts.values()]
    first = run_tap(tap_config(sim, sim.url, calendar_ids=narrow), streams=FB)
    assert set(first.live_keys()) == expected_first_sync(sim, calendar_ids=set(narrow))
    sim.advance(600)
    second = run_tap(tap_config(sim, sim.url), first.state, streams=FB)
    assert second.returncode == 0, second.stderr
    assert "the query scope changed" in second.stderr
    live = {
        (r["account_id"], r["calendar_id"], r["event_uid"])
        for r in second.records()
        if not r["deleted"]  # a re-read after the first also marks deletions
    }
    assert set(first.live_keys()) | live == expected_first_sync(sim)
    third = run_tap(tap_config(sim, sim.url), second.state, streams=FB)
    assert "the query scope changed" not in third.stderr
    assert third.records() == [], "an unchanged scope reads only changes"


def test_state_volume_stays_bounded_and_removed_accounts_leave_state():
    sim = Simulator(seed=4, accounts=150, events_per_account=2, page_size=50)
    server = SimulatorServer(sim).start()
    try:
        config = tap_config(sim, server.url)
        run = run_tap(config, streams=FB, timeout=300)
        assert run.returncode == 0, run.stderr
        state_lines = [line for line in run.stdout.splitlines() if '"type":"STATE"' in line]
        final = len(json.dumps(run.state, separators=(",", ":")))
        total = sum(len(line) for line in state_lines)
        assert total <= 5 * final, f"{total} bytes of STATE for a {final}-byte final state"
        config["accounts"] = config["accounts"][:100]
        sim.advance(60)
        smaller = run_tap(config, run.state, streams=FB, timeout=300)
        assert set(partitions(smaller.state)) == {a["account_id"] for a in config["accounts"]}
        assert "Dropping 50 account(s) no longer configured" in smaller.stderr
    finally:
        server.stop()


def test_an_account_whose_queries_keep_failing_does_not_starve_the_others(sim):
    broken = sorted(sim.accounts)[0]
    sim.add_fault(status=503, times=1000, path="/v1/free_busy", account_id=broken)
    config = tap_config(sim, sim.url, scheduling_request_ids=list(sim.scheduling)[:5])
    run = run_tap(config)
    assert run.returncode == 1
    assert f"FAILED account {broken}" in run.stderr and "Giving up" in run.stderr
    synced = {k[0] for k in run.record_keys()}
    assert synced == set(sim.accounts) - {broken}
    assert len(run.records("scheduling_requests")) == 5, "later streams still ran"
    assert bookmarked(run.state) == set(sim.accounts) - {broken}


def test_a_422_fails_only_that_account(sim):
    body = {"errors": {"from": [{"key": "errors.too_far_in_past", "description": "too far"}]}}
    broken = sorted(sim.accounts)[1]
    sim.add_fault(status=422, body=body, times=1, path="/v1/free_busy", account_id=broken)
    run = run_tap(tap_config(sim, sim.url), streams=FB)
    assert run.returncode == 1 and "from: too far" in run.stderr
    assert bookmarked(run.state) == set(sim.accounts) - {broken}


def test_free_busy_only_config_runs_with_the_default_selection(sim):
    account = next(iter(sim.accounts.values()))
    config = {"api_url": sim.url, "access_token": account.access_token}
    run = run_tap(config)  # default catalog: both streams selected
    assert run.returncode == 0, run.stderr
    assert "Skipping scheduling_requests: no scheduling_request_ids" in run.stderr
    assert {r["account_id"] for r in run.records()} == {account.account_id}


def test_ids_without_any_scheduler_secret_fail_before_any_request(sim):
    account = next(iter(sim.accounts.values()))
    config = {
        "api_url": sim.url,
        "access_token": account.access_token,
        "scheduling_request_ids": ["srq_1"],
    }
    run = run_tap(config)
    assert run.returncode == 1 and "scheduler_client_secret" in run.stderr
    assert sim.requests == []


def test_the_scheduler_secret_is_its_own_setting(sim):
    internal = "internal-app-secret-5566"
    sim.scheduler_secret = internal  # the query takes only the Internal Application's secret
    ids = list(sim.scheduling)[:3]
    config = tap_config(sim, sim.url, scheduling_request_ids=ids)  # client_secret: OAuth app's
    config["scheduler_client_secret"] = internal
    run = run_tap(config)
    assert run.returncode == 0, run.stderr
    queries = [r for r in sim.requests if r["path"] == "/v1/scheduling_requests/query"]
    assert queries and all(r["authorization"] == f"Bearer {internal}" for r in queries)
    assert len(run.records("scheduling_requests")) == 3
    assert internal not in run.stderr and internal not in run.stdout


def test_a_failed_run_still_ends_with_a_bookmarks_object(sim):
    account = next(iter(sim.accounts.values()))
    token = account.access_token
    sim.expire_access_token(account.account_id)  # /v1/userinfo answers 401: nothing to sync
    run = run_tap({"api_url": sim.url, "access_token": token}, streams=FB)
    assert run.returncode == 1 and "401" in run.stderr
    assert run.states and "bookmarks" in run.states[-1]


def test_batch_is_not_advertised_and_batch_config_is_refused(sim):
    from tests.meltano.test_config import tap_cli

    about = json.loads(tap_cli("--about", "--format=json").stdout)
    assert "batch" not in about["capabilities"]
    config = tap_config(sim, sim.url, batch_config={"encoding": {"format": "jsonl"}})
    run = run_tap(config, streams=FB)
    assert run.returncode == 1 and "batch_config" in run.stderr
    assert sim.requests == []


def test_two_periods_sharing_a_key_are_counted_and_shown(sim):
    account_id = sorted(sim.accounts)[0]
    calendar = sim.accounts[account_id].calendars[0]
    begin = sim.now_dt().replace(hour=9, minute=0, second=0, microsecond=0) + dt.timedelta(2)
    series = sim.create_series(
        account_id, calendar_id=calendar, uid="evt_rec", first=begin.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    clash = f"{series.uid}_{begin:%Y%m%d}"  # an event reusing an occurrence's event_uid
    other = begin + dt.timedelta(hours=3)
    sim.create_event(
        account_id,
        calendar_id=calendar,
        event_uid=clash,
        start=other.strftime("%Y-%m-%dT%H:%M:%SZ"),
        end=(other + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    run = run_tap(tap_config(sim, sim.url), streams=FB)
    assert run.returncode == 0, run.stderr
    assert f"{calendar}/{clash}" in run.stderr and "shared a key" in run.stderr
    assert "1 key collision." in run.stderr


def test_a_run_bound_by_the_rate_limit_says_so_with_the_arithmetic(sim):
    config = tap_config(sim, sim.url, requests_per_second=2)
    run = run_tap(config, streams=["free_busy", "calendars"])
    assert run.returncode == 0, run.stderr
    line = next(x for x in run.stderr.splitlines() if "The rate limit bounded this run" in x)
    requests = [r for r in sim.requests if not r["path"].startswith("/_sim")]
    assert f"{len(requests)} requests" in line and "3 accounts" in line
    assert "at 120 requests/minute" in line
