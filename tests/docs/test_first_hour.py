"""Newcomers' mistakes get the right remedy, said once, at the cost of one request."""

from __future__ import annotations

from harness.tap import costs, run_tap, tap_config


def test_a_wrong_client_secret_is_named_once_and_costs_one_refresh(sim):
    config = tap_config(sim, sim.url, client_secret="not-the-app-secret")
    run = run_tap(config, streams=["free_busy"])
    assert run.returncode == 1
    spent = costs(sim)
    tokens = sum(c["/oauth/token"] for c in spent.values())
    assert tokens == 1, "after the first refusal, no other account asks to be refused alike"
    assert sum(sum(c.values()) for c in spent.values()) == 1
    last = run.stderr.strip().splitlines()[-1]
    assert "`client_id`/`client_secret`" in last and "invalid_client" in last
    assert "3 account(s) failed" in last
    assert "re-authorised: connect it again" not in run.stderr, "not the account's remedy"
    refused = [line for line in run.stderr.splitlines() if "FAILED account" in line]
    assert refused == [], "one cause, not once per account"
    lines = run.stderr.splitlines()
    said = [n for n, line in enumerate(lines) if "refused the application's own" in line]
    skipped = [n for n, line in enumerate(lines) if "skipped: it failed earlier" in line]
    assert len(said) == 2 and said[1] == len(lines) - 1, "what happened first, and in the end"
    assert skipped and said[0] < min(skipped), "said before any 'failed earlier'"


def test_typos_in_setting_names_are_refused_with_the_closest_name(sim):
    """A schedule hides a warning: by default a mistyped setting stops the run, before any
    request; `strict_settings: false` allows extra keys, each warned about."""
    config = tap_config(sim, sim.url, tz_id="Europe/Paris", end_dat="2027-01-01")
    sim.requests.clear()
    strict = run_tap(config, streams=["accounts"])
    assert strict.returncode != 0
    assert "Unknown setting `tz_id` (did you mean `tzid`?)." in strict.stderr
    assert "Unknown setting `end_dat` (did you mean `end_date`?)." in strict.stderr
    assert "it is ignored" not in strict.stderr and "`strict_settings` false" in strict.stderr
    assert sim.requests == [], "refused before any request"
    run = run_tap({**config, "strict_settings": False}, streams=["accounts"])
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Unknown setting `end_dat` (did you mean `end_date`?): it is ignored." in run.stderr
    assert "Unknown setting `tz_id` (did you mean `tzid`?): it is ignored." in run.stderr


def test_about_names_every_stream_and_says_which_settings_are_required():
    from tests.meltano.test_config import tap_cli

    about = tap_cli("--about", "--format=markdown").stdout
    intro = about.split("## Capabilities")[0]
    for stream in ("free_busy", "calendars", "accounts", "scheduling_requests"):
        assert stream in intro, stream
    for name in ("access_token", "accounts", "accounts_file"):
        row = next(line for line in about.splitlines() if line.startswith(f"| {name} |"))
        assert "one of access_token, accounts or accounts_file is required" in row.lower(), name


def test_help_says_what_the_tap_does_and_how_to_start():
    from tests.meltano.test_config import tap_cli

    text = tap_cli("--help").stdout
    assert "Execute the Singer tap." not in text, "not the SDK's generic line"
    for needed in (
        "free_busy",
        "calendars",
        "accounts",
        "scheduling_requests",
        "one of access_token, accounts or accounts_file",
        "Example config.json",
        "tap-cronofy-push",
        "tap-cronofy-shards",
        "tap-cronofy-check --config config.json",
        "meltano invoke tap-cronofy:check",
        "--state",
    ):
        assert needed in text, needed


def test_a_wrong_client_secret_also_used_for_scheduling_requests_is_not_blamed_on_them(sim):
    """With no scheduler_client_secret, scheduling_requests sends client_secret, which
    Cronofy refused this run already: refused again, it says so in one warning (no
    "unhandled error"), and the last line stays the one cause, the application's
    credentials (a wrong client_id alone would leave the query working)."""
    ids = sim.tap_config(sim.url)["scheduling_request_ids"][:3]
    config = tap_config(
        sim, sim.url, client_secret="not-the-app-secret", scheduling_request_ids=ids
    )
    run = run_tap(config)
    assert run.returncode == 1
    assert "scheduling_requests not read: Cronofy refused client_secret as its Bearer" in (
        run.stderr
    )
    assert "unhandled error" not in run.stderr and "Traceback" not in run.stderr
    assert len([r for r in sim.requests if "scheduling_requests" in r["path"]]) == 1
    last = run.stderr.strip().splitlines()[-1]
    assert "`client_id`/`client_secret`" in last and "invalid_client" in last
