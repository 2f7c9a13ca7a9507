"""The accounts and calendars streams: every account's dimensions, failures isolated."""

from __future__ import annotations

from harness import docs
from harness.tap import run_tap, tap_config


def test_calendars_and_accounts_name_what_free_busy_references(sim):
    run = run_tap(tap_config(sim, sim.url), streams=["calendars", "accounts", "free_busy"])
    assert run.returncode == 0, run.stderr
    calendars = {r["calendar_id"]: r for r in run.records("calendars")}
    expected = {c: a.account_id for a in sim.accounts.values() for c in a.calendars}
    assert {c: r["account_id"] for c, r in calendars.items()} == expected
    assert all(r["calendar_name"] and r["provider_name"] == "google" for r in calendars.values())
    primaries = [r["calendar_id"] for r in calendars.values() if r["calendar_primary"]]
    assert sorted(primaries) == sorted(a.calendars[0] for a in sim.accounts.values())
    assert {r["calendar_id"] for r in run.records("free_busy")} <= set(calendars)
    accounts = {r["account_id"]: r for r in run.records("accounts")}
    assert set(accounts) == set(sim.accounts)
    for account_id, record in accounts.items():
        account = sim.accounts[account_id]
        assert (record["name"], record["email"], record["zoneinfo"]) == (
            account.name,
            account.email,
            account.zoneinfo,
        )
        assert record["profiles"][0]["profile_connected"] is True
    assert not any(a.access_token in run.stdout for a in sim.accounts.values())


def test_a_failing_account_does_not_stop_the_dimensions_of_the_others(sim):
    broken = sorted(sim.accounts)[0]
    sim.add_fault(status=503, times=100, path="/v1/calendars", account_id=broken)
    run = run_tap(tap_config(sim, sim.url), streams=["calendars"])
    assert run.returncode == 1 and f"FAILED account {broken}" in run.stderr
    assert {r["account_id"] for r in run.records("calendars")} == set(sim.accounts) - {broken}


def readme_live_calendars_sql() -> str:
    import re

    text = docs.page("streams.md")
    section = text[text.index("### `calendars` and `accounts`") :]
    return re.search(r"```sql\n(.*?)```", section, re.S).group(1)


def test_a_calendar_deleted_while_no_state_remembered_it_is_told_apart(sim):
    """After a state clear the tap cannot mark a calendar gone that was removed meanwhile;
    the manual's query over the merged table leaves it out by `full_listing_at`."""
    import duckdb

    account_id = sorted(sim.accounts)[0]
    removed = sim.add_calendar(account_id, "Short-lived")
    config = tap_config(sim, sim.url)
    first = run_tap(config, streams=["calendars"])
    assert first.returncode == 0, first.stderr
    sim.remove_calendar(account_id, removed)
    sim.advance(3600)
    cleared = run_tap(config, None, streams=["calendars"])  # `meltano state clear`
    assert cleared.returncode == 0, cleared.stderr
    table: dict[tuple, dict] = {}
    for record in first.records("calendars") + cleared.records("calendars"):
        table[(record["account_id"], record["calendar_id"])] = record  # a merging target
    assert table[(account_id, removed)]["_sdc_deleted_at"] is None, "the gap this closes"
    db = duckdb.connect()
    db.execute(
        "create table calendars (account_id text, calendar_id text, last_modified timestamptz, "
        "full_listing_at timestamptz, _sdc_deleted_at timestamptz)"
    )
    db.executemany(
        "insert into calendars values (?, ?, ?, ?, ?)",
        [
            [r["account_id"], r["calendar_id"], r["last_modified"], r["full_listing_at"], None]
            for r in table.values()
        ],
    )
    live = {tuple(row[:2]) for row in db.execute(readme_live_calendars_sql()).fetchall()}
    listed = {(a.account_id, c) for a in sim.accounts.values() for c in a.calendars}
    assert live == listed and (account_id, removed) not in live


def test_a_calendar_only_free_busy_reports_is_remembered_and_said_once(sim):
    account_id = sorted(sim.accounts)[0]
    hidden = sim.accounts[account_id].calendars[0]
    config = tap_config(sim, sim.url)
    streams = ["free_busy", "calendars"]
    sim.accounts[account_id].calendars.remove(hidden)  # never listed, yet in free_busy
    try:
        state = None
        said, listings = [], []
        in_hidden = [e for e in sim.events_of(account_id) if e.calendar_id == hidden]
        for round_ in range(3):
            if round_:  # a change in it: free_busy reports the calendar again
                sim.advance(60)
                sim.modify_event(account_id, in_hidden[round_].event_uid, status="tentative")
            sim.requests.clear()
            run = run_tap(config, state, streams=streams)
            assert run.returncode == 0, run.stderr
            said.append(sum("does not list" in line for line in run.stderr.splitlines()))
            listings.append(sum(r["path"] == "/v1/calendars" for r in sim.requests))
            state = run.state
        assert hidden in {r["calendar_id"] for r in run.records("free_busy")}
        assert said == [1, 0, 0], "said once"
        assert listings[1:] == [0, 0], "the calendars are not re-read every run for it"
    finally:
        sim.accounts[account_id].calendars.insert(0, hidden)
