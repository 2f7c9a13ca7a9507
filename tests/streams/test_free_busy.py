"""The free_busy stream end to end against the simulator: full, incremental, accounts."""

from __future__ import annotations

import collections
import datetime as dt
import json
import tempfile
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from jsonschema import Draft7Validator, FormatChecker

from harness.tap import (
    account_states,
    discovered_catalog,
    expected_first_sync,
    run_tap,
    select_streams,
    selected_events,
    tap_config,
)

FB = ["free_busy"]


def schema_of(stream: str) -> dict:
    return next(
        s["schema"] for s in discovered_catalog()["streams"] if s["tap_stream_id"] == stream
    )


def test_first_run_emits_exactly_the_window(sim):
    run = run_tap(tap_config(sim, sim.url), streams=FB)
    assert run.returncode == 0, run.stderr
    keys = run.live_keys()
    assert len(keys) == len(set(keys)), "a record was emitted twice"
    expected = expected_first_sync(sim)
    assert set(keys) == expected
    # The seed covers what the document distinguishes, so the comparison means something.
    events = selected_events(sim)
    emitted = [events[k] for k in keys]
    assert {e.status for e in emitted} == {"busy", "tentative", "free", "unknown"}
    assert any(e.managed for e in emitted) and any(e.all_day for e in emitted)
    assert any(not e.all_day for e in emitted)
    assert any(e.deleted for e in events.values()), "seed has deleted events (not emitted)"
    outside = [
        k for k, e in events.items() if k not in expected and not e.deleted and not e.managed
    ]
    assert outside, "seed has events outside the window"


def test_records_carry_the_api_values_and_validate(sim):
    run = run_tap(tap_config(sim, sim.url), streams=FB)
    validator = Draft7Validator(schema_of("free_busy"), format_checker=FormatChecker())
    events = selected_events(sim)
    records = run.records("free_busy")
    assert records
    for record in records:
        errors = list(validator.iter_errors(record))
        assert not errors, (record, errors)
        event = events[(record["account_id"], record["calendar_id"], record["event_uid"])]
        assert record["start"] == event.start and record["end"] == event.end
        assert record["free_busy_status"] == event.status
        assert record["event_id"] == (event.event_id if event.managed else None)
        assert record["all_day"] is event.all_day
        # a first sync asks for deletions too: rows may have been loaded before
        assert record["deleted"] is event.deleted
        assert (record["_sdc_deleted_at"] is None) is not event.deleted
        if event.all_day:
            assert record["start_time"] == f"{event.start}T00:00:00Z"
        else:
            assert record["start_time"] == event.start
    assert any("日程" in (r["event_id"] or "") for r in records), "unicode event ids survive"


def test_primary_keys_are_unique_across_accounts_and_pages(sim):
    run = run_tap(tap_config(sim, sim.url), streams=FB)
    counts = collections.Counter(run.record_keys())
    assert counts and max(counts.values()) == 1
    pages = [r for r in sim.requests if r["path"].startswith("/v1/free_busy/pages/")]
    assert pages, "the data spans several pages"


def test_next_pages_are_fetched_without_the_first_query(sim):
    run = run_tap(tap_config(sim, sim.url), streams=FB)
    assert run.returncode == 0
    first = [r for r in sim.requests if r["path"] == "/v1/free_busy"]
    later = [r for r in sim.requests if r["path"].startswith("/v1/free_busy/pages/")]
    assert len(first) == len(sim.accounts)
    assert later and all(r["query"] == "" for r in later)
    params = first[0]["params"]
    assert params["tzid"] == ["Etc/UTC"]
    for flag in ("include_ids", "include_free", "include_managed"):
        assert params[flag] == ["true"]
    assert "last_modified" not in params and "from" not in params


def test_second_run_emits_exactly_what_changed(sim):
    config = tap_config(sim, sim.url)
    first = run_tap(config, streams=FB)
    assert first.returncode == 0
    sim.advance(60)
    (a, _, c) = list(sim.accounts)
    events_a = [e for e in sim.events_of(a) if not e.deleted and not e.managed and not e.all_day]
    modified = sim.modify_event(
        a,
        events_a[0].event_uid,
        status="tentative" if events_a[0].status != "tentative" else "busy",
    )
    deleted = sim.delete_event(a, events_a[1].event_uid)
    created = sim.create_event(c, status="busy")
    sim.advance(60)

    second = run_tap(config, first.state, streams=FB)
    assert second.returncode == 0, second.stderr
    got = {(r["account_id"], r["event_uid"]): r for r in second.records("free_busy")}
    assert set(got) == {(a, modified.event_uid), (a, deleted.event_uid), (c, created.event_uid)}
    assert got[(a, modified.event_uid)]["free_busy_status"] == modified.status
    assert got[(a, deleted.event_uid)]["deleted"] is True
    assert (
        got[(a, deleted.event_uid)]["_sdc_deleted_at"]
        == got[(a, deleted.event_uid)]["last_modified"]
    )
    assert got[(c, created.event_uid)]["deleted"] is False
    incremental = [r for r in sim.requests if r["path"] == "/v1/free_busy"][-3:]
    for request in incremental:
        params = request["params"]
        assert "from" not in params and "to" not in params
        assert params["include_deleted"] == ["true"] and params["last_modified"]

    # Within lookback_seconds of the second run, its changes are read again (the price of
    # catching late-arriving changes): the same three rows, nothing else.
    sim.advance(10)
    third = run_tap(config, second.state, streams=FB)
    assert {(r["account_id"], r["event_uid"]) for r in third.records("free_busy")} == set(got)
    # Each run reads back to its predecessor's watermark minus the lookback: once a run's
    # predecessor ran more than lookback_seconds after the changes, nothing comes back.
    sim.advance(601)
    fourth = run_tap(config, third.state, streams=FB)
    assert {(r["account_id"], r["event_uid"]) for r in fourth.records("free_busy")} == set(got)
    sim.advance(10)
    fifth = run_tap(config, fourth.state, streams=FB)
    assert fifth.records("free_busy") == [], "nothing changed within the lookback"
    bookmarks = {a: s["replication_key_value"] for a, s in account_states(third.state).items()}
    previous = {a: s["replication_key_value"] for a, s in account_states(second.state).items()}
    assert set(bookmarks) == set(sim.accounts)
    assert all(bookmarks[k] > previous[k] for k in bookmarks), "empty accounts advance too"


def test_bookmark_is_cronofys_clock_and_skew_loses_nothing(sim):
    sim.clock_offset = -900  # Cronofy 15 minutes behind this host
    config = tap_config(sim, sim.url)
    first = run_tap(config, streams=FB)
    value = next(iter(account_states(first.state).values()))["replication_key_value"]
    bookmark = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert abs((bookmark - sim.now_dt()).total_seconds()) < 60, "bookmark follows the Date header"
    account = next(iter(sim.accounts))
    target = next(e for e in sim.events_of(account) if not e.deleted and not e.managed)
    sim.advance(30)  # a change 30 s later by Cronofy's clock: still before this host's "now"
    sim.modify_event(account, target.event_uid, status="unknown")
    second = run_tap(config, first.state, streams=FB)
    assert [(r["account_id"], r["event_uid"]) for r in second.records()] == [
        (account, target.event_uid)
    ]


def test_clock_ahead_of_this_host_loses_nothing(sim):
    sim.clock_offset = 900
    config = tap_config(sim, sim.url)
    first = run_tap(config, streams=FB)
    sim.advance(30)
    account = next(iter(sim.accounts))
    target = next(e for e in sim.events_of(account) if not e.deleted and not e.managed)
    sim.modify_event(account, target.event_uid, status="unknown")
    second = run_tap(config, first.state, streams=FB)
    assert [(r["account_id"], r["event_uid"]) for r in second.records()] == [
        (account, target.event_uid)
    ]


def test_accounts_are_isolated_and_state_ignores_list_order(sim):
    config = tap_config(sim, sim.url)
    first = run_tap(config, streams=FB)
    for record in first.records():
        assert record["calendar_id"] in sim.accounts[record["account_id"]].calendars
    requests_by_account = collections.Counter(
        r["account_id"] for r in sim.requests if r["path"] != "/oauth/token"
    )
    assert set(requests_by_account) == set(sim.accounts)
    assert set(account_states(first.state)) == set(sim.accounts)
    assert not any(
        secret in json.dumps(first.state)
        for a in sim.accounts.values()
        for secret in (a.access_token, a.refresh_token)
    )

    reordered = dict(config, accounts=list(reversed(config["accounts"])))
    sim.advance(60)
    account = sorted(sim.accounts)[1]
    target = next(e for e in sim.events_of(account) if not e.deleted)
    sim.modify_event(account, target.event_uid, status="busy")
    second = run_tap(reordered, first.state, streams=FB)
    assert [r["event_uid"] for r in second.records()] == [target.event_uid]
    assert set(account_states(second.state)) == set(sim.accounts)


def test_a_token_configured_under_the_wrong_account_is_reported(sim):
    config = tap_config(sim, sim.url)
    one, two = config["accounts"][0], config["accounts"][1]
    for name in ("access_token", "refresh_token"):  # a whole credential filed wrongly
        one[name], two[name] = two[name], one[name]
    run = run_tap(config, streams=FB)
    assert run.returncode != 0
    assert "belongs to" in run.stderr
    assert {r["account_id"] for r in run.records()} == {config["accounts"][2]["account_id"]}


def test_single_access_token_resolves_its_account_id(sim):
    account = next(iter(sim.accounts.values()))
    config = tap_config(sim, sim.url)
    del config["accounts"]
    config.update(access_token=account.access_token, refresh_token=account.refresh_token)
    run = run_tap(config, streams=FB)
    assert run.returncode == 0, run.stderr
    assert {r["account_id"] for r in run.records()} == {account.account_id}
    assert {k for k in expected_first_sync(sim) if k[0] == account.account_id} == set(
        run.live_keys()
    )
    assert list(account_states(run.state)) == [account.account_id]


def test_stale_token_costs_one_refresh_per_account_and_no_401(sim):
    account_id = next(iter(sim.accounts))
    config = tap_config(sim, sim.url)
    sim.expire_access_token(account_id)  # the configured token would be refused with 401
    run = run_tap(config, streams=FB)
    assert run.returncode == 0, run.stderr
    refreshes = [r for r in sim.requests if r["path"] == "/oauth/token"]
    assert len(refreshes) == len(sim.accounts), "one token request per account, up front"
    body = json.loads(refreshes[0]["body"])
    assert body["grant_type"] == "refresh_token" and body["client_id"] == sim.client_id
    assert all(r["authorization"] is None for r in refreshes), "no Bearer on the token call"
    assert [r["status"] for r in refreshes] == [200] * len(sim.accounts)
    assert [r for r in sim.requests if r["status"] == 401] == [], "no avoidable 401"
    assert {k for k in expected_first_sync(sim) if k[0] == account_id} == {
        k for k in run.live_keys() if k[0] == account_id
    }
    # every free_busy request used the refreshed token
    new_token = sim.accounts[account_id].access_token
    later = [r for r in sim.requests if r["account_id"] == account_id]
    assert later and all(r["authorization"] == f"Bearer {new_token}" for r in later)


def test_a_rotated_refresh_token_is_kept_for_the_run_and_warned_about(sim):
    sim.rotate_refresh_tokens = True
    account_id = sorted(sim.accounts)[0]
    run = run_tap(tap_config(sim, sim.url, max_parallel_accounts=1), streams=FB)
    assert run.returncode == 0, run.stderr
    assert f"NEW refresh token for account {account_id}" in run.stderr
    assert "cannot save it" in run.stderr
    assert sim.accounts[account_id].refresh_token not in run.stderr, "masked"


def client_and_credential(sim):
    """A real client and credential for the simulator's first account."""
    import logging

    from tap_cronofy.accounts import AccountCredential
    from tap_cronofy.client import CronofyClient
    from tap_cronofy.settings import AccountConfig, Settings

    account = next(iter(sim.accounts.values()))
    settings = Settings.from_config(tap_config(sim, sim.url))
    client = CronofyClient(settings, user_agent="test", logger=logging.getLogger("test"))
    config = AccountConfig(account.account_id, account.access_token, account.refresh_token)
    return client, AccountCredential(config, settings, logging.getLogger("test")), account


def test_localized_times_keep_offsets_and_zone(sim):
    run = run_tap(
        tap_config(sim, sim.url, localized_times=True, tzid="America/Chicago"), streams=FB
    )
    assert run.returncode == 0, run.stderr
    records = run.records()
    validator = Draft7Validator(schema_of("free_busy"), format_checker=FormatChecker())
    timed = [r for r in records if not r["all_day"]]
    all_day = [r for r in records if r["all_day"]]
    assert timed and all_day
    for record in records:
        assert not list(validator.iter_errors(record))
        assert record["start_tzid"] == "America/Chicago"
    for record in timed:
        local = dt.datetime.fromisoformat(record["start"])
        assert local.utcoffset() in (dt.timedelta(hours=-6), dt.timedelta(hours=-5))
        assert record["start_time"] == local.astimezone(dt.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    for record in all_day:
        midnight = dt.datetime.fromisoformat(record["start"] + "T00:00:00-06:00")
        assert record["start_time"] in (
            midnight.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            (midnight - dt.timedelta(hours=1))
            .astimezone(dt.timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    assert set(run.live_keys()) == expected_first_sync(sim, "America/Chicago")


def test_calendar_ids_and_include_managed_filter(sim):
    calendars = [a.calendars[0] for a in sim.accounts.values()]
    run = run_tap(
        tap_config(sim, sim.url, calendar_ids=calendars, include_managed=False), streams=FB
    )
    assert run.returncode == 0, run.stderr
    assert set(run.live_keys()) == expected_first_sync(
        sim, include_managed=False, calendar_ids=set(calendars)
    )
    first = next(r for r in sim.requests if r["path"] == "/v1/free_busy")
    assert first["query"].count("calendar_ids%5B%5D=") == len(calendars)  # one per calendar
    assert parse_qs(first["query"])["calendar_ids[]"] == calendars
    assert first["params"]["include_managed"] == ["false"]


def test_start_and_end_date_are_clamped_not_rejected(sim):
    today = sim.now_dt().date()
    run = run_tap(
        tap_config(sim, sim.url, start_date="2000-01-01", end_date="2999-01-01"), streams=FB
    )
    assert run.returncode == 0, run.stderr
    assert "further back than Cronofy allows" in run.stderr
    assert "further ahead than Cronofy allows" in run.stderr
    params = next(r for r in sim.requests if r["path"] == "/v1/free_busy")["params"]
    assert "from" not in params and "to" not in params, "Cronofy's own edges: left to it"
    first, last = today - dt.timedelta(days=42), today + dt.timedelta(days=201)
    managed_too = expected_first_sync(sim)  # no dates sent: managed events anywhere
    within = expected_first_sync(sim, window=(first, last))
    assert within < managed_too
    assert set(run.live_keys()) == within, "the dates bound managed events too"


def test_start_date_bounds_only_the_first_sync(sim):
    today = sim.now_dt().date()
    window = (today, today + dt.timedelta(days=30))
    config = tap_config(
        sim, sim.url, start_date=window[0].isoformat(), end_date=window[1].isoformat()
    )
    first = run_tap(config, streams=FB)
    assert set(first.live_keys()) == expected_first_sync(sim, window=window)
    later = run_tap(config, first.state, streams=FB)
    params = [r for r in sim.requests if r["path"] == "/v1/free_busy"][-1]["params"]
    assert "from" not in params and later.records() == []


@pytest.mark.parametrize("page_size", [1, 500])
def test_page_sizes_do_not_change_the_result(sim, page_size):
    sim.page_size = page_size
    run = run_tap(tap_config(sim, sim.url, max_parallel_accounts=2), streams=FB)
    assert run.returncode == 0
    assert sorted(run.live_keys()) == sorted(expected_first_sync(sim))
    first_urls = [r for r in sim.requests if r["path"] == "/v1/free_busy"]
    assert len(first_urls) == 3
    # every further page followed once: ceil(periods / page_size) pages per account
    pages = [r for r in sim.requests if r["path"].startswith("/v1/free_busy/pages/")]
    per_account = collections.Counter(key[0] for key in run.record_keys())  # deleted too
    assert len(pages) == sum(-(-n // page_size) - 1 for n in per_account.values())
    assert all(r["status"] == 200 for r in first_urls + pages)


def test_deselected_fields_and_stream_maps_still_apply(sim):
    catalog = select_streams(FB)
    entry = next(s for s in catalog["streams"] if s["tap_stream_id"] == "free_busy")
    for item in entry["metadata"]:
        if item["breadcrumb"] == ["properties", "event_id"]:
            item["metadata"]["selected"] = False
    config = tap_config(
        sim, sim.url, stream_maps={"free_busy": {"is_busy": "free_busy_status == 'busy'"}}
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "catalog.json")
        path.write_text(json.dumps(catalog))
        run = run_tap(config, extra_args=["--catalog", str(path)])
    assert run.returncode == 0, run.stderr
    records = run.records("free_busy")
    assert records and all("event_id" not in r for r in records)
    assert all(r["is_busy"] == (r["free_busy_status"] == "busy") for r in records)
    assert set(run.live_keys()) == expected_first_sync(sim)


def test_parallel_fetching_emits_exactly_what_a_sequential_run_does(sim):
    sim.reset(seed=3, accounts=10, events_per_account=30)
    sequential = run_tap(tap_config(sim, sim.url, max_parallel_accounts=1), streams=FB)
    parallel = run_tap(tap_config(sim, sim.url, max_parallel_accounts=8), streams=FB)
    assert sequential.returncode == parallel.returncode == 0
    assert parallel.record_keys() == sequential.record_keys(), "same records, same order"
    assert set(parallel.live_keys()) == expected_first_sync(sim)

    def shape(run):  # account order of the STATE messages, watermarks aside
        return [
            sorted(account_states(s)) for s in run.states if "free_busy" in s.get("bookmarks", {})
        ]

    assert shape(parallel) == shape(sequential)
    assert len(shape(parallel)[-1]) == 10


def test_token_is_refreshed_first_then_ahead_of_its_expiry(sim):
    client, credential, account = client_and_credential(sim)
    token = credential.bearer(client)
    assert credential.refresh_count == 1, "a configured token is refreshed before first use"
    assert token == sim.accounts[account.account_id].access_token
    credential.bearer(client)
    assert credential.refresh_count == 1, "not yet near expiry (Cronofy said 3600 s)"
    credential._expires_at = 0  # the refresh deadline has passed
    assert credential.bearer(client) == sim.accounts[account.account_id].access_token
    assert credential.refresh_count == 2
