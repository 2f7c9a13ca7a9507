"""Quota economy, counted at the simulator: what each run asks of Cronofy per account and
stream, calendars read once a day (and at once for a calendar never read), and a run budget
that serves the stalest accounts first and loses nothing when it cuts a run short."""

from __future__ import annotations

import collections
import datetime as dt
import json
import random

from harness.tap import (
    account_states,
    costs,
    expected_first_sync,
    run_tap,
    tap_config,
)
from simulator import Simulator, SimulatorServer
from tap_cronofy.window import calendar_slot

PER_ACCOUNT = ["free_busy", "calendars", "accounts"]
TOKEN, FREE_BUSY, CALENDARS, USERINFO = (
    "/oauth/token",
    "/v1/free_busy",
    "/v1/calendars",
    "/v1/userinfo",
)


def day(sim) -> dt.date:
    return sim.now_dt().astimezone(dt.timezone.utc).date()


def test_a_simulated_day_of_hourly_runs_costs_two_requests_per_account_per_run():
    """All per-account streams selected, 25 hourly runs: each run costs a token and the
    incremental query; a new day adds its horizon slice and the calendars' daily read."""
    sim, server = fleet(3, page_size=500)  # one page per query: requests are queries
    try:
        day_of_runs(sim, tap_config(sim, server.url))
    finally:
        server.stop()


def test_without_the_userinfo_free_busy_embeds_each_run_costs_one_request_more():
    """The cost table rests on free_busy embedding userinfo (`include_userinfo`, which the
    free-busy document describes). Should Cronofy not embed it (and list calendars without
    `sub`, which nothing documents), each run asks `/v1/userinfo` once per account: 3
    requests an hourly run, 4 on the first of a day, 75 a day. Measured here, as above."""
    sim, server = fleet(3, page_size=500)
    sim.embed_userinfo = False
    sim.calendars_sub = False
    try:
        day_of_runs(sim, tap_config(sim, server.url), userinfo=1)
    finally:
        server.stop()


def day_of_runs(sim, config: dict, userinfo: int = 0) -> None:
    """``userinfo``: the `/v1/userinfo` requests each run makes per account."""
    extra = {USERINFO: userinfo} if userinfo else {}
    rng = random.Random(1)
    # The day starts at noon UTC, whatever the real clock says: 24 hourly runs from there
    # pass midnight once and every account's calendar hour (1:00 to 23:59) at least once.
    # (From the real clock, a start between 00:00 and 03:59 passed none of the hours that
    # were not yet read that day.)
    now = sim.now_dt()
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
    sim.advance(((noon - now).total_seconds()) % 86400)
    run = run_tap(config, streams=PER_ACCOUNT)
    assert run.returncode == 0, run.stderr
    first = {TOKEN: 1, FREE_BUSY: 1, CALENDARS: 1, **extra}
    assert costs(sim) == {a: first for a in sim.accounts}
    assert len(run.records("accounts")) == 3, "accounts from the embedded userinfo"
    state, last_day = run.state, day(sim)
    read_on = {a: day(sim) for a in sim.accounts}  # when each account's calendars were read
    total = {a: 0 for a in sim.accounts}  # over the 24 hourly runs after the first sync
    new_days = calendar_reads = 0
    for _ in range(24):
        sim.advance(3600)
        account = rng.choice(sorted(sim.accounts))
        sim.create_event(account, event_uid=f"evt_hour_{rng.random()}")
        run = run_tap(config, state, streams=PER_ACCOUNT)
        assert run.returncode == 0, run.stderr
        spent = costs(sim)
        today, hour = day(sim), sim.now_dt().astimezone(dt.timezone.utc).hour
        new_day = today != last_day
        new_days += new_day
        for account_id in sim.accounts:
            expected = {TOKEN: 1, FREE_BUSY: 2 if new_day else 1, **extra}  # + horizon slice
            if read_on[account_id] < today and hour >= calendar_slot(account_id):
                expected[CALENDARS] = 1  # once a day, from the account's hour
                read_on[account_id] = today
                calendar_reads += 1
            assert spent[account_id] == expected, (sim.now_dt(), account_id, spent)
            total[account_id] += sum(expected.values())
        if new_day:
            at_midnight = 3 + userinfo
            assert all(sum(spent[a].values()) == at_midnight for a in sim.accounts), "midnight"
        assert len(run.records("accounts")) == 3
        state, last_day = run.state, today
    assert new_days == 1
    assert calendar_reads, "the clock passed some account's hour"
    per_day = 24 * (2 + userinfo) + 1 + 1
    assert max(total.values()) <= per_day, f"at most {per_day} requests per account a day"


def test_calendars_are_emitted_when_new_or_changed_and_read_at_once_for_an_unknown_one(sim):
    config = tap_config(sim, sim.url)
    first = run_tap(config, streams=PER_ACCOUNT)
    assert len(first.records("calendars")) == sum(len(a.calendars) for a in sim.accounts.values())
    costs(sim)
    a, b, _ = sorted(sim.accounts)

    # Renamed today: not read again until tomorrow.
    renamed = sim.accounts[b].calendars[0]
    sim.rename_calendar(b, renamed, "Team")
    sim.advance(600)
    second = run_tap(config, first.state, streams=PER_ACCOUNT)
    assert second.records("calendars") == []
    assert CALENDARS not in {p for c in costs(sim).values() for p in c}

    # A calendar free_busy meets and calendars never read: read at once, that account only.
    added = sim.add_calendar(a, "Projects")
    sim.create_event(a, calendar_id=added, event_uid="evt_on_new_calendar")
    sim.advance(600)
    third = run_tap(config, second.state, streams=PER_ACCOUNT)
    assert [r["calendar_id"] for r in third.records("calendars")] == [added]
    assert third.records("calendars")[0]["calendar_name"] == "Projects"
    assert {acc for acc, c in costs(sim).items() if c[CALENDARS]} == {a}
    assert "free_busy read periods of 1 calendar(s) not read before" in third.stderr

    # The next day, at 23:30 (past every account's hour): every account's calendars are
    # read, only the renamed one emitted.
    now = sim.now_dt().astimezone(dt.timezone.utc)
    sim.advance((24 - now.hour) * 3600 - now.minute * 60 - now.second + 23.5 * 3600)
    fourth = run_tap(config, third.state, streams=PER_ACCOUNT)
    assert [
        (r["account_id"], r["calendar_id"], r["calendar_name"]) for r in fourth.records("calendars")
    ] == [(b, renamed, "Team")]
    assert {acc for acc, c in costs(sim).items() if c[CALENDARS] == 1} == set(sim.accounts)
    assert (
        fourth.records("calendars")[0]["last_modified"]
        > third.records("calendars")[0]["last_modified"]
    )


def test_calendars_alone_are_read_once_a_day(sim):
    config = tap_config(sim, sim.url)
    first = run_tap(config, streams=["calendars"])
    assert {acc: dict(c) for acc, c in costs(sim).items()} == {
        None: {"/": 1},  # Cronofy's clock, before any account is asked
        **{a: {TOKEN: 1, CALENDARS: 1} for a in sim.accounts},
    }
    sim.advance(3600)
    second = run_tap(config, first.state, streams=["calendars"])
    assert second.returncode == 0 and second.records() == []
    # nothing asked for any account, not even a token; Cronofy's clock (which decides the
    # day) from one unauthenticated request
    assert {acc: dict(c) for acc, c in costs(sim).items()} == {None: {"/": 1}}
    assert "reads: 3 not due" in second.stderr


def fleet(accounts: int, page_size: int = 50) -> tuple[Simulator, SimulatorServer]:
    sim = Simulator(seed=21, accounts=accounts, events_per_account=6, page_size=page_size)
    server = SimulatorServer(sim).start()
    sim.url = server.url  # type: ignore[attr-defined]
    return sim, server


def test_a_request_budget_serves_the_stalest_accounts_first_and_starves_none():
    """10 accounts, a budget of 9 requests: with one account at a time, 4 accounts fit a run
    (2 requests each, 3 held in reserve for the next). Each run serves those that waited
    longest (never synced first), no account is served twice before every account once, an
    account that waits keeps its state, and nothing is lost."""
    sim, server = fleet(10)
    try:
        ids = sorted(sim.accounts)
        config = tap_config(sim, server.url, max_requests_per_run=9, max_parallel_accounts=1)
        state: dict | None = None
        loaded: set[tuple] = set()
        changed: set[tuple] = set()
        served = []
        for n in range(5):
            run = run_tap(config, state, streams=["free_busy"])
            assert run.returncode == 0, run.stderr
            spent = costs(sim)
            served.append(list(spent))  # in the order of their first request
            assert sum(sum(c.values()) for c in spent.values()) == 8
            assert all(c == {TOKEN: 1, FREE_BUSY: 1} for c in spent.values())
            assert "6 waited for the next run, which serves them first" in run.stderr
            before = account_states(state)
            after = account_states(run.state)
            for account_id in set(ids) - set(spent):
                assert after.get(account_id) == before.get(account_id), "a waiting account moved"
            loaded |= set(run.live_keys())
            state = run.state
            if n < 3:  # a change on an account served again later
                sim.advance(600)
                event = sim.create_event(ids[n], event_uid=f"evt_between_{n}")
                changed.add((ids[n], event.calendar_id, event.event_uid))
        # never synced first; then the oldest bookmark (those of one run tie: config order)
        assert served == [ids[0:4], ids[4:8], ids[8:10] + ids[0:2], ids[2:6], ids[6:8] + ids[0:2]]
        in_turn = [a for s in served for a in s]
        assert sorted(in_turn[:10]) == ids, "every account once before any account twice"
        assert expected_first_sync(sim) - {*changed} <= loaded, "a run cut short loses nothing"
        assert changed <= loaded, "changes to waiting accounts arrive when they are served"
    finally:
        server.stop()


def test_state_messages_stay_a_few_copies_of_the_final_state():
    sim, server = fleet(40)
    try:
        run = run_tap(tap_config(sim, server.url), streams=PER_ACCOUNT)
        assert run.returncode == 0, run.stderr
        lines = [line for line in run.stdout.splitlines() if '"type":"STATE"' in line]
        final = len(json.dumps(run.state, separators=(",", ":")))
        assert len(lines) == 4, "three checkpoints (quarters of free_busy) and the final one"
        assert sum(len(line) for line in lines) <= 5 * final
        # every account a STATE message bookmarks has all its records before it
        totals = collections.Counter(r["account_id"] for r in run.records("free_busy"))
        so_far: collections.Counter = collections.Counter()
        for message in run.messages:
            if message["type"] == "RECORD" and message["stream"] == "free_busy":
                so_far[message["record"]["account_id"]] += 1
            elif message["type"] == "STATE":
                for account_id in account_states(message["value"]):
                    assert so_far[account_id] == totals[account_id], "state ahead of records"
    finally:
        server.stop()
