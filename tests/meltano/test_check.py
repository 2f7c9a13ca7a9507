"""`tap-cronofy-check` as users run it, against the simulator: one request per account,
a row per account saying what is wrong and what to do, exit code 1 until all are ok."""

from __future__ import annotations

import json
import subprocess

from harness.project import BIN, meltano, meltano_env
from harness.tap import tap_config


def check(config: dict, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return subprocess.run(
        [str(BIN / "tap-cronofy-check"), "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def rows(done: subprocess.CompletedProcess) -> dict[str, tuple[str, str]]:
    found = {}
    for line in done.stdout.splitlines()[1:-1]:
        account, ok, why = line.split(None, 2)
        found[account] = (ok, why)
    return found


def test_the_check_names_each_broken_account_and_its_remedy_one_request_each(sim, tmp_path):
    ids = sorted(sim.accounts)
    config = tap_config(sim, sim.url)
    sim.accounts[ids[1]].refresh_token = "no-longer-valid"  # revoked since configured
    sim.accounts[ids[2]].scopes = {"create_calendar"}  # authorised without free-busy
    sim.requests.clear()
    done = check(config, tmp_path)
    assert done.returncode == 1, done.stderr
    found = rows(done)
    assert found[ids[0]] == ("yes", "ok: token refreshed")
    assert found[ids[1]][0] == "NO" and "invalid_grant" in found[ids[1]][1]
    assert "re-authorised" in found[ids[1]][1]
    assert found[ids[2]][0] == "NO" and "read_free_busy" in found[ids[2]][1]
    assert done.stdout.splitlines()[-1] == "3 accounts checked: 2 need attention (above)."
    assert "checked 3/3 accounts (2 need attention)" in done.stderr
    assert [r["path"] for r in sim.requests] == ["/oauth/token"] * 3
    for entry in config["accounts"]:  # one token request per account
        assert sum(entry["refresh_token"] in r["body"] for r in sim.requests) == 1
    assert sim.client_secret not in done.stdout + done.stderr


def test_wrong_application_credentials_cost_one_request_and_say_so_last(sim, tmp_path):
    config = tap_config(sim, sim.url, client_secret="not-the-secret")
    sim.requests.clear()
    done = check(config, tmp_path)
    assert done.returncode == 1
    assert len(sim.requests) == 1
    assert "`client_id`/`client_secret`: invalid_client" in done.stdout.splitlines()[-1]
    assert all(ok == "NO" and "client_id/client_secret" in why for ok, why in rows(done).values())


def test_all_ok_exits_0_and_a_rotated_refresh_token_is_saved(sim, tmp_path):
    sim.rotate_refresh_tokens = True
    config = tap_config(sim, sim.url)
    accounts_file = tmp_path / "accounts.json"
    accounts_file.write_text(json.dumps(config.pop("accounts")))
    config["accounts_file"] = str(accounts_file)
    done = check(config, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "3 accounts checked: all ok."
    saved = {a["account_id"]: a["refresh_token"] for a in json.loads(accounts_file.read_text())}
    assert saved == {a.account_id: a.refresh_token for a in sim.accounts.values()}


def config_test(settings: dict, tmp_path) -> str:
    """What `meltano config test tap-cronofy` prints after its verdict."""
    env = meltano_env(settings, MELTANO_DATABASE_URI=f"sqlite:///{tmp_path / 'meltano.db'}")
    done = meltano("config", "test", "tap-cronofy", env=env, check=False)
    assert done.returncode == 1
    lines = (done.stdout + done.stderr).splitlines()
    return lines[lines.index(next(x for x in lines if "Plugin configuration is invalid" in x)) + 1]


def test_meltano_config_test_shows_the_message_a_person_reads(sim, tmp_path):
    """Meltano's `config test` shows the tap's last output line: plain text, not a JSON log
    record, both for a broken account and for an invalid setting."""
    settings = sim.tap_config(sim.url)
    settings.pop("scheduling_request_ids")
    for account in settings["accounts"]:
        account["refresh_token"] = "revoked-long-ago"
    shown = config_test(settings, tmp_path)
    assert shown.startswith("3 account(s) failed: "), shown
    assert "invalid_grant" in shown and "re-authorised" in shown
    shown = config_test({**settings, "tzid": "Mars/Base"}, tmp_path)
    assert shown == (
        "Config validation failed: `tzid` must be an IANA time zone such as Etc/UTC or "
        "Europe/Paris, got 'Mars/Base'."
    )


def test_with_identity_the_check_finds_tokens_filed_under_the_wrong_account(sim, tmp_path):
    config = tap_config(sim, sim.url)
    first, second = config["accounts"][0], config["accounts"][1]
    for key in ("access_token", "refresh_token"):  # swapped, as a copy-paste slip would
        first[key], second[key] = second[key], first[key]
    assert check(config, tmp_path).returncode == 0, "a refresh alone cannot tell"
    path = tmp_path / "config.json"
    done = subprocess.run(
        [str(BIN / "tap-cronofy-check"), "--config", str(path), "--identity"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    found = rows(done)
    for mine, theirs in ((first, second), (second, first)):
        ok, why = found[mine["account_id"]]
        assert ok == "NO" and f"belongs to {theirs['account_id']}" in why
    assert "Parsing" not in done.stderr, "no line per setting before the table"
