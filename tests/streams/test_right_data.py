"""Right data, end to end: every record under its true account, isolation in every mode,
nothing outside the configured dates, late changes caught, one far edge, rotated tokens kept."""

from __future__ import annotations

import collections
import datetime as dt
import json

import pytest

from harness.tap import account_states, expected_first_sync, run_tap, tap_config
from tests.meltano.test_config import tap_cli

ALL = ["free_busy", "calendars", "accounts", "scheduling_requests"]
PER_ACCOUNT = ["free_busy", "calendars", "accounts"]


def by_account(run, stream: str) -> collections.Counter:
    return collections.Counter(r["account_id"] for r in run.records(stream))


def requests_of(sim, account_id: str) -> list[str]:
    return [r["path"] for r in sim.requests if r["account_id"] == account_id]


def swapped(sim) -> tuple[dict, str, str, str]:
    a, b, c = sorted(sim.accounts)
    config = tap_config(sim, sim.url)
    entries = {e["account_id"]: e for e in config["accounts"]}
    for name in ("access_token", "refresh_token"):
        entries[a][name], entries[b][name] = entries[b][name], entries[a][name]
    return config, a, b, c


@pytest.mark.parametrize("says_whose", [True, False], ids=["answers-say-whose", "lookup"])
def test_swapped_tokens_load_nothing_under_either_id(sim, says_whose):
    """Whether the answers name their account (embedded userinfo, calendars' sub) or the
    tap must look it up, no stream emits a swapped token's data."""
    sim.embed_userinfo = sim.calendars_sub = says_whose
    config, a, b, c = swapped(sim)
    run = run_tap(config, streams=PER_ACCOUNT)
    assert run.returncode == 1, run.stderr
    for stream in PER_ACCOUNT:
        assert set(by_account(run, stream)) == {c}, stream
    assert f"configured for account {a} belongs to {b}" in run.stderr
    assert f"configured for account {b} belongs to {a}" in run.stderr
    assert "2 account(s) failed" in run.stderr
    # the healthy account is complete
    assert {k for k in expected_first_sync(sim) if k[0] == c} == set(run.live_keys())
    # once found out, a swapped token is not used again by the other streams
    for account in (a, b):
        sent = [p for p in requests_of(sim, account) if p != "/oauth/token"]
        assert sent == ["/v1/free_busy"] + ([] if says_whose else ["/v1/userinfo"]), sent
    # and its state does not move
    assert [a for a, s in account_states(run.state).items() if s.get("replication_key_value")] == [
        c
    ]


def test_a_shared_refresh_token_is_refused_before_any_request(sim):
    config = tap_config(
        sim, sim.url, refresh_token=sim.accounts[sorted(sim.accounts)[0]].refresh_token
    )
    for entry in config["accounts"][1:]:
        del entry["refresh_token"]
    run = run_tap(config, streams=ALL)
    assert run.returncode != 0
    assert "`refresh_token` is set beside `accounts`/`accounts_file`" in run.stderr
    assert [r for r in sim.requests if not r["path"].startswith("/_sim")] == []


def test_a_refused_lone_token_is_isolated_like_any_account(sim):
    """The README's first configuration: one access_token. Its failure is a failed
    account; scheduling_requests still runs; the summary counts it."""
    account_id = sorted(sim.accounts)[0]
    token = sim.accounts[account_id].access_token
    sim.expire_access_token(account_id)
    config = {
        "api_url": sim.url,
        "access_token": token,
        "client_secret": sim.client_secret,
        "scheduling_request_ids": list(sim.scheduling)[:5],
        "max_retries": 2,
    }
    run = run_tap(config, streams=ALL)
    assert run.returncode == 1
    assert len(run.records("scheduling_requests")) == 5, "the other stream still ran"
    assert run.records("free_busy") == run.records("accounts") == run.records("calendars") == []
    assert "unhandled" not in run.stderr.lower() and "Traceback" not in run.stderr
    assert "401 Unauthorized for the account of the configured access_token" in run.stderr
    assert "1 failed account." in run.stderr
    assert "the configured account" not in run.stderr.replace("configured access_token", "")
    userinfo = [r for r in sim.requests if r["path"] == "/v1/userinfo"]
    assert len(userinfo) == 1 and userinfo[0]["status"] == 401


def test_a_lone_token_is_named_by_its_id_and_asked_once(sim):
    account_id = sorted(sim.accounts)[0]
    account = sim.accounts[account_id]
    config = {"api_url": sim.url, "access_token": account.access_token}
    run = run_tap(config, streams=PER_ACCOUNT)
    assert run.returncode == 0, run.stderr
    assert set(by_account(run, "accounts")) == {account_id}
    assert set(by_account(run, "calendars")) == {account_id}
    assert set(run.live_keys()) == {k for k in expected_first_sync(sim) if k[0] == account_id}
    paths = collections.Counter(r["path"] for r in sim.requests)
    assert paths["/v1/userinfo"] == 1, "the identity lookup serves the accounts stream too"


def test_a_dead_refresh_token_costs_one_request_per_run(sim):
    a = sorted(sim.accounts)[0]
    config = tap_config(sim, sim.url)
    entry = next(e for e in config["accounts"] if e["account_id"] == a)
    entry["refresh_token"] = "sim-rt-revoked-0000000000"
    run = run_tap(config, streams=PER_ACCOUNT)
    assert run.returncode == 1
    tokens = [r for r in sim.requests if r["path"] == "/oauth/token"]
    assert len(tokens) == len(sim.accounts), "one token request per account, the dead one too"
    assert [r["status"] for r in tokens].count(400) == 1
    assert requests_of(sim, a) == [], "nothing else was asked with its stale token"
    assert run.stderr.count("invalid_grant") >= 1
    assert f"1 account(s) failed: {a}" in run.stderr
    for stream in PER_ACCOUNT:
        assert a not in by_account(run, stream)


def test_no_read_emits_a_period_outside_start_and_end_date(sim):
    today = sim.now_dt().date()
    a = sorted(sim.accounts)[0]
    config = tap_config(
        sim,
        sim.url,
        start_date=(today - dt.timedelta(days=5)).isoformat(),
        end_date=(today + dt.timedelta(days=20)).isoformat(),
    )
    first = run_tap(config, streams=["free_busy"])
    assert first.returncode == 0, first.stderr
    loaded = next(
        r
        for r in first.records()
        if r["account_id"] == a and r["_sdc_deleted_at"] is None and not r["all_day"]
    )
    sim.advance(60)
    moved_to = dt.datetime.combine(today + dt.timedelta(days=60), dt.time(9), dt.timezone.utc)
    sim.modify_event(
        a,
        loaded["event_uid"],
        start=moved_to.strftime("%Y-%m-%dT%H:%M:%SZ"),
        end=(moved_to + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    inside = today + dt.timedelta(days=3)
    far = today + dt.timedelta(days=198)  # 178 days past end_date
    before = today - dt.timedelta(days=20)
    for day, uid in ((inside, "evt_inside"), (far, "evt_far"), (before, "evt_before")):
        start = dt.datetime.combine(day, dt.time(10), dt.timezone.utc)
        sim.create_event(
            a,
            event_uid=uid,
            start=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            end=(start + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    sim.advance(60)
    later = run_tap(config, first.state, streams=["free_busy"])
    assert later.returncode == 0, later.stderr
    assert later.live_keys() == [(a, loaded["calendar_id"], "evt_inside")]
    # what left the window (or never entered it) is emitted marked deleted, at its new
    # time: the moved row does not stay live at its old one
    gone = {r["event_uid"]: r for r in later.records() if r["_sdc_deleted_at"] is not None}
    assert set(gone) == {"evt_far", "evt_before", loaded["event_uid"]}
    assert gone[loaded["event_uid"]]["start"] == moved_to.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert all(r["_sdc_deleted_at"] == r["last_modified"] for r in gone.values())
    assert "3 left the window: marked deleted" in later.stderr
    incremental = [r for r in sim.requests if r["path"] == "/v1/free_busy"][-1]["params"]
    assert "last_modified" in incremental, "the change came from an incremental read"


def test_a_change_that_reaches_cronofy_late_is_still_read(sim):
    """Calendar providers sync into Cronofy asynchronously: a change made just before a run
    may become visible only after it, stamped with its earlier time."""
    a = sorted(sim.accounts)[0]
    config = tap_config(sim, sim.url)
    first = run_tap(config, streams=["free_busy"])
    sim.sync_lag = 120.0  # the change becomes visible now, stamped 2 minutes ago ...
    sim.advance(30)  # ... which is before the first run's watermark
    created = sim.create_event(a, event_uid="evt_late")
    assert created.last_modified < sim.now() - 60
    second = run_tap(config, first.state, streams=["free_busy"])
    assert ("evt_late") in [r["event_uid"] for r in second.records()]


def test_one_far_edge_for_every_read(sim):
    """A period on the last day Cronofy serves arrives the same day whether the account was
    synced fresh or has been synced for months: the warehouse equals a fresh sync."""
    a = sorted(sim.accounts)[0]
    config = tap_config(sim, sim.url)
    today = sim.now_dt().date()
    for days in (199, 200, 201):
        start = dt.datetime.combine(today + dt.timedelta(days=days), dt.time(12), dt.timezone.utc)
        sim.create_event(
            a,
            event_uid=f"evt_edge_{days}",
            start=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            end=(start + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    sim.advance(3600)  # booked long before the runs: never "modified since" them
    old = run_tap(config, streams=["free_busy"])
    merged = {(r["account_id"], r["calendar_id"], r["event_uid"]): r for r in old.records()}
    state = old.state
    for _ in range(2):
        sim.advance(86400)
        run = run_tap(config, state, streams=["free_busy"])
        assert run.returncode == 0, run.stderr
        state = run.state
        merged |= {(r["account_id"], r["calendar_id"], r["event_uid"]): r for r in run.records()}
        warehouse = {k for k, r in merged.items() if r["_sdc_deleted_at"] is None}
        fresh = run_tap(config, streams=["free_busy"])
        # (rows that aged out of the window's past end stay in a warehouse: compare the rest)
        now = sim.now_dt().strftime("%Y-%m-%dT%H:%M:%SZ")
        future = {r["event_uid"] for r in fresh.records() + run.records() if r["end_time"] > now}
        future |= {r["event_uid"] for r in old.records() if r["end_time"] > now}
        assert {k for k in warehouse if k[2] in future} == {
            k for k in fresh.live_keys() if k[2] in future
        }, "a months-old sync equals a fresh one"
        edge = {k[2] for k in warehouse if k[2].startswith("evt_edge_")}
        days = (sim.now_dt().date() - today).days
        # Cronofy's window ends 201 days ahead (exclusive): its last day is read too
        assert edge == {f"evt_edge_{d}" for d in (199, 200, 201) if d < 201 + days}


def test_calendars_are_keyed_by_account_and_keep_no_account_state(sim):
    old_state = {
        "bookmarks": {
            "calendars": {"partitions": [{"context": {"account_id": "acc_gone"}}]},
            "accounts": {"partitions": [{"context": {"account_id": "acc_gone"}}]},
        }
    }
    run = run_tap(tap_config(sim, sim.url), old_state, streams=["calendars", "accounts"])
    assert run.returncode == 0, run.stderr
    schema = next(m for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == "calendars")
    assert schema["key_properties"] == ["account_id", "calendar_id"]
    # (that came from catalog.json; discovery, from the code, says the same)
    discovered = json.loads(tap_cli("--discover").stdout)["streams"]
    calendars = next(s for s in discovered if s["tap_stream_id"] == "calendars")
    assert calendars["key_properties"] == ["account_id", "calendar_id"]
    assert "partitions" not in run.state["bookmarks"].get("calendars", {})
    assert "partitions" not in run.state["bookmarks"].get("accounts", {})
    expected = {(a.account_id, c) for a in sim.accounts.values() for c in a.calendars}
    assert {(r["account_id"], r["calendar_id"]) for r in run.records("calendars")} == expected


def test_accounts_keep_what_userinfo_gives(sim):
    run = run_tap(tap_config(sim, sim.url), streams=["free_busy", "accounts"])
    assert run.returncode == 0, run.stderr
    records = {r["account_id"]: r for r in run.records("accounts")}
    assert set(records) == set(sim.accounts)
    for account_id, record in records.items():
        info = sim.userinfo(sim.accounts[account_id])
        data = info["cronofy.data"]
        assert record["cronofy_type"] == info["cronofy.type"] == "account"
        assert record["authorization"] == {"delegated_scope": None, **data["authorization"]}
        (profile,) = record["profiles"]
        assert profile["provider_service"] == "gsuite" and profile["profile_connected"] is True
        assert profile["profile_relink_url"] is None
        assert [c["calendar_id"] for c in profile["profile_calendars"]] == (
            sim.accounts[account_id].calendars
        )
        (zoom,) = record["conferencing_profiles"]
        assert zoom["profile_connected"] is False and zoom["profile_relink_url"].startswith(
            "https://app.cronofy.com/"
        )
    userinfo = [r for r in sim.requests if r["path"] == "/v1/userinfo"]
    assert userinfo == [], "the userinfo free_busy embedded served the accounts stream"


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_rotated_refresh_tokens_survive_across_runs(sim, tmp_path, suffix):
    import yaml

    sim.rotate_refresh_tokens = True  # each refresh returns a new one; the old one dies
    config = tap_config(sim, sim.url)
    path = tmp_path / f"accounts{suffix}"
    entries = config.pop("accounts")
    path.write_text(json.dumps(entries) if suffix == ".json" else yaml.safe_dump(entries))
    path.chmod(0o640)
    config["accounts_file"] = str(path)
    state = None
    for _ in range(3):
        run = run_tap(config, state, streams=["free_busy"])
        assert run.returncode == 0, run.stderr
        state = run.state
        sim.advance(sim.token_lifetime + 60)  # the saved access tokens have expired
        saved = (json.loads if suffix == ".json" else yaml.safe_load)(path.read_text())
        assert {e["account_id"]: e["refresh_token"] for e in saved} == {
            a.account_id: a.refresh_token for a in sim.accounts.values()
        }
        assert (path.stat().st_mode & 0o777) == 0o640
        assert "saved to accounts_file" in run.stderr
        for account in sim.accounts.values():
            assert account.refresh_token not in run.stderr + run.stdout
    # without the write-back, the next run would have been refused
    config["save_rotated_refresh_tokens"] = False
    run = run_tap(config, state, streams=["free_busy"])
    assert run.returncode == 0 and "NEW refresh token" in run.stderr
    sim.advance(sim.token_lifetime + 60)
    run = run_tap(config, run.state, streams=["free_busy"])
    assert run.returncode == 1 and "invalid_grant" in run.stderr
