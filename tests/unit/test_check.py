"""The credentials check, in process: one request per account, what each row says."""

from __future__ import annotations

from tap_cronofy.accounts import ADVICE, APP_REFUSED, UNNAMED
from tap_cronofy.check.cli import summary, table
from tap_cronofy.check.probe import APP, Result, application_line, probe, unnamed
from tests.unit.test_accounts import APP as CLIENT
from tests.unit.test_accounts import ENTRIES, make, paths

OK_REFRESH = (200, {"access_token": "fresh", "expires_in": 3600, "scope": "read_free_busy"})


def test_an_account_with_refresh_credentials_costs_one_token_request():
    accounts, client, _ = make({"accounts": ENTRIES, **CLIENT}, {"/oauth/token": [OK_REFRESH]})
    assert probe("acc_a", accounts, client) == Result("acc_a", True, "ok: token refreshed")
    assert application_line(accounts) is None
    assert paths(client) == ["/oauth/token"]


def test_a_refresh_granting_no_free_busy_scope_is_not_ok():
    grant = (200, {"access_token": "fresh", "scope": "create_calendar"})
    accounts, client, _ = make({"accounts": ENTRIES, **CLIENT}, {"/oauth/token": [grant]})
    assert probe("acc_a", accounts, client) == Result(
        "acc_a", False, f"granted 'create_calendar'. {ADVICE[403]}"
    )


def test_with_identity_a_token_of_another_account_is_found_at_one_request_more():
    who = {"/oauth/token": [OK_REFRESH], "/v1/userinfo": [(200, {"sub": "acc_b"})]}
    accounts, client, report = make({"accounts": ENTRIES, **CLIENT}, who)
    result = probe("acc_a", accounts, client, identity=True)
    assert result.account_id == "acc_a" and result.ok is False
    assert "belongs to acc_b" in result.why
    assert paths(client) == ["/oauth/token", "/v1/userinfo"]
    assert list(report.failed_accounts) == ["acc_a"]
    right = {"/oauth/token": [OK_REFRESH], "/v1/userinfo": [(200, {"sub": "acc_a"})]}
    accounts, client, _ = make({"accounts": ENTRIES, **CLIENT}, right)
    assert probe("acc_a", accounts, client, identity=True) == Result(
        "acc_a", True, "ok: token refreshed, its account checked"
    )


def test_a_refused_refresh_says_to_reauthorise_the_account():
    refused = (400, {"error": "invalid_grant"})
    accounts, client, report = make({"accounts": ENTRIES, **CLIENT}, {"/oauth/token": [refused]})
    result = probe("acc_a", accounts, client)
    assert result.account_id == "acc_a" and result.ok is False
    assert "invalid_grant" in result.why and "re-authorised" in result.why
    assert report.failed_accounts == {"acc_a": result.why}


def test_refused_application_credentials_cost_one_request_for_the_whole_fleet():
    refused = (400, {"error": "invalid_client"})
    accounts, client, _ = make({"accounts": ENTRIES, **CLIENT}, {"/oauth/token": [refused]})
    results = [probe(a, accounts, client) for a in ("acc_a", "acc_b")]
    assert results == [Result("acc_a", False, APP), Result("acc_b", False, APP)]
    assert application_line(accounts) == APP_REFUSED
    assert paths(client) == ["/oauth/token"]
    assert summary(results, APP_REFUSED) == APP_REFUSED


def test_an_access_token_alone_is_checked_by_its_userinfo_naming_its_account():
    entries = [{"account_id": "acc_a", "access_token": "token-a"}]
    accounts, client, _ = make({"accounts": entries}, {"/v1/userinfo": [(200, {"sub": "acc_a"})]})
    assert probe("acc_a", accounts, client) == Result(
        "acc_a", True, "ok: token accepted, its account checked"
    )
    assert paths(client) == ["/v1/userinfo"]
    accounts, client, _ = make({"accounts": entries}, {"/v1/userinfo": [(200, {"sub": "acc_z"})]})
    result = probe("acc_a", accounts, client)
    assert result.account_id == "acc_a" and result.ok is False
    assert "belongs to acc_z" in result.why


def test_the_table_lists_failures_first_each_account_once():
    results = [
        Result("acc_b", True, "ok: token refreshed"),
        Result("acc_c", False, "refused"),
        Result("acc_a", False, "gone"),
    ]
    lines = table(results)
    assert lines[0].split()[:2] == ["account", "ok"]
    assert [line.split()[:2] for line in lines[1:]] == [
        ["acc_a", "NO"],
        ["acc_c", "NO"],
        ["acc_b", "yes"],
    ]
    assert summary(results, None) == "3 accounts checked: 2 need attention (above)."
    assert summary(results[:1], None) == "1 account checked: all ok."
    assert "No account" in summary([], None)


def test_a_lone_token_that_could_not_be_named_reports_why():
    assert unnamed({UNNAMED: "401 Unauthorized"}) == Result(UNNAMED, False, "401 Unauthorized")
    assert unnamed({}) == Result(UNNAMED, False, "Cronofy did not name its account")
