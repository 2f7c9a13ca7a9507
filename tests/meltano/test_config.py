"""Bad settings fail before any HTTP request, with a message naming the setting."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness import docs
from harness.tap import ROOT, run_tap, tap_config


def cronofy_requests(sim) -> list[dict]:
    return [r for r in sim.requests if not r["path"].startswith("/_sim")]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"data_center": "mars"}, "data_center"),
        ({"tzid": "Mars/Olympus_Mons"}, "tzid"),
        ({"tzid": ""}, "tzid"),
        ({"accounts": [{"access_token": "abcdefgh"}]}, "account_id"),
        ({"accounts": [{"account_id": "acc_1"}]}, "access_token"),
        (
            {
                "accounts": [
                    {"account_id": "acc_1", "access_token": "a1b2c3d4"},
                    {"account_id": "acc_1", "access_token": "e5f6g7h8"},
                ]
            },
            "listed more than once as `account_id`",
        ),
        ({"calendar_ids": ["cal_1", "cal_1"]}, "calendar_ids"),
        ({"calendar_ids": ["cal 1"]}, "calendar_ids"),
        ({"scheduling_request_ids": ["srq_1 "]}, "scheduling_request_ids"),
        ({"start_date": "last tuesday"}, "start_date"),
        ({"start_date": "2026-05-02", "end_date": "2026-05-01"}, "start_date"),
        ({"api_url": "ftp://example.com"}, "api_url"),
        ({"max_retries": 0}, "max_retries"),
        ({"include_managed": "yes"}, "include_managed"),
        ({"access_token": ""}, "access_token"),
        ({"client_id": ""}, "`client_id` is set but empty"),
        ({"client_secret": "  "}, "`client_secret` is set but empty"),
        ({"requests_per_minute": "many"}, "requests_per_minute"),
        ({"client_id": None}, "client_id"),
        ({"scheduling_request_ids_file": "/nonexistent/ids.txt"}, "scheduling_request_ids_file"),
    ],
)
def test_invalid_setting_fails_fast_naming_it(sim, change, named):
    config = tap_config(sim, sim.url)
    config.update(change)
    config = {k: v for k, v in config.items() if v is not None}
    run = run_tap(config)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]  # all that `meltano config test` shows
    assert named in last and len(last) < 1000, last
    assert run.records() == []
    assert cronofy_requests(sim) == [], "no request may be sent with an invalid config"


def test_free_busy_selected_without_any_token(sim):
    config = tap_config(sim, sim.url)
    del config["accounts"]
    run = run_tap(config, streams=["free_busy"])
    assert run.returncode != 0
    assert "access_token" in run.stderr and "accounts" in run.stderr
    assert cronofy_requests(sim) == []


def test_scheduling_requests_selected_without_client_secret(sim):
    config = tap_config(sim, sim.url, scheduling_request_ids=list(sim.scheduling)[:3])
    del config["client_secret"]
    for account in config["accounts"]:
        account.pop("refresh_token")
    run = run_tap(config, streams=["scheduling_requests"])
    assert run.returncode != 0
    assert "client_secret" in run.stderr
    assert cronofy_requests(sim) == []


def tap_cli(*args: str) -> subprocess.CompletedProcess:
    """The tap's command line with no config at all."""
    return subprocess.run(
        [sys.executable, "-m", "tap_cronofy", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_discovery_needs_no_credentials():
    process = tap_cli("--discover")
    assert process.returncode == 0, process.stderr
    streams = {s["tap_stream_id"] for s in json.loads(process.stdout)["streams"]}
    assert streams == {"free_busy", "scheduling_requests", "calendars", "accounts"}


def test_catalog_json_matches_discovery():
    committed = json.loads((ROOT / "catalog.json").read_text())
    assert json.loads(tap_cli("--discover").stdout) == committed, (
        "run `make catalog` and commit catalog.json"
    )


def test_readme_settings_table_matches_about():
    about = tap_cli("--about", "--format=markdown").stdout
    readme = docs.page("configuration.md")
    rows = [line for line in about.splitlines() if line.startswith("| ")]
    assert rows
    missing = [row for row in rows if row not in readme]
    assert not missing, f"docs/configuration.md settings are stale (make about): {missing[:3]}"


def test_config_errors_never_echo_a_secret(sim):
    token = "tok-secret-value-123"
    config = tap_config(sim, sim.url, data_center=token)
    config["accounts"][0]["access_token"] = token
    run = run_tap(config)
    assert run.returncode != 0
    assert "data_center" in run.stderr
    assert token not in run.stderr and token not in run.stdout
    assert cronofy_requests(sim) == []


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_accounts_file_holds_the_accounts(sim, tmp_path, suffix):
    import yaml

    config = tap_config(sim, sim.url)
    accounts = config.pop("accounts")
    path = tmp_path / f"accounts{suffix}"
    path.write_text(json.dumps(accounts) if suffix == ".json" else yaml.safe_dump(accounts))
    run = run_tap({**config, "accounts_file": str(path)}, streams=["free_busy"])
    assert run.returncode == 0, run.stderr
    assert {r["account_id"] for r in run.records()} == set(sim.accounts)
    for account in accounts:
        assert account["access_token"] not in run.stderr


def test_a_broken_accounts_file_fails_before_any_request_without_echoing_tokens(sim, tmp_path):
    config = tap_config(sim, sim.url)
    accounts = config.pop("accounts")
    leaked = accounts[0].pop("account_id") and accounts[0]["access_token"]
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(accounts))
    run = run_tap({**config, "accounts_file": str(path)})
    assert run.returncode != 0
    assert "accounts_file" in run.stderr and "account_id" in run.stderr
    assert leaked not in run.stderr
    assert cronofy_requests(sim) == []
    path.write_text("[{not json")
    run = run_tap({**config, "accounts_file": str(path)})
    assert run.returncode != 0 and "accounts_file" in run.stderr


def test_when_every_account_fails_the_last_line_says_why_and_what_to_do(sim):
    """`meltano config test` shows only the last line: it must carry the reason."""
    for account in sim.accounts.values():
        account.revoked = True  # every refresh token dead
    run = run_tap(tap_config(sim, sim.url), streams=["free_busy"])
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert "3 account(s) failed" in last and "No account was synced" in last
    assert "400 (invalid_grant)" in last and "re-authorised" in last
    assert "(2 more listed above)" in last
