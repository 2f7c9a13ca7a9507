"""Settings: the schema's rules, the cross-field checks, and what the parsed Settings hold."""

from __future__ import annotations

import json

import pendulum
import pytest
from jsonschema import Draft7Validator

from tap_cronofy import settings as st
from tap_cronofy.settings import CONFIG_SCHEMA, Settings, check

ONE = {"account_id": "acc_1", "access_token": "token-aaaa"}
TWO = {"account_id": "acc_2", "access_token": "token-bbbb", "refresh_token": "rt-bbbb"}
APP = {"client_id": "cid", "client_secret": "secret-1234"}


def schema_errors(config: dict) -> list[str]:
    return [e.message for e in Draft7Validator(CONFIG_SCHEMA).iter_errors(config)]


# The schema


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"data_center": "eu"}, "eu"),
        ({"access_token": " padded "}, "padded"),
        ({"access_token": ""}, "''"),
        ({"accounts": [{"account_id": "acc_1"}]}, "access_token"),
        ({"accounts": [{"account_id": "a b", "access_token": "tok1"}]}, "a b"),
        ({"calendar_ids": ["c1", "c1"]}, "non-unique"),
        ({"scheduling_request_ids": ["s", "s"]}, "non-unique"),
        ({"lookback_seconds": -1}, "-1"),
        ({"lookback_seconds": "abc"}, "abc"),
        ({"request_timeout_seconds": 0}, "0"),
        ({"request_timeout_seconds": "0"}, "'0'"),
        ({"requests_per_minute": 0}, "0"),
        ({"max_parallel_accounts": 0}, "0"),
        ({"max_retries": 0}, "0"),
        ({"full_resync_days": -1}, "-1"),
        ({"start_date": "yesterday"}, "yesterday"),
        ({"api_url": "ftp:/x"}, "ftp:/x"),
        ({"save_rotated_refresh_tokens": "yes"}, "yes"),
    ],
)
def test_the_schema_refuses(config, field):
    errors = schema_errors(config)
    assert errors and any(field in e for e in errors), errors


@pytest.mark.parametrize(
    "config",
    [
        {"lookback_seconds": "1.5", "request_timeout_seconds": "0.5"},
        {"lookback_seconds": 0, "request_timeout_seconds": 0.1},
        {"backoff_factor_seconds": "2", "max_retry_wait_seconds": "0"},
        {"api_url": "http://127.0.0.1:8765"},
        {"start_date": "2026-11-01", "end_date": "2026-12-01T00:00:00Z"},
    ],
)
def test_the_schema_accepts(config):
    assert schema_errors(config) == []


def test_secret_settings_are_flagged_and_found_nested():
    flagged = {n for n, spec in CONFIG_SCHEMA["properties"].items() if spec.get("secret")}
    assert {
        "access_token",
        "refresh_token",
        "client_secret",
        "scheduler_client_secret",
        "accounts",
    } <= flagged
    assert "client_id" not in flagged
    found = st.secret_values({"client_secret": "s-1", "accounts": [ONE, TWO], "tzid": "x"})
    assert sorted(found) == sorted(["s-1", "token-aaaa", "token-bbbb", "rt-bbbb"])


# Cross-field checks, before any request


def one_error(config: dict) -> str:
    errors = check(config)
    assert len(errors) == 1, errors
    return errors[0]


def test_a_sound_config_has_no_errors():
    assert check({"accounts": [ONE, TWO], **APP, "tzid": "Europe/Paris"}) == []
    assert check({"access_token": "t-1", "refresh_token": "r-1", **APP}) == []


def test_a_shared_refresh_token_beside_accounts_is_refused_naming_it():
    error = one_error({"accounts": [ONE, TWO], "refresh_token": "rt-shared", **APP})
    assert error.startswith("`refresh_token` is set beside `accounts`/`accounts_file`")
    assert "rt-shared" not in error


def test_a_shared_refresh_token_beside_an_accounts_file_is_refused(tmp_path):
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps([ONE]))
    assert "`refresh_token`" in one_error(
        {"accounts_file": str(path), "refresh_token": "rt-shared", **APP}
    )


def test_entries_never_inherit_a_top_level_refresh_token():
    s = Settings.from_config({"accounts": [ONE, TWO], "refresh_token": "rt-shared"})
    assert [a.refresh_token for a in s.accounts] == [None, "rt-bbbb"]


@pytest.mark.parametrize(
    ("config", "start"),
    [
        ({"tzid": "Mars/Olympus"}, "`tzid` must be an IANA time zone"),
        ({"accounts": [ONE, ONE]}, "'acc_1' is listed more than once"),
        ({"accounts": [ONE], "access_token": "t-1"}, "Set either `access_token` or"),
        ({"accounts": [TWO], "client_id": "cid"}, "A refresh token is set but `client_secret`"),
        ({"accounts": [TWO], "client_secret": "s-12"}, "A refresh token is set but `client_id`"),
        ({"batch_config": {"encoding": {}}}, "`batch_config` is not supported"),
        ({"scheduling_request_ids_file": "/nonexistent"}, "`scheduling_request_ids_file`"),
        ({"start_date": "2026-02-30"}, "`start_date` must be a date"),
        ({"start_date": "2026-12-01", "end_date": "2026-12-01"}, "`start_date` must be before"),
        ({"accounts_file": "/nonexistent.json"}, "`accounts_file` '/nonexistent.json' cannot"),
    ],
)
def test_each_cross_field_rule_names_its_setting(config, start):
    assert one_error(config).startswith(start)


def test_an_accounts_file_is_checked_like_the_setting(tmp_path):
    path = tmp_path / "accounts.yaml"
    path.write_text("accounts:\n  - account_id: acc_1\n")
    error = one_error({"accounts_file": str(path)})
    assert error.startswith("`accounts_file`: 'access_token' is a required property")
    path.write_text('{"not": "a list"}')
    assert "must hold a list" in one_error({"accounts_file": str(path)})


# Parsing


def test_defaults_apply_and_accounts_are_sorted():
    s = Settings.from_config({"accounts": [TWO, ONE], **APP})
    assert [a.account_id for a in s.accounts] == ["acc_1", "acc_2"]
    assert s.has_account_list and s.accounts_file is None
    assert s.api_base == "https://api.cronofy.com"
    assert s.tzid == "Etc/UTC" and s.lookback_seconds == 600.0
    assert s.include_managed is True and s.localized_times is False
    assert s.save_rotated_refresh_tokens is True
    assert (s.requests_per_second, s.requests_per_minute) == (50, 500)
    assert s.max_parallel_accounts == 8 and s.full_resync_days == 0
    assert s.scheduler_secret == "secret-1234"


def test_one_access_token_has_no_account_id_until_cronofy_names_it():
    s = Settings.from_config({"access_token": "t-1", "refresh_token": "r-1"})
    assert not s.has_account_list
    assert [(a.account_id, a.access_token, a.refresh_token) for a in s.accounts] == [
        (None, "t-1", "r-1")
    ]


def test_no_account_at_all():
    assert Settings.from_config({}).accounts == ()


def test_accounts_file_is_read_as_json_or_yaml(tmp_path):
    as_json = tmp_path / "a.json"
    as_json.write_text(json.dumps({"accounts": [ONE]}))
    as_yaml = tmp_path / "a.yml"
    as_yaml.write_text("- account_id: acc_2\n  access_token: token-bbbb\n")
    assert [
        a.account_id for a in Settings.from_config({"accounts_file": str(as_json)}).accounts
    ] == ["acc_1"]
    parsed = Settings.from_config({"accounts_file": str(as_yaml)})
    assert [a.account_id for a in parsed.accounts] == ["acc_2"]
    assert parsed.accounts_file == str(as_yaml)


def test_inline_accounts_win_over_the_file_and_nothing_is_written_back():
    s = Settings.from_config({"accounts": [ONE], "accounts_file": "/elsewhere.json"})
    assert s.accounts_file is None


@pytest.mark.parametrize(
    ("config", "base"),
    [
        ({"data_center": "uk"}, "https://api-uk.cronofy.com"),
        ({"data_center": "sg"}, "https://api-sg.cronofy.com"),
        ({"api_url": "http://127.0.0.1:9/", "data_center": "uk"}, "http://127.0.0.1:9"),
    ],
)
def test_the_api_base(config, base):
    assert Settings.from_config(config).api_base == base


def test_numbers_as_strings_and_dates_as_date_times():
    s = Settings.from_config(
        {
            "lookback_seconds": "7.5",
            "request_timeout_seconds": "3",
            "max_retries": 2,
            "start_date": "2026-11-01T12:30:00Z",
            "end_date": "2026-12-01",
            "scheduler_client_secret": "sched-1",
            "client_secret": "cs-1",
        }
    )
    assert s.lookback_seconds == 7.5 and s.request_timeout_seconds == 3.0
    assert s.start_date == pendulum.Date(2026, 11, 1) and s.end_date == pendulum.Date(2026, 12, 1)
    assert s.scheduler_secret == "sched-1"


def test_none_values_fall_back_to_defaults():
    s = Settings.from_config({"tzid": None, "lookback_seconds": None})
    assert s.tzid == "Etc/UTC" and s.lookback_seconds == 600.0


def test_parse_date_refuses_what_is_not_a_date():
    with pytest.raises(ValueError):
        st.parse_date("P1D")


def test_scheduling_request_ids_merge_setting_and_file(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("# exported\nsrq_2\n\n  srq_3  \nsrq_1\n")
    s = Settings.from_config(
        {"scheduling_request_ids": ["srq_1", "srq_2"], "scheduling_request_ids_file": str(path)}
    )
    assert s.scheduling_request_ids() == ["srq_1", "srq_2", "srq_3"]


def test_valid_zones():
    assert st.valid_zone("Europe/Paris") and st.valid_zone("UTC") and st.valid_zone("Etc/UTC")
    assert not st.valid_zone("Europe/Atlantis") and not st.valid_zone("")


# Secrets found before the SDK validates the config


def test_secrets_of_input_from_dicts_files_and_the_environment(tmp_path):
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps([TWO]))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"client_secret": "file-secret", "accounts_file": str(accounts)}))
    env = {
        "TAP_CRONOFY_ACCESS_TOKEN": "env-token",
        "TAP_CRONOFY_ACCOUNTS": '[{"account_id": "acc_9", "access_token": "env-nested"}]',
        "TAP_CRONOFY_TZID": "Etc/UTC",
    }
    found = st.secrets_of_input([str(config), {"refresh_token": "dict-rt"}], env)
    for secret in ("file-secret", "token-bbbb", "rt-bbbb", "env-token", "env-nested", "dict-rt"):
        assert secret in found
    assert "Etc/UTC" not in found


def test_an_unparsable_accounts_variable_is_still_a_secret():
    found = st.secrets_of_input(None, {"TAP_CRONOFY_ACCOUNTS": "[{broken json token-x"})
    assert "[{broken json token-x" in found


# Problems that depend on the selected streams


def test_per_account_streams_need_an_account():
    errors = st.selection_errors(Settings.from_config({}), {"free_busy", "accounts"})
    assert errors == [
        "accounts, free_busy selected but no account is configured: set `access_token`, "
        "`accounts` or `accounts_file`."
    ]
    assert st.selection_errors(Settings.from_config({}), {"scheduling_requests"}) == []


def test_scheduling_requests_need_a_secret_when_there_are_ids():
    s = Settings.from_config({"scheduling_request_ids": ["srq_1"]})
    (error,) = st.selection_errors(s, {"scheduling_requests"})
    assert "neither `scheduler_client_secret` nor `client_secret`" in error
    assert st.selection_errors(s, {"free_busy"}) != []  # no account
    ok = Settings.from_config({"scheduling_request_ids": ["srq_1"], "client_secret": "cs-1"})
    assert st.selection_errors(ok, {"scheduling_requests"}) == []
