"""Accounts: tokens and refresh, one rejection per run, identity checks, rotated tokens."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import stat

import pytest
import yaml

from tap_cronofy.accounts import UNNAMED, Accounts, account_failure
from tap_cronofy.client import Reply
from tap_cronofy.errors import AccountError, CredentialError, CronofyAPIError
from tap_cronofy.report import RunReport
from tap_cronofy.settings import Settings
from tap_cronofy.tokenstore import FileTokenStore, StoredToken, TokenStoreError

LOG = logging.getLogger("tap-cronofy-unit")
APP = {"client_id": "cid", "client_secret": "client-secret-1"}
NOW = dt.datetime(2026, 12, 1, 10, tzinfo=dt.timezone.utc)


class ScriptedClient:
    """Stands in for CronofyClient (unit tests have no network): answers by path, and
    records every request with the Bearer it carried."""

    def __init__(self, answers: dict[str, list]) -> None:
        self.answers = answers
        self.sent: list[tuple[str, str | None]] = []
        self.bodies: list[dict] = []

    def url(self, path: str) -> str:
        return f"https://api.test{path}"

    def _next(self, path: str):
        answer = self.answers[path].pop(0) if len(self.answers[path]) > 1 else self.answers[path][0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get(self, url: str, *, params=None, credential) -> Reply:
        path = url.removeprefix("https://api.test")
        token = credential.bearer(self)
        self.sent.append((path, token))
        status, body = self._next(path)
        if status == 401:
            credential.rejected(token, self)
            token = credential.bearer(self)
            self.sent.append((path, token))
            status, body = self._next(path)
            if status == 401:
                credential.rejected(token, self)
        return Reply(status, body, NOW, path)

    def token_request(self, body: dict) -> Reply:
        self.sent.append(("/oauth/token", None))
        self.bodies.append(body)
        status, answer = self._next("/oauth/token")
        return Reply(status, answer, NOW, "/oauth/token")


def make(config: dict, answers: dict[str, list]) -> tuple[Accounts, ScriptedClient, RunReport]:
    client = ScriptedClient(answers)
    report = RunReport()
    settings = Settings.from_config(config)
    return Accounts(settings, client, LOG, report), client, report  # type: ignore[arg-type]


def paths(client: ScriptedClient) -> list[str]:
    return [path for path, _ in client.sent]


ENTRIES = [
    {"account_id": "acc_a", "access_token": "token-a", "refresh_token": "rt-a"},
    {"account_id": "acc_b", "access_token": "token-b", "refresh_token": "rt-b"},
]


# Refresh and rejection


def test_a_refresh_comes_first_and_its_token_is_used():
    accounts, client, _ = make(
        {"accounts": ENTRIES, **APP},
        {
            "/oauth/token": [(200, {"access_token": "fresh-a", "expires_in": 3600})],
            "/v1/userinfo": [(200, {"sub": "acc_a"})],
        },
    )
    accounts.userinfo("acc_a")
    assert client.sent == [("/oauth/token", None), ("/v1/userinfo", "fresh-a")]
    assert accounts.credential("acc_a").refresh_count == 1


def test_a_refused_refresh_fails_the_account_for_the_whole_run():
    accounts, client, report = make(
        {"accounts": ENTRIES, **APP},
        {"/oauth/token": [(400, {"error": "invalid_grant"})], "/v1/userinfo": [(200, {})]},
    )
    with pytest.raises(AccountError) as caught:
        accounts.userinfo("acc_a")
    assert "invalid_grant" in str(caught.value) and caught.value.final
    failure, new = accounts.fail("acc_a", caught.value)
    assert new is True, "held by the credential, but said by no stream yet: the first says it"
    assert accounts.fail("acc_a", caught.value) == (failure, False), "then never again"
    assert report.failed_accounts == {"acc_a": str(failure)}
    # every later use: the same failure, no request
    for _ in range(3):
        with pytest.raises(AccountError) as again:
            accounts.credential("acc_a")
        assert again.value is caught.value
    assert paths(client) == ["/oauth/token"]


def test_another_failure_of_an_account_later_in_the_run_is_said_too():
    """A failure that is not final (a 503 given up) lets the next stream try the account:
    if that fails too, for its own cause, it is said, not called "skipped"."""
    accounts, _, _ = make({"accounts": ENTRIES, **APP}, {})
    first = CronofyAPIError("Giving up after 5 tries (503)", status=503)
    failure, new = accounts.fail("acc_a", first)
    assert new is True
    assert accounts.fail("acc_a", failure) == (failure, False), "the same failure: said once"
    other, new = accounts.fail("acc_a", CronofyAPIError("422: tzid", status=422))
    assert new is True and other is not failure


def test_a_401_after_refreshing_fails_the_account_once():
    accounts, client, _ = make(
        {"accounts": ENTRIES, **APP},
        {
            "/oauth/token": [(200, {"access_token": "fresh-a"}), (200, {"access_token": "2nd"})],
            "/v1/userinfo": [(401, {})],
        },
    )
    with pytest.raises(AccountError, match="even with a freshly refreshed token"):
        accounts.userinfo("acc_a")
    with pytest.raises(AccountError):
        accounts.credential("acc_a")
    assert paths(client) == ["/oauth/token", "/v1/userinfo"]


def test_without_refresh_credentials_a_401_fails_the_account():
    accounts, _client, _ = make(
        {"accounts": [{"account_id": "acc_a", "access_token": "token-a"}]},
        {"/v1/userinfo": [(401, {})]},
    )
    with pytest.raises(AccountError, match="no refresh credentials") as caught:
        accounts.userinfo("acc_a")
    assert caught.value.final and caught.value.status == 401
    with pytest.raises(AccountError):
        accounts.credential("acc_a")


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    """The accounts module's clock, set by the test."""
    now = [1000.0]
    monkeypatch.setattr("tap_cronofy.accounts.time.time", lambda: now[0])
    return now


def test_a_token_is_refreshed_again_shortly_before_it_expires(clock):
    accounts, client, _ = make(
        {"accounts": ENTRIES, **APP},
        {
            "/oauth/token": [
                (200, {"access_token": "fresh-1", "expires_in": 3600}),
                (200, {"access_token": "fresh-2", "expires_in": 3600}),
            ],
            "/v1/calendars": [(200, {})],
        },
    )
    credential = accounts.credential("acc_a")
    assert credential.bearer(client) == "fresh-1"  # type: ignore[arg-type]
    clock[0] += 3600 - 120  # the margin before expiry: still fresh
    assert credential.bearer(client) == "fresh-1"  # type: ignore[arg-type]
    clock[0] += 1
    assert credential.bearer(client) == "fresh-2"  # type: ignore[arg-type]
    assert credential.refresh_count == 2


def test_a_short_lived_token_is_refreshed_at_half_its_life(clock):
    clock[0] = 0.0
    accounts, client, _ = make(
        {"accounts": ENTRIES, **APP},
        {
            "/oauth/token": [
                (200, {"access_token": "f1", "expires_in": 100}),
                (200, {"access_token": "f2"}),
            ]
        },
    )
    credential = accounts.credential("acc_a")
    assert credential.bearer(client) == "f1"  # type: ignore[arg-type]
    clock[0] = 50.0
    assert credential.bearer(client) == "f1"  # type: ignore[arg-type]
    clock[0] = 50.5
    assert credential.bearer(client) == "f2"  # type: ignore[arg-type]
    clock[0] = 1e9  # no expires_in: never refreshed again
    assert credential.bearer(client) == "f2"  # type: ignore[arg-type]


def test_transient_failures_are_not_final():
    accounts, _client, report = make(
        {"accounts": ENTRIES, **APP},
        {"/oauth/token": [(200, {"access_token": "fresh-a"})], "/v1/userinfo": [(200, {})]},
    )
    failure, new = accounts.fail("acc_a", CronofyAPIError("Giving up after 5 tries", status=503))
    assert new and not failure.final
    assert accounts.credential("acc_a").failure is None, "other streams may still try"
    assert report.failed_accounts["acc_a"] == "Giving up after 5 tries"


@pytest.mark.parametrize("status", [401, 403, 423])
def test_credential_errors_are_final_and_advised(status):
    failure = account_failure("acc_a", CredentialError(f"{status} X for path /v1/y", status=status))
    assert failure.final and failure.status == status
    assert str(failure).startswith(f"{status} X for path /v1/y for account acc_a. ")


def test_a_final_failure_reported_by_a_stream_stops_the_others():
    accounts, _client, _ = make(
        {"accounts": ENTRIES, **APP},
        {"/oauth/token": [(200, {"access_token": "fresh-a"})], "/v1/userinfo": [(200, {})]},
    )
    accounts.credential("acc_a")
    failure, new = accounts.fail("acc_a", CredentialError("423 Locked", status=423))
    assert new
    with pytest.raises(AccountError) as caught:
        accounts.credential("acc_a")
    assert caught.value is failure
    assert accounts.fail("acc_a", failure)[1] is False
    accounts.credential("acc_b")  # the other account is untouched


# Identity


def test_a_token_of_another_account_fails_naming_both_ids():
    accounts, _client, _report = make(
        {"accounts": ENTRIES, **APP},
        {"/oauth/token": [(200, {"access_token": "fresh-token-x"})], "/v1/userinfo": [(200, {})]},
    )
    with pytest.raises(AccountError) as caught:
        accounts.verify("acc_a", "acc_b")
    message = str(caught.value)
    assert "configured for account acc_a belongs to acc_b" in message and caught.value.final
    with pytest.raises(AccountError):
        accounts.credential("acc_a")


def test_an_answer_without_sub_is_checked_by_one_lookup():
    accounts, client, _ = make(
        {"accounts": ENTRIES, **APP},
        {
            "/oauth/token": [(200, {"access_token": "fresh-token-x"})],
            "/v1/userinfo": [(200, {"sub": "acc_a", "email": "a@x"})],
        },
    )
    accounts.verify("acc_a", None)
    accounts.verify("acc_a", None)
    accounts.verify("acc_a", "acc_a")
    assert paths(client).count("/v1/userinfo") == 1
    assert accounts.userinfo("acc_a")["email"] == "a@x", "the lookup serves the accounts stream"


def test_a_lookup_that_names_another_account_fails():
    accounts, _client, _ = make(
        {"accounts": ENTRIES, **APP},
        {
            "/oauth/token": [(200, {"access_token": "fresh-token-x"})],
            "/v1/userinfo": [(200, {"sub": "x"})],
        },
    )
    with pytest.raises(AccountError, match="belongs to x"):
        accounts.verify("acc_a", None)


def test_an_answer_naming_no_one_is_not_loaded():
    accounts, _, _ = make(
        {"accounts": ENTRIES, **APP},
        {"/oauth/token": [(200, {"access_token": "fresh-token-x"})], "/v1/userinfo": [(200, {})]},
    )
    with pytest.raises(AccountError, match="names no account"):
        accounts.verify("acc_a", None)


def test_an_embedded_userinfo_spares_the_request():
    accounts, client, _ = make({"accounts": ENTRIES, **APP}, {"/v1/userinfo": [(200, {})]})
    accounts.remember_userinfo("acc_a", {"sub": "acc_a", "name": "A"})
    accounts.remember_userinfo("acc_b", "not an object")
    assert accounts.userinfo("acc_a") == {"sub": "acc_a", "name": "A"}
    assert client.sent == []


# A lone access_token


def test_a_lone_access_token_is_named_by_its_userinfo_once():
    accounts, client, report = make(
        {"access_token": "token-1"}, {"/v1/userinfo": [(200, {"sub": "acc_z", "email": "z@x"})]}
    )
    assert accounts.ids() == ["acc_z"] and accounts.ids() == ["acc_z"]
    accounts.verify("acc_z", None)
    assert accounts.userinfo("acc_z")["email"] == "z@x"
    assert accounts.credential("acc_z").label == "account acc_z"
    assert paths(client) == ["/v1/userinfo"], "one lookup serves ids, identity and userinfo"
    assert report.failed_accounts == {}


def test_a_refused_lone_token_is_a_failed_account_not_a_crash():
    accounts, client, report = make({"access_token": "token-1"}, {"/v1/userinfo": [(401, {})]})
    assert accounts.ids() == []
    assert accounts.ids() == []
    assert paths(client) == ["/v1/userinfo"]
    (reason,) = report.failed_accounts.values()
    assert list(report.failed_accounts) == [UNNAMED]
    assert "401 Unauthorized for the account of the configured access_token" in reason


def test_a_lone_token_without_sub_is_a_failed_account():
    accounts, _, report = make({"access_token": "token-1"}, {"/v1/userinfo": [(200, {})]})
    assert accounts.ids() == []
    assert "names no account" in report.failed_accounts[UNNAMED]


def test_no_accounts():
    accounts, client, _ = make({}, {})
    assert accounts.ids() == [] and client.sent == []


def test_ids_are_sorted_and_need_no_request():
    entries = list(reversed(ENTRIES))
    accounts, client, _ = make({"accounts": entries, **APP}, {})
    assert accounts.ids() == ["acc_a", "acc_b"] and client.sent == []


# Rotated refresh tokens


def rotating(tmp_path, text: str, name: str = "accounts.json", **config):
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o640)  # not mkstemp's 0o600: the mode must be copied
    accounts, _client, _ = make(
        {"accounts_file": str(path), **APP, **config},
        {
            "/oauth/token": [(200, {"access_token": "fresh-token-x", "refresh_token": "rt-new"})],
            "/v1/userinfo": [(200, {"sub": "acc_a"})],
        },
    )
    return path, accounts


def test_a_rotated_refresh_token_is_written_back_to_a_json_file(tmp_path):
    path, accounts = rotating(tmp_path, json.dumps(ENTRIES))
    accounts.userinfo("acc_a")
    saved = json.loads(path.read_text())
    assert saved[0] == {
        "account_id": "acc_a",
        "access_token": "fresh-token-x",
        "refresh_token": "rt-new",
    }
    assert saved[1] == ENTRIES[1], "the other entries are untouched"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [".accounts.json.lock", "accounts.json"], "no temporary file left"


def test_a_rotated_refresh_token_keeps_a_yaml_file_yaml(tmp_path):
    path, accounts = rotating(tmp_path, yaml.safe_dump({"accounts": ENTRIES}), "accounts.yaml")
    accounts.userinfo("acc_a")
    saved = yaml.safe_load(path.read_text())
    assert saved["accounts"][0]["refresh_token"] == "rt-new"


def test_writing_back_can_be_turned_off(tmp_path, caplog):
    original = json.dumps(ENTRIES)
    path, accounts = rotating(tmp_path, original, save_rotated_refresh_tokens=False)
    with caplog.at_level(logging.WARNING):
        accounts.userinfo("acc_a")
    assert path.read_text() == original
    assert "NEW refresh token for account acc_a" in caplog.text


def test_a_failed_write_back_is_logged_and_the_run_goes_on(tmp_path, caplog):
    path, accounts = rotating(tmp_path, json.dumps(ENTRIES))
    path.write_text(json.dumps(ENTRIES[1:]))  # edited meanwhile: acc_a is gone from it
    with caplog.at_level(logging.WARNING):
        assert accounts.userinfo("acc_a") == {"sub": "acc_a"}
    assert "could not be saved" in caplog.text and "NEW refresh token" in caplog.text


def test_save_refuses_an_ambiguous_file(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([ENTRIES[0], ENTRIES[0]]))
    with pytest.raises(TokenStoreError, match="2 entries for account acc_a"):
        FileTokenStore(path).save("acc_a", StoredToken("at-x", "rt-x"))


def test_save_refresh_token_rewrites_the_target_of_a_symlink(tmp_path):
    real = tmp_path / "real.json"
    real.write_text(json.dumps(ENTRIES))
    link = tmp_path / "link.json"
    os.symlink(real, link)
    FileTokenStore(link).save("acc_b", StoredToken("at-b2", "rt-b2"))
    assert link.is_symlink()
    assert json.loads(real.read_text())[1]["refresh_token"] == "rt-b2"
