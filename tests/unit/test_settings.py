"""Settings: the schema's rules, the cross-field checks, and what the parsed Settings hold."""

from __future__ import annotations

import json

import pendulum
import pytest
from jsonschema import Draft7Validator

from tap_cronofy import settings as st
from tap_cronofy import zones
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
        ({"max_requests_per_run": -1}, "-1"),
        ({"max_requests_per_run": "many"}, "many"),
        ({"max_run_minutes": -5}, "-5"),
        ({"max_run_minutes": "soon"}, "soon"),
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
    assert error == "`accounts_file`: entry 0: 'access_token' is a required property."
    path.write_text('{"not": "a list"}')
    assert "must hold a list" in one_error({"accounts_file": str(path)})


# Parsing


def test_defaults_apply_and_accounts_are_sorted():
    s = Settings.from_config({"accounts": [TWO, ONE], **APP})
    assert [a.account_id for a in s.accounts] == ["acc_1", "acc_2"]
    assert [a.access_token for a in s.accounts] == ["token-aaaa", "token-bbbb"]
    assert s.has_account_list and s.accounts_file is None
    assert s.api_base == "https://api.cronofy.com"
    assert s.tzid == "Etc/UTC" and s.lookback_seconds == 600.0
    assert s.include_managed is True and s.localized_times is False
    assert s.save_rotated_refresh_tokens is True
    assert (s.requests_per_second, s.requests_per_minute) == (50, 500)
    assert s.max_parallel_accounts == 8 and s.full_resync_days == 0
    assert (s.max_requests_per_run, s.max_run_minutes) == (0, 0.0), "no budget by default"
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
        "`accounts`, `accounts_file` or `token_store`."
    ]
    assert st.selection_errors(Settings.from_config({}), {"scheduling_requests"}) == []


def test_scheduling_requests_need_a_secret_when_there_are_ids():
    s = Settings.from_config({"scheduling_request_ids": ["srq_1"]})
    (error,) = st.selection_errors(s, {"scheduling_requests"})
    assert error == (
        "scheduling_request_ids are set but neither `scheduler_client_secret` nor "
        "`client_secret` is: the scheduling request query needs the client_secret "
        "of an Internal Application as its Bearer token."
    )
    assert st.selection_errors(s, {"free_busy"}) != []  # no account
    ok = Settings.from_config({"scheduling_request_ids": ["srq_1"], "client_secret": "cs-1"})
    assert st.selection_errors(ok, {"scheduling_requests"}) == []


# The schema's building blocks (called at import: tested here by calling them again)


def test_seconds_accept_numbers_and_numeric_strings_from_zero_or_above_zero():
    from jsonschema import Draft202012Validator

    zero_ok = st._seconds().to_dict()
    assert zero_ok["type"] == ["number", "string", "null"]
    assert zero_ok["minimum"] == 0 and "exclusiveMinimum" not in zero_ok
    positive = st._seconds(positive=True).to_dict()
    assert positive["exclusiveMinimum"] == 0 and "minimum" not in positive

    def ok(schema: dict, value: object) -> bool:
        return Draft202012Validator(schema).is_valid(value)

    for value in (0, 0.0, "0", "0.0", 2, "2", "2.5", "10"):
        assert ok(zero_ok, value), value
    for value in (-1, "-1", "abc", "1e3", "", " 1", "1."):
        assert not ok(zero_ok, value), value
    for value in (0.5, "0.5", ".5", "1", "10", "10.25", "05"):
        assert ok(positive, value), value
    for value in (0, "0", "0.0", "00", ".0", "-1", "x"):
        assert not ok(positive, value), value


def test_ids_are_non_blank_strings_without_whitespace():
    schema = st._ids().to_dict()
    assert schema["items"]["pattern"] == r"^\S+$" and "array" in schema["type"]


def test_zone_names_come_from_the_tzdata_package_plus_utc_aliases():
    assert st.valid_zone("UTC") and st.valid_zone("Etc/UTC") and st.valid_zone("Asia/Tokyo")
    assert st.valid_zone("America/Coyhaique"), "tzdata 2025b's, whatever the host has"
    assert "Europe/Paris" in zones.names()
    assert not st.valid_zone("Not/AZone")


def test_a_zone_listed_but_not_loadable_is_refused(monkeypatch):
    monkeypatch.setattr(zones, "names", lambda: frozenset({"Fake/Listed"}))
    assert not st.valid_zone("Fake/Listed")


# What each error says, whole: the setting and what to do


def test_the_whole_messages_of_cross_field_rules():
    assert check({"accounts": [ONE], "refresh_token": "rt-x", **APP}) == [
        "`refresh_token` is set beside `accounts`/`accounts_file`: it belongs to one "
        "account, so it cannot serve every entry. Put each account's refresh_token in "
        "its entry and unset `refresh_token`."
    ]
    assert check({"accounts": [TWO]}) == [
        f"A refresh token is set but `{name}` is missing: tokens cannot be refreshed without "
        "the OAuth application's client_id and client_secret."
        for name in ("client_id", "client_secret")
    ]
    assert check({"batch_config": {"encoding": {}}}) == [
        "`batch_config` is not supported: with BATCH messages the SDK writes state before "
        "the target has loaded the batch, so a bookmark could get ahead of the warehouse."
    ]


def test_inline_accounts_are_left_to_the_schema():
    """The schema reports an incomplete inline entry; check() adds nothing of its own
    (the file checks are for accounts_file only)."""
    assert check({"accounts": [{"account_id": "acc_1"}]}) == []
    assert check({"accounts": [ONE], "accounts_file": "/nonexistent.json"}) == []
    assert check({"accounts": [{"account_id": "acc_1"}], "accounts_file": "/x.json"}) == []


def test_an_accounts_file_with_a_non_object_entry_is_reported_not_crashed(tmp_path):
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(["acc_1", ONE]))
    errors = check({"accounts_file": str(path)})
    assert errors == ["`accounts_file`: entry 0: must be of type object."]


def test_account_entries_says_what_the_file_must_hold(tmp_path):
    path = tmp_path / "accounts.json"
    path.write_text('"just a string"')
    with pytest.raises(ValueError) as caught:
        st.account_entries({"accounts_file": str(path)})
    assert str(caught.value) == (
        "it must hold a list of {account_id, access_token, refresh_token?} objects"
    )


def test_parse_date_names_what_it_got():
    with pytest.raises(ValueError) as caught:
        st.parse_date("10:30")
    assert str(caught.value) == "not a date: '10:30'"


def test_every_number_setting_is_parsed():
    s = Settings.from_config(
        {
            "max_retries": "3",
            "backoff_factor_seconds": "0.25",
            "max_retry_wait_seconds": "9",
            "requests_per_second": 7,
            "requests_per_minute": 70,
            "max_parallel_accounts": 2,
            "full_resync_days": 3,
            "max_requests_per_run": 6000,
            "max_run_minutes": "50.5",
        }
    )
    assert (s.max_requests_per_run, s.max_run_minutes) == (6000, 50.5)
    assert (s.max_retries, s.backoff_factor_seconds, s.max_retry_wait_seconds) == (3, 0.25, 9.0)
    assert (s.requests_per_second, s.requests_per_minute, s.max_parallel_accounts) == (7, 70, 2)
    assert s.full_resync_days == 3
    assert isinstance(s.max_retries, int) and isinstance(s.max_retry_wait_seconds, float)


def test_only_slashes_are_stripped_from_the_api_url():
    assert Settings.from_config({"api_url": "http://BOX//"}).api_base == "http://BOX"


def test_an_unreadable_ids_file_is_a_selection_error(tmp_path):
    s = Settings.from_config(
        {"scheduling_request_ids_file": str(tmp_path), "client_secret": "cs-1"}
    )
    (error,) = st.selection_errors(s, {"scheduling_requests"})
    assert error.startswith("`scheduling_request_ids_file` cannot be read: ")
    assert str(tmp_path) in error


@pytest.mark.parametrize("stream", ["free_busy", "calendars", "accounts"])
def test_each_per_account_stream_needs_an_account(stream):
    (error,) = st.selection_errors(Settings.from_config({}), {stream, "scheduling_requests"})
    assert error.startswith(f"{stream} selected but no account is configured")


def test_secrets_of_input_keeps_looking_past_what_it_cannot_read(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    found = st.secrets_of_input(
        [str(broken), {"accounts_file": "/nonexistent.json"}, {"client_secret": "later-1"}], {}
    )
    assert found == ["later-1"]


def test_secrets_of_input_takes_string_values_as_they_are():
    """A token that happens to be valid JSON (digits, quotes) stays the string it is."""
    env = {"TAP_CRONOFY_ACCESS_TOKEN": "12345678", "TAP_CRONOFY_CLIENT_SECRET": '"quoted"'}
    found = st.secrets_of_input(None, env)
    assert sorted(found) == sorted(["12345678", '"quoted"'])


def test_secrets_of_input_masks_an_accounts_value_given_as_text():
    assert st.secrets_of_input({"accounts": "[broken token-y"}, {}) == ["[broken token-y"]


def test_an_empty_or_blank_setting_is_said_plainly_naming_it():
    from tap_cronofy.tap import readable

    for value in ("", "   "):
        said = readable(f"'{value}' does not match '^\\\\S(.*\\\\S)?$' in config['client_id']")
        assert said.startswith("`client_id` is set but empty")
        assert "meltano config unset tap-cronofy client_id" in said
    other = "'eu' is not one of ['us', 'uk'] in config['data_center']"
    assert readable(other) == other
    assert readable("'x y' does not match '^\\\\S+$' in config['tzid']").startswith("'x y'")


def test_path_settings_are_relative_to_the_meltano_project_when_meltano_runs_the_tap(
    tmp_path, monkeypatch
):
    from tap_cronofy.settings import project_path

    assert project_path("accounts.json", {"MELTANO_PROJECT_ROOT": "/srv/proj"}) == (
        "/srv/proj/accounts.json"
    )
    assert project_path("/etc/a.json", {"MELTANO_PROJECT_ROOT": "/srv/proj"}) == "/etc/a.json"
    assert project_path("sub/a.json", {}) == "sub/a.json", "else the working directory"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert project_path("~/a.json", {"MELTANO_PROJECT_ROOT": "/srv"}) == f"{tmp_path}/a.json"
    # and every reader of a path setting goes through it
    (tmp_path / "accounts.json").write_text('[{"account_id": "acc_1", "access_token": "tok-1"}]')
    (tmp_path / "ids.txt").write_text("srq_1\n")
    monkeypatch.setenv("MELTANO_PROJECT_ROOT", str(tmp_path))
    monkeypatch.chdir("/")
    config = {"accounts_file": "accounts.json", "scheduling_request_ids_file": "ids.txt"}
    assert check(config) == []
    s = Settings.from_config(config)
    assert s.accounts_file == f"{tmp_path}/accounts.json"
    assert [a.account_id for a in s.accounts] == ["acc_1"]
    assert s.scheduling_request_ids() == ["srq_1"]


def test_an_unreadable_relative_path_says_what_it_was_relative_to(tmp_path, monkeypatch):
    monkeypatch.setenv("MELTANO_PROJECT_ROOT", str(tmp_path))
    errors = check({"accounts_file": "missing.json", "access_token": None})
    assert any(f"relative to the Meltano project, {tmp_path}" in e for e in errors), errors
    monkeypatch.delenv("MELTANO_PROJECT_ROOT")
    monkeypatch.chdir(tmp_path)
    errors = check({"scheduling_request_ids_file": "ids.txt"})
    assert any(f"(in {tmp_path})" in e for e in errors), errors
