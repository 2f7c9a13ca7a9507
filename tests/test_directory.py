"""The accounts and calendars streams: every account's dimensions, failures isolated."""

from __future__ import annotations

from tests.helpers import run_tap, tap_config


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
