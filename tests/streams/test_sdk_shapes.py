"""Answers as Cronofy's own SDKs record them (tests/fixtures/sdk/, each naming its repository,
commit and path), replayed over HTTP to the real tap: every record is checked field by field
against the fixture it came from. These shapes are not the simulator's: no userinfo embedded
in free_busy, no event_uid, a service account's userinfo."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.tap import ROOT, TapRun, run_tap
from tap_cronofy.changelog import ChangeLog

FIXTURES = ROOT / "tests" / "fixtures" / "sdk"
TOKEN = "replay-access-token-1234"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@dataclass
class Status:
    """An answer with another status than 200 (``body`` None: no body at all; ``text``: a
    body that is not JSON, sent as it is)."""

    status: int
    body: object = None
    text: str | None = None


class Replay:
    """Serves the fixtures on 127.0.0.1 as Cronofy's API host, on the day they were made."""

    def __init__(
        self, answers: dict[str, dict], today: str, token: str = TOKEN, posts: dict | None = None
    ) -> None:
        replay = self
        self.requests: list[str] = []
        self.posted: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def date_time_string(self, timestamp: float | None = None) -> str:
                moment = dt.datetime.fromisoformat(today).replace(tzinfo=dt.timezone.utc)
                return moment.strftime("%a, %d %b %Y %H:%M:%S GMT")

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                replay.requests.append(f"{self.command} {path}")
                body = answers.get(f"{self.command} {path}", answers.get(path))
                ok = self.headers.get("Authorization") == f"Bearer {token}"
                status = 200 if body is not None and ok else 401 if not ok else 404
                raw = None
                if isinstance(body, Status):
                    status, body, raw = body.status, body.body, body.text
                payload = b"" if body is None else json.dumps(body).encode()
                if raw is not None:
                    payload = raw.encode()
                if status == 404:
                    payload = b'{"error": "not_found"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_DELETE(self) -> None:
                self.do_GET()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                posted = json.loads(self.rfile.read(length) or b"{}")
                replay.posted.append(posted)
                replay.requests.append(f"POST {self.path}")
                body = (posts or {}).get(self.path)
                if callable(body):  # an answer that depends on what was posted
                    body = body(posted)
                status = 200 if body is not None else 404
                if isinstance(body, Status):
                    status, body = body.status, body.body
                payload = json.dumps(body or {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def replay_run(
    answers: dict, today: str, streams: list[str], **settings: object
) -> tuple[TapRun, Replay]:
    """The real tap, configured with one access token, against ``answers`` served as
    Cronofy on ``today``; the run, and the replay (its requests) once it has stopped."""
    replay = Replay(answers, today)
    try:
        run = run_tap({"api_url": replay.url, "access_token": TOKEN, **settings}, streams=streams)
    finally:
        replay.stop()
    return run, replay


def test_free_busy_pages_without_userinfo_or_ids_load_as_recorded():
    fixture = load("free_busy-two-pages-cronofy-ruby.json")
    userinfo = load("userinfo-service-account-cronofy-ruby.json")["body"]
    first, second = (json.loads(json.dumps(page)) for page in fixture["pages"])
    answers = {"/v1/userinfo": userinfo, "/v1/free_busy": first}
    replay = Replay(answers, today="2014-09-10T12:00:00")
    try:
        first["pages"]["next_page"] = f"{replay.url}/v1/free_busy/pages/08a07b034306679e"
        answers["/v1/free_busy/pages/08a07b034306679e"] = second
        config = {"api_url": replay.url, "access_token": TOKEN, "max_retries": 2}
        run = run_tap(config, streams=["free_busy", "accounts"])
    finally:
        replay.stop()
    assert run.returncode == 0, run.stderr[-2000:]
    periods = [p for page in fixture["pages"] for p in page["free_busy"]]
    records = run.records("free_busy")
    assert len(records) == len(periods)
    uids = set()
    for period, record in zip(periods, records):
        all_day = len(period["start"]) == 10

        def utc(value: str, all_day: bool = all_day) -> str:
            return f"{value}T00:00:00Z" if all_day else value

        assert record["account_id"] == userinfo["sub"], "filed under the token's account"
        assert record["calendar_id"] == period["calendar_id"]
        assert (record["start"], record["end"]) == (period["start"], period["end"])
        assert (record["start_time"], record["end_time"]) == (
            utc(period["start"]),
            utc(period["end"]),
        )
        assert record["all_day"] is all_day
        assert record["free_busy_status"] == period["free_busy_status"]
        assert record["deleted"] is False and record["_sdc_deleted_at"] is None
        assert record["event_id"] is None and record["start_tzid"] is None
        assert record["event_uid"].startswith("period_"), "a stable key without include_ids"
        uids.add(record["event_uid"])
    assert len(uids) == len(periods), "every period its own key"
    (account,) = run.records("accounts")
    assert account["account_id"] == userinfo["sub"]
    assert account["cronofy_type"] == "service_account"
    assert replay.requests.count("GET /v1/userinfo") == 1, "asked once, for both streams"


def test_the_token_answer_the_sdk_records_is_taken_and_its_rotation_saved(tmp_path):
    token = load("token-refresh-cronofy-ruby.json")
    userinfo = load("userinfo-service-account-cronofy-ruby.json")["body"]
    page = load("free_busy-two-pages-cronofy-ruby.json")["pages"][1]  # a last page
    answers = {"/v1/userinfo": userinfo, "/v1/free_busy": page}
    replay = Replay(
        answers,
        today="2014-09-10T12:00:00",
        token=token["body"]["access_token"],
        posts={"/oauth/token": token["body"]},
    )
    sent = token["request"]
    accounts = tmp_path / "accounts.json"
    accounts.write_text(
        json.dumps(
            [
                {
                    "account_id": userinfo["sub"],
                    "access_token": "stale-access-token-0000",
                    "refresh_token": sent["refresh_token"],
                }
            ]
        )
    )
    try:
        config = {
            "api_url": replay.url,
            "accounts_file": str(accounts),
            "client_id": sent["client_id"],
            "client_secret": sent["client_secret"],
            "max_retries": 2,
        }
        run = run_tap(config, streams=["free_busy"])
    finally:
        replay.stop()
    assert run.returncode == 0, run.stderr[-2000:]
    assert replay.posted == [sent], "the refresh Cronofy's SDK sends, field for field"
    assert len(run.records("free_busy")) == len(page["free_busy"])
    (entry,) = json.loads(accounts.read_text())
    assert entry["refresh_token"] == token["body"]["refresh_token"], "the rotation is kept"
    assert entry["access_token"] == token["body"]["access_token"]
    for secret in (token["body"]["access_token"], token["body"]["refresh_token"]):
        assert secret not in run.stderr


def test_a_calendar_list_without_sub_or_optional_fields_loads_as_recorded():
    calendars = load("calendars-cronofy-ruby.json")["body"]
    userinfo = load("userinfo-service-account-cronofy-ruby.json")["body"]
    answers = {"/v1/userinfo": userinfo, "/v1/calendars": calendars}
    run, replay = replay_run(answers, "2014-09-10T12:00:00", ["calendars"])
    assert run.returncode == 0, run.stderr[-2000:]
    records = {r["calendar_id"]: r for r in run.records("calendars")}
    assert set(records) == {c["calendar_id"] for c in calendars["calendars"]}
    for calendar in calendars["calendars"]:
        record = records[calendar["calendar_id"]]
        assert record["account_id"] == userinfo["sub"], "filed under the token's checked account"
        for name, value in calendar.items():
            assert record[name] == value, name
        for name in ("profile_id", "calendar_primary", "permission_level", "calendar_color"):
            assert record[name] is None, f"{name}: not sent, so null"
        assert record["_sdc_deleted_at"] is None, "listed (calendar_deleted is its own flag)"
    assert replay.requests.count("GET /v1/userinfo") == 1, "no sub in the list: asked once"


def test_channels_as_the_sdk_records_them_create_keep_and_close(tmp_path):
    # The stubs' callback URLs are http://; Cronofy posts only to https://, which the tap
    # insists on: the same URLs over https.
    fixture = json.loads(
        (FIXTURES / "channels-cronofy-ruby.json").read_text().replace("http://", "https://")
    )
    userinfo = load("userinfo-service-account-cronofy-ruby.json")["body"]
    listed = fixture["list"]
    mine = listed["channels"][0]["callback_url"]
    twice = {"channels": [listed["channels"][0], {**listed["channels"][1], "callback_url": mine}]}
    outcomes = {}
    for case, answer in (("create", {"channels": []}), ("keep", listed), ("close", twice)):
        answers = {
            "/v1/userinfo": userinfo,
            "GET /v1/channels": answer,
            "DELETE /v1/channels/channel_id_456": Status(fixture["close"]["status"]),
        }
        replay = Replay(answers, "2014-09-10T12:00:00", posts={"/v1/channels": fixture["create"]})
        config = tmp_path / f"{case}.json"
        config.write_text(
            json.dumps(
                {
                    "api_url": replay.url,
                    "access_token": TOKEN,
                    "notification_url": mine,
                    "change_log": str(tmp_path / f"{case}.db"),
                }
            )
        )
        try:
            done = subprocess.run(
                [sys.executable, "-m", "tap_cronofy.push", "channels", "--config", str(config)],
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=120,
            )
        finally:
            replay.stop()
        assert done.returncode == 0, (case, done.stderr[-2000:])
        outcomes[case] = [r for r in replay.requests if "/v1/channels" in r]
        channels = ChangeLog(str(tmp_path / f"{case}.db")).channels()
        assert channels == {"channel_id_123": userinfo["sub"]}, case
    assert outcomes == {
        "create": ["GET /v1/channels", "POST /v1/channels"],
        "keep": ["GET /v1/channels"],
        "close": ["GET /v1/channels", "DELETE /v1/channels/channel_id_456"],
    }


def test_an_empty_401_fails_the_account_with_what_to_do():
    """Cronofy may answer 401 with no body at all."""
    userinfo = load("userinfo-service-account-cronofy-ruby.json")["body"]
    answers = {"/v1/userinfo": userinfo, "/v1/free_busy": Status(401)}
    run, _ = replay_run(answers, "2014-09-10T12:00:00", ["free_busy"])
    assert run.returncode == 1
    assert f"FAILED account {userinfo['sub']}" in run.stderr
    assert "Re-authorise the account" in run.stderr and "Traceback" not in run.stderr


def test_the_docs_incremental_example_loads_its_deletion_as_a_tombstone():
    fixture = load("free_busy-incremental-cronofy-docs.json")
    userinfo = load("userinfo-service-account-cronofy-ruby.json")["body"]
    answers = {"/v1/userinfo": userinfo, "/v1/free_busy": fixture["body"]}
    run, _ = replay_run(answers, "2021-06-25T09:00:00", ["free_busy"])
    assert run.returncode == 0, run.stderr[-2000:]
    records = {r["event_uid"]: r for r in run.records("free_busy")}
    for period in fixture["body"]["free_busy"]:
        record = records[period["event_uid"]]
        for name in ("calendar_id", "start", "end", "free_busy_status", "deleted"):
            assert record[name] == period[name], name
        assert (record["_sdc_deleted_at"] is not None) is period["deleted"], "a tombstone"
        assert record["_sdc_deleted_at"] in (None, record["last_modified"])


# Every userinfo shape the SDKs record, with the paths the schema does not declare (named
# once in a warning, not loaded), read off each fixture by hand.
USERINFO = {
    "userinfo-account-profiles-cronofy-csharp.json": [],
    "userinfo-account-sparse-profile-cronofy-node.json": [],
    "userinfo-application-calendar-cronofy-csharp.json": [],
    "userinfo-service-account-cronofy-csharp.json": [],
    "userinfo-service-account-cronofy-ruby.json": ["cronofy.service_account.domain"],
    "userinfo-minimal-pycronofy.json": [],
}


def expected_account(body: dict) -> dict:
    """The accounts record a userinfo body makes, written from Cronofy's userinfo document:
    every documented field by name, null where the body has none."""
    data = body.get("cronofy.data") or {}

    def only(value: dict | None, names: tuple[str, ...]) -> dict | None:
        return None if value is None else {n: value.get(n) for n in names}

    calendar = [
        "calendar_id",
        "calendar_name",
        "profile_id",
        "profile_name",
        "provider_name",
        "calendar_readonly",
        "calendar_deleted",
        "calendar_primary",
        "calendar_integrated_conferencing_available",
        "calendar_attachments_available",
        "permission_level",
        "calendar_color",
    ]
    profile = [
        "provider_name",
        "provider_service",
        "profile_id",
        "profile_name",
        "profile_connected",
        "profile_initial_sync_required",
        "profile_relink_url",
    ]
    profiles = data.get("profiles")
    conferencing = data.get("conferencing_profiles")
    return {
        "account_id": body["sub"],
        "email": body.get("email"),
        "name": body.get("name"),
        "zoneinfo": body.get("zoneinfo"),
        "cronofy_type": body.get("cronofy.type"),
        "authorization": only(data.get("authorization"), ("scope", "delegated_scope", "status")),
        "profiles": None
        if profiles is None
        else [
            {
                **only(p, tuple(profile)),
                "profile_calendars": [
                    only(c, tuple(calendar)) for c in p.get("profile_calendars") or []
                ],
            }
            for p in profiles
        ],
        "conferencing_profiles": None
        if conferencing is None
        else [
            only(
                p,
                (
                    "provider_name",
                    "profile_id",
                    "profile_name",
                    "profile_connected",
                    "profile_relink_url",
                ),
            )
            for p in conferencing
        ],
        "application_calendar_id": body.get("application_calendar_id"),
        "application_calendar": data.get("application_calendar"),
        "service_account": data.get("service_account"),
    }


@pytest.mark.parametrize("name", sorted(USERINFO))
def test_each_userinfo_shape_the_sdks_record_loads_field_by_field(name):
    userinfo = load(name)["body"]
    page = load("free_busy-last-page-no-next-page-cronofy-csharp.json")["body"]
    answers = {"/v1/userinfo": userinfo, "/v1/free_busy": page}
    run, _ = replay_run(answers, "2014-12-01T12:00:00", ["free_busy", "accounts"])
    assert run.returncode == 0, run.stderr[-2000:]
    (account,) = run.records("accounts")
    expected = expected_account(userinfo)
    for field, value in expected.items():
        assert account[field] == value, field
    assert [r["account_id"] for r in run.records("free_busy")] == [userinfo["sub"]]
    named = [
        line for line in run.stderr.splitlines() if "userinfo fields the schema does not" in line
    ]
    if USERINFO[name]:
        (line,) = named  # once, naming each
        assert line.endswith(
            f"not loaded: {', '.join(USERINFO[name])}. Please report them so they can be added."
        ), line
    else:
        assert named == []


@pytest.mark.parametrize(
    "name",
    [
        "token-refresh-cronofy-ruby.json",
        "token-refresh-with-type-scope-cronofy-node.json",
        "token-refresh-without-type-scope-pycronofy.json",
        "token-application-calendar-cronofy-php.json",
    ],
)
def test_every_token_answer_shape_is_taken_with_or_without_token_type_and_scope(tmp_path, name):
    token = load(name)["body"]
    userinfo = load("userinfo-service-account-cronofy-ruby.json")["body"]
    page = load("free_busy-two-pages-cronofy-ruby.json")["pages"][1]
    replay = Replay(
        {"/v1/userinfo": userinfo, "/v1/free_busy": page},
        today="2014-09-10T12:00:00",
        token=token["access_token"],
        posts={"/oauth/token": token},
    )
    accounts = tmp_path / "accounts.json"
    entry = {"account_id": userinfo["sub"], "access_token": "stale-0000", "refresh_token": "old-1"}
    accounts.write_text(json.dumps([entry]))
    try:
        config = {
            "api_url": replay.url,
            "accounts_file": str(accounts),
            "client_id": "client-id-1234",
            "client_secret": "client-secret-5678",
            "max_retries": 2,
        }
        run = run_tap(config, streams=["free_busy"])
    finally:
        replay.stop()
    assert run.returncode == 0, run.stderr[-2000:]
    assert replay.posted[0]["grant_type"] == "refresh_token"
    assert replay.posted[0]["refresh_token"] == "old-1"
    assert len(run.records("free_busy")) == len(page["free_busy"])
    (saved,) = json.loads(accounts.read_text())
    assert (saved["access_token"], saved["refresh_token"]) == (
        token["access_token"],
        token["refresh_token"],
    )


def test_an_invalid_grant_as_the_sdk_records_it_fails_that_account_alone(tmp_path):
    refused = load("token-invalid-grant-cronofy-csharp.json")
    token = load("token-refresh-without-type-scope-pycronofy.json")["body"]
    userinfo = load("userinfo-service-account-cronofy-ruby.json")["body"]
    page = load("free_busy-two-pages-cronofy-ruby.json")["pages"][1]

    def answer(posted: dict) -> object:
        if posted.get("refresh_token") == "revoked-1":
            return Status(refused["status"], refused["body"])
        return token

    replay = Replay(
        {"/v1/userinfo": userinfo, "/v1/free_busy": page},
        today="2014-09-10T12:00:00",
        token=token["access_token"],
        posts={"/oauth/token": answer},
    )
    gone = "acc_000000000000000000000001"
    entries = [
        {"account_id": gone, "access_token": "stale-1", "refresh_token": "revoked-1"},
        {"account_id": userinfo["sub"], "access_token": "stale-2", "refresh_token": "good-2"},
    ]
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps(entries))
    try:
        config = {
            "api_url": replay.url,
            "accounts_file": str(accounts),
            "client_id": "client-id-1234",
            "client_secret": "client-secret-5678",
            "max_retries": 2,
        }
        run = run_tap(config, streams=["free_busy"])
    finally:
        replay.stop()
    assert run.returncode == 1
    assert f"FAILED account {gone}" in run.stderr and "must be re-authorised" in run.stderr
    assert "Traceback" not in run.stderr
    assert {r["account_id"] for r in run.records("free_busy")} == {userinfo["sub"]}
    saved = {e["account_id"]: e for e in json.loads(accounts.read_text())}
    assert saved[gone]["refresh_token"] == "revoked-1", "a refused token is left as it was"


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("error-422-required-cronofy-php.json", "`event_id`"),
        ("error-422-no-errors-field-cronofy-ruby.json", "no field"),
        ("error-422-not-json-cronofy-ruby.json", "Not JSON"),
        ("error-422-malformed-json-cronofy-csharp.json", "must be a boolean"),
        ("error-401-www-authenticate-cronofy-node.json", "Re-authorise the account"),
    ],
)
def test_each_error_body_the_sdks_record_fails_the_account_saying_what_cronofy_said(name, says):
    fixture = load(name)
    userinfo = load("userinfo-service-account-cronofy-ruby.json")["body"]
    answer = Status(fixture["status"], fixture.get("body"), fixture.get("body_text"))
    answers = {"/v1/userinfo": userinfo, "/v1/free_busy": answer}
    run, replay = replay_run(answers, "2014-09-10T12:00:00", ["free_busy"], max_retries=1)
    assert run.returncode == 1, run.stderr[-2000:]
    assert f"FAILED account {userinfo['sub']}" in run.stderr
    assert says in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert replay.requests.count("GET /v1/free_busy") == 1, "a 4xx is not retried"


def test_the_csharp_calendar_list_loads_field_by_field_naming_nothing():
    calendars = load("calendars-list-cronofy-csharp.json")["body"]
    userinfo = load("userinfo-service-account-cronofy-ruby.json")["body"]
    answers = {"/v1/userinfo": userinfo, "/v1/calendars": calendars}
    run, _ = replay_run(answers, "2014-09-10T12:00:00", ["calendars"])
    assert run.returncode == 0, run.stderr[-2000:]
    records = {r["calendar_id"]: r for r in run.records("calendars")}
    assert set(records) == {c["calendar_id"] for c in calendars["calendars"]}
    for calendar in calendars["calendars"]:
        record = records[calendar["calendar_id"]]
        for field, value in calendar.items():
            assert record[field] == value, field
        for field in ("permission_level", "calendar_color", "calendar_attachments_available"):
            assert field in calendar or record[field] is None, field
    assert "does not declare" not in run.stderr


def test_a_calendar_field_no_one_documented_is_named_once_and_not_loaded():
    calendars = json.loads(json.dumps(load("calendars-list-cronofy-csharp.json")["body"]))
    for calendar in calendars["calendars"]:
        calendar["calendar_timezone"] = "Europe/London"  # a field no document names (yet)
    userinfo = load("userinfo-service-account-cronofy-ruby.json")["body"]
    answers = {"/v1/userinfo": userinfo, "/v1/calendars": calendars}
    run, _ = replay_run(answers, "2014-09-10T12:00:00", ["calendars"])
    assert run.returncode == 0, run.stderr[-2000:]
    named = [line for line in run.stderr.splitlines() if "does not declare" in line]
    assert len(named) == 1 and "calendar list fields" in named[0], named
    assert "not loaded: calendars[].calendar_timezone." in named[0]
    assert all("calendar_timezone" not in r for r in run.records("calendars"))
