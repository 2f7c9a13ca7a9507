"""Answers as Cronofy's own SDKs record them (tests/fixtures/sdk/, each naming its repository,
commit and path), replayed over HTTP to the real tap: every record is checked field by field
against the fixture it came from. These shapes are not the simulator's: no userinfo embedded
in free_busy, no event_uid, a service account's userinfo."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.helpers import ROOT, run_tap

FIXTURES = ROOT / "tests" / "fixtures" / "sdk"
TOKEN = "replay-access-token-1234"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


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
                replay.requests.append(path)
                body = answers.get(path)
                ok = self.headers.get("Authorization") == f"Bearer {token}"
                status = 200 if body is not None and ok else 401 if not ok else 404
                payload = json.dumps(body if status == 200 else {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                replay.posted.append(json.loads(self.rfile.read(length) or b"{}"))
                replay.requests.append(self.path)
                body = (posts or {}).get(self.path)
                payload = json.dumps(body or {}).encode()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


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
    assert replay.requests.count("/v1/userinfo") == 1, "asked once, for both streams"


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
