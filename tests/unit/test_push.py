"""Change-driven sync, in process: the signature, the change log (SQLite), the receiver's
answers (Falcon's test client, no socket), channel planning and what each run queries."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import sqlite3
import threading
from pathlib import Path

import falcon.testing
import pytest

from tap_cronofy.changelog import SYNCED, ChangeLog, Pending
from tap_cronofy.push.channels import plan
from tap_cronofy.push.receiver import Pruner, make_app
from tap_cronofy.push.signature import HEADER, sign, verify
from tap_cronofy.settings import CONFIG_SCHEMA, Settings, check, secret_values
from tap_cronofy.window import NOTIFIED, change_due, completed, scope_fingerprint, sweep_moment

VECTOR_SECRET = "pDY0Oi7TJSP2hfNmZNkm5"
VECTOR_BODY = b'{"example":"well-known"}'
VECTOR_VALUE = "6r2/HjBkqymGegX0wOfifieeUXbbHwtV/LohHS+jv6c="
SECRET = "client-secret-for-tests"


# The signature


def test_the_documented_vector():
    assert sign(VECTOR_BODY, VECTOR_SECRET) == VECTOR_VALUE
    assert verify(VECTOR_BODY, VECTOR_VALUE, [VECTOR_SECRET])


@pytest.mark.parametrize(
    "header",
    [
        f"{sign(VECTOR_BODY, 'an-old-secret')},{VECTOR_VALUE}",
        f"{VECTOR_VALUE}, {sign(VECTOR_BODY, 'a-new-secret')}",
    ],
)
def test_one_of_several_comma_separated_values_is_enough(header):
    assert verify(VECTOR_BODY, header, [VECTOR_SECRET])
    assert verify(VECTOR_BODY, header, ["unrelated", VECTOR_SECRET])


@pytest.mark.parametrize(
    ("body", "header", "secrets"),
    [
        (VECTOR_BODY, None, [VECTOR_SECRET]),
        (VECTOR_BODY, "", [VECTOR_SECRET]),
        (VECTOR_BODY, VECTOR_VALUE, ["another-secret"]),
        (VECTOR_BODY, VECTOR_VALUE, []),
        (VECTOR_BODY, VECTOR_VALUE, [""]),
        (b'{"example":"well-known!"}', VECTOR_VALUE, [VECTOR_SECRET]),
        (VECTOR_BODY, VECTOR_VALUE[:-2], [VECTOR_SECRET]),
        (VECTOR_BODY, "not,a,signature", [VECTOR_SECRET]),
        (VECTOR_BODY, "ünïcode", [VECTOR_SECRET]),
    ],
)
def test_anything_else_is_refused(body, header, secrets):
    assert verify(body, header, secrets) is False


# The change log


@pytest.fixture
def log(tmp_path):
    log = ChangeLog(str(tmp_path / "changes.db"))
    log.add_channel("chn_a", "acc_a", "https://hooks.example/cronofy", 0.0)
    log.add_channel("chn_b", "acc_b", "https://hooks.example/cronofy", 0.0)
    return log


def test_notifications_are_numbered_and_filed_under_their_channels_account(log):
    assert log.position() == 0
    assert log.record("chn_a", "change", "2026-01-01T00:00:00Z", 10.0) == ("acc_a", 1)
    assert log.record("chn_b", "change", None, 11.0) == ("acc_b", 2)
    assert log.record("chn_a", "profile_disconnected", None, 12.0) == ("acc_a", 3)
    last, pruned, pending = log.snapshot(0)
    assert (last, pruned) == (3, 0)
    assert pending["acc_a"].last == {"change": 1, "profile_disconnected": 3}
    assert pending["acc_a"].count == 2
    assert pending["acc_b"].last == {"change": 2}


def test_an_unknown_channel_records_nothing(log):
    assert log.record("chn_elsewhere", "change", None, 1.0) is None
    assert log.position() == 0
    assert log.snapshot(0)[2] == {}


def test_a_snapshot_holds_only_what_follows_the_position(log):
    for at in range(5):
        log.record("chn_a", "change", None, float(at))
    log.record("chn_b", "change", None, 9.0)
    last, _, pending = log.snapshot(5)
    assert last == 6 and set(pending) == {"acc_b"}
    assert log.snapshot(6)[2] == {}


def test_pending_says_which_types_follow_an_accounts_own_position():
    pending = Pending(last={"change": 7, "profile_disconnected": 4}, count=3)
    assert pending.since(3) == ["change", "profile_disconnected"]
    assert pending.since(4) == ["change"]
    assert pending.since(7) == []


def test_pruning_deletes_by_age_and_says_how_far(log):
    for at in (1.0, 2.0, 3.0, 50.0):
        log.record("chn_a", "change", None, at)
    assert log.prune(before=10.0) == 3
    last, pruned, pending = log.snapshot(0)
    assert (last, pruned) == (4, 3) and pending["acc_a"].last == {"change": 4}
    assert log.prune(before=10.0) == 0
    assert log.pruned_through() == 3
    log.record("chn_a", "change", None, 60.0)
    assert log.position() == 5  # numbers are never reused


def test_channels_are_kept_moved_and_removed(log):
    assert log.channels() == {"chn_a": "acc_a", "chn_b": "acc_b"}
    log.add_channel("chn_a", "acc_c", "https://hooks.example/cronofy", 1.0)
    assert log.account_of("chn_a") == "acc_c"
    log.remove_channel("chn_b")
    assert log.channels() == {"chn_a": "acc_c"}
    assert log.account_of("chn_b") is None


def test_a_reopened_log_keeps_everything(log, tmp_path):
    log.record("chn_a", "change", None, 1.0)
    again = ChangeLog(f"sqlite:///{tmp_path / 'changes.db'}")
    assert again.position() == 1 and again.channels() == log.channels()
    assert again.describe() == f"SQLite {tmp_path / 'changes.db'}"


def test_a_postgres_log_is_described_without_its_password():
    from tap_cronofy.changelog import describe

    assert describe("postgresql://user:hunter2@db.internal:6432/hooks") == (
        "PostgreSQL db.internal:6432/hooks"
    )
    assert describe("sqlite:////var/lib/c.db") == "SQLite /var/lib/c.db"


# The receiver


def client(log, **kwargs):
    app, notifications = make_app(log, [SECRET], clock=lambda: 1000.0, **kwargs)
    return falcon.testing.TestClient(app), notifications


def post(test_client, body: object, secret: str | None = SECRET, raw: bytes | None = None):
    payload = raw if raw is not None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[HEADER] = sign(payload, secret)
    return test_client.simulate_post("/cronofy/notifications", body=payload, headers=headers)


def change(channel_id: str, kind: str = "change") -> dict:
    return {
        "notification": {"type": kind, "changes_since": "2026-12-01T10:00:00Z"},
        "channel": {"channel_id": channel_id, "callback_url": "https://hooks.example/cronofy"},
    }


def test_a_signed_change_is_recorded_under_its_account(log):
    test_client, notifications = client(log)
    answer = post(test_client, change("chn_b"))
    assert answer.status_code == 200
    _, _, pending = log.snapshot(0)
    assert pending["acc_b"].last == {"change": 1}
    assert notifications.counts == {"change": 1}


@pytest.mark.parametrize("secret", [None, "not-the-client-secret"])
def test_a_bad_or_missing_signature_is_401_and_records_nothing(log, secret):
    test_client, notifications = client(log)
    assert post(test_client, change("chn_a"), secret=secret).status_code == 401
    assert log.position() == 0
    assert notifications.counts == {"bad_signature": 1}


def test_a_body_changed_after_signing_is_refused(log):
    test_client, _ = client(log)
    body = json.dumps(change("chn_a")).encode()
    headers = {HEADER: sign(body, SECRET)}
    forged = body.replace(b"chn_a", b"chn_b")
    answer = test_client.simulate_post("/x", body=forged, headers=headers)
    assert answer.status_code == 401 and log.position() == 0


@pytest.mark.parametrize(
    ("body", "counted"),
    [
        (change("chn_a", "verification"), "verification"),
        (change("chn_a", "something_new"), "something_new"),
        (change("chn_unknown"), "unknown_channel"),
        ({"unexpected": True}, "malformed"),  # signed, but no notification object
    ],
)
def test_other_notifications_are_acknowledged_and_not_recorded(log, body, counted):
    test_client, notifications = client(log)
    assert post(test_client, body).status_code == 200
    assert log.position() == 0
    assert notifications.counts == {counted: 1}


def test_signed_garbage_is_acknowledged_and_not_recorded(log):
    test_client, notifications = client(log)
    assert post(test_client, None, raw=b"\xff not json").status_code == 200
    assert post(test_client, None, raw=b"[1, 2]").status_code == 200
    assert log.position() == 0 and notifications.counts == {"malformed": 2}


def test_an_oversized_body_is_refused(log):
    test_client, _ = client(log)
    answer = post(test_client, None, raw=b"{" + b" " * 70_000 + b"}")
    assert answer.status_code == 413 and log.position() == 0


def test_a_change_log_that_cannot_be_written_answers_503_so_cronofy_retries(log, tmp_path):
    test_client, notifications = client(log)
    with sqlite3.connect(tmp_path / "changes.db") as connection:
        connection.execute("DROP TABLE cronofy_notifications")
    assert post(test_client, change("chn_a")).status_code == 503
    assert notifications.counts == {"log_unavailable": 1}


def test_only_post_is_accepted_and_health_says_the_position(log):
    test_client, _ = client(log)
    assert test_client.simulate_get("/cronofy/notifications").status_code == 405
    post(test_client, change("chn_a"))
    health = test_client.simulate_get("/healthz")
    assert health.status_code == 200 and health.json == {"ok": True, "position": 1}


def test_the_pruner_keeps_the_retention(log):
    log.record("chn_a", "change", None, 1000.0)
    log.record("chn_a", "change", None, 1000.0 + 86400 * 3)
    pruner = Pruner(log, retention_days=2)
    assert pruner.once(now=1000.0 + 86400 * 3) == 1
    assert pruner.once(now=1000.0 + 86400 * 3) == 0
    assert log.pruned_through() == 1


# Channels


def test_planning_keeps_one_channel_to_the_url_and_leaves_others_alone():
    url = "https://hooks.example/cronofy"
    listed = [
        {"channel_id": "chn_3", "callback_url": url},
        {"channel_id": "chn_1", "callback_url": url},
        {"channel_id": "chn_2", "callback_url": "https://product.example/hooks"},
        {"channel_id": "chn_4", "callback_url": url},
    ]
    keep, close, others = plan(listed, url, logged={"chn_4"})
    assert keep["channel_id"] == "chn_4"  # the one the change log already files
    assert [c["channel_id"] for c in close] == ["chn_1", "chn_3"]
    assert others == 1
    keep, close, others = plan(listed, url, logged=set())
    assert keep["channel_id"] == "chn_1" and len(close) == 2
    assert plan(listed[2:3], url, logged=set()) == (None, [], 1)


# What a change-driven run queries


def settings(**config) -> Settings:
    return Settings.from_config({"access_token": "token-1234", **config})


NOW = dt.datetime(2026, 12, 1, 12, 30, tzinfo=dt.timezone.utc)
ACCOUNT = "acc_slot"  # its calendar_slot is computed below: tests hold for any slot


def synced(bookmark: str, position: int = 5, **extra) -> dict:
    return {
        "replication_key_value": bookmark,
        "scope": scope_fingerprint(settings()),
        "horizon": "2027-06-18",
        NOTIFIED: position,
        **extra,
    }


def test_an_account_without_usable_state_is_queried():
    s = settings()
    assert change_due(None, s, [], 0, ACCOUNT, NOW) == "first sync"
    assert change_due({}, s, [], 0, ACCOUNT, NOW) == "first sync"
    state = synced("2026-12-01T12:00:00Z")
    del state[NOTIFIED]
    assert change_due(state, s, [], 0, ACCOUNT, NOW) == "first run in change-driven mode"
    assert "scope changed" in change_due(
        synced("2026-12-01T12:00:00Z"), settings(tzid="Europe/Paris"), [], 0, ACCOUNT, NOW
    )


def test_a_notified_account_is_queried_and_an_unchanged_one_is_not():
    recent = synced(sweep_moment(ACCOUNT, NOW, "Etc/UTC"))  # swept at its latest slot
    s = settings()
    assert change_due(recent, s, [], 0, ACCOUNT, NOW) is None
    assert change_due(recent, s, ["change"], 0, ACCOUNT, NOW) == "notified (change)"
    assert (
        change_due(recent, s, ["change", "profile_disconnected"], 0, ACCOUNT, NOW)
        == "notified (change, profile_disconnected)"
    )


def test_a_position_the_log_was_pruned_past_is_queried():
    recent = synced(sweep_moment(ACCOUNT, NOW, "Etc/UTC"), position=5)
    reason = "the change log was pruned past its position"
    assert change_due(recent, settings(), [], 6, ACCOUNT, NOW) == reason
    assert change_due(recent, settings(), [], 5, ACCOUNT, NOW) is None


def test_the_daily_sweep_comes_once_its_slot_has_passed_since_the_last_query():
    moment = sweep_moment(ACCOUNT, NOW, "Etc/UTC")
    just_before = (
        dt.datetime.fromisoformat(moment.replace("Z", "+00:00")) - dt.timedelta(seconds=1)
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert change_due(synced(just_before), settings(), [], 0, ACCOUNT, NOW) == "daily sweep"
    assert change_due(synced(moment), settings(), [], 0, ACCOUNT, NOW) is None


@pytest.mark.parametrize("hour", range(24))
def test_the_sweep_moment_is_the_latest_slot_hour_at_or_before_now(hour):
    from tap_cronofy.window import calendar_slot

    now = dt.datetime(2026, 12, 1, hour, 15, tzinfo=dt.timezone.utc)
    moment = dt.datetime.fromisoformat(sweep_moment(ACCOUNT, now, "Etc/UTC").replace("Z", "+00:00"))
    assert moment <= now < moment + dt.timedelta(days=1)
    assert moment.hour == calendar_slot(ACCOUNT) and moment.minute == 0


def test_the_sweep_moment_is_in_the_query_zone():
    from tap_cronofy.window import calendar_slot

    moment = sweep_moment(ACCOUNT, NOW, "Asia/Tokyo")
    local = dt.datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(
        dt.timezone(dt.timedelta(hours=9))
    )
    assert local.hour == calendar_slot(ACCOUNT)


def test_a_completed_query_keeps_the_position_read_before_it():
    import pendulum

    from tap_cronofy.window import Read

    today = pendulum.Date(2026, 12, 1)
    reads = [Read("incremental", {})]
    state = completed(synced("x"), settings(), reads, today, "2026-12-01T12:00:00Z", 42)
    assert state[NOTIFIED] == 42
    polling = completed(synced("x"), settings(), reads, today, "2026-12-01T12:00:00Z")
    assert NOTIFIED not in polling


# Settings


@pytest.mark.parametrize(
    ("config", "wanted"),
    [
        ({"change_log": "mysql://db/x"}, "`change_log` must be a file path"),
        ({"change_log": "/no/such/folder/changes.db"}, "does not exist"),
        ({"notification_url": "http://hooks.example.com/x"}, "must be an https:// URL"),
    ],
)
def test_change_driven_settings_are_checked_before_any_request(config, wanted):
    errors = check({"access_token": "t", **config})
    assert len(errors) == 1 and wanted in errors[0]


@pytest.mark.parametrize(
    "config",
    [
        {"change_log": "changes.db"},
        {"change_log": "sqlite:///changes.db"},
        {"change_log": "postgresql://u:p@db/x"},
        {"notification_url": "https://hooks.example.com/cronofy"},
        {"notification_url": "http://127.0.0.1:8080/cronofy"},
    ],
)
def test_sound_change_driven_settings_pass(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check({"access_token": "t", **config}) == []


def test_a_relative_change_log_is_in_the_meltano_project(monkeypatch, tmp_path):
    monkeypatch.setenv("MELTANO_PROJECT_ROOT", str(tmp_path))
    assert settings(change_log="changes.db").change_log == str(tmp_path / "changes.db")
    assert settings(change_log="sqlite:///logs/c.db").change_log == str(tmp_path / "logs/c.db")
    url = "postgresql://u:p@db/x"
    assert settings(change_log=url).change_log == url


def test_only_the_password_of_a_change_log_url_is_a_secret():
    assert CONFIG_SCHEMA["properties"]["change_log"]["secret"] is True  # sensitive in Meltano
    assert secret_values({"change_log": "postgresql://hooks:s3cr3t-pw@db/x"}) == ["s3cr3t-pw"]
    assert secret_values({"change_log": "/var/lib/tap-cronofy/changes.db"}) == []


# The command line


def test_the_receiver_listens_where_the_environment_says(monkeypatch):
    from tap_cronofy.push.cli import parser

    monkeypatch.delenv("TAP_CRONOFY_PUSH_HOST", raising=False)
    monkeypatch.delenv("TAP_CRONOFY_PUSH_PORT", raising=False)
    args = parser().parse_args(["receive", "--config", "ENV"])
    assert (args.host, args.port, args.config) == ("127.0.0.1", 8080, ["ENV"])
    monkeypatch.setenv("TAP_CRONOFY_PUSH_HOST", "0.0.0.0")
    monkeypatch.setenv("TAP_CRONOFY_PUSH_PORT", "9090")
    args = parser().parse_args(["receive"])
    assert (args.host, args.port) == ("0.0.0.0", 9090)
    assert parser().parse_args(["receive", "--port", "7070"]).port == 7070
    assert parser().parse_args(["prune", "--config", "a.json", "--config", "b.json"]).config == [
        "a.json",
        "b.json",
    ]


def test_the_pruner_runs_at_start_and_then_on_its_interval(log):
    import threading

    log.record("chn_a", "change", None, 0.0)
    pruner = Pruner(log, retention_days=1)
    thread = threading.Thread(target=pruner.run, kwargs={"every": 0.01})
    thread.start()
    for _ in range(200):
        if log.pruned_through() == 1:
            break
        threading.Event().wait(0.01)
    log.record("chn_a", "change", None, 0.0)  # old again: the next round prunes it
    for _ in range(200):
        if log.pruned_through() == 2:
            break
        threading.Event().wait(0.01)
    pruner.stopped.set()
    thread.join(timeout=5)
    assert log.pruned_through() == 2 and not thread.is_alive()


# What mutation testing asked for


def test_an_empty_secret_before_a_valid_one_is_skipped():
    assert verify(VECTOR_BODY, VECTOR_VALUE, ["", VECTOR_SECRET])


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "PostgreSQL"])
def test_a_postgres_url_is_spoken_to_with_postgres_markers(monkeypatch, scheme):
    monkeypatch.setattr(ChangeLog, "_create", lambda self: None)
    log = ChangeLog(f"{scheme}://u:p@db/x")
    assert log.postgres is True and log._sql("a = ? and b = ?") == "a = %s and b = %s"
    sqlite = ChangeLog("/tmp/never-opened.db")
    assert sqlite.postgres is False and sqlite._sql("a = ?") == "a = ?"


def test_creating_the_tables_is_tried_three_times(monkeypatch):
    calls = []

    def flaky(self):
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("duplicate key value violates unique constraint")

    monkeypatch.setattr(ChangeLog, "_create", flaky)
    ChangeLog("/tmp/never-opened.db")
    assert len(calls) == 3

    def broken(self):
        calls.append(1)
        raise RuntimeError("no")

    calls.clear()
    monkeypatch.setattr(ChangeLog, "_create", broken)
    with pytest.raises(RuntimeError):
        ChangeLog("/tmp/never-opened.db")
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("target", "described"),
    [
        ("postgres://u:p@h:1/x", "PostgreSQL h:1/x"),
        ("postgresql:///x", "PostgreSQL localhost:5432/x"),
        ("/var/lib/c.db", "SQLite /var/lib/c.db"),
        ("changes.db", "SQLite changes.db"),
        ("sqlite:///relative.db", "SQLite relative.db"),
    ],
)
def test_a_change_log_is_described_by_where_it_is(target, described):
    from tap_cronofy.changelog import describe

    assert describe(target) == described


def test_a_log_keeps_its_identity_and_a_new_one_draws_another(log, tmp_path):
    again = ChangeLog(log.target)
    assert again.log_id == log.log_id and log.log_id > 0, "the same file: the same log"
    other = ChangeLog(str(tmp_path / "replaced.db"))
    assert other.log_id != log.log_id, "a replaced log numbers from 1 again: another identity"


def test_a_snapshot_gives_each_accounts_earliest_changes_since(log):
    log.record("chn_a", "change", "2026-01-02T00:00:00Z", 1.0)
    log.record("chn_a", "change", "2026-01-01T09:00:00Z", 2.0)
    log.record("chn_a", "change", None, 3.0)
    log.record("chn_b", "change", None, 4.0)
    _, _, pending = log.snapshot(0)
    assert pending["acc_a"].changes_since == "2026-01-01T09:00:00Z"
    assert pending["acc_b"].changes_since is None
    assert log.snapshot(1)[2]["acc_a"].changes_since == "2026-01-01T09:00:00Z"
    assert log.snapshot(2)[2]["acc_a"].changes_since is None


# The receiver on the open internet


def test_a_replayed_notification_is_acknowledged_and_records_nothing_more(log):
    test_client, notifications = client(log)
    body = change("chn_a")
    assert post(test_client, body).status_code == 200
    for _ in range(3):  # an attacker's replays, or Cronofy's own retries of it
        assert post(test_client, body).status_code == 200
    assert log.position() == 1
    assert notifications.counts == {"change": 1, "duplicate": 3}
    later = {**body, "notification": {"type": "change", "changes_since": "2026-12-01T11:00:00Z"}}
    assert post(test_client, later).status_code == 200 and log.position() == 2, "a new one"


def test_pruning_forgets_the_bodies_seen_with_the_notifications(log):
    assert log.record("chn_a", "change", None, 10.0, b"one") == ("acc_a", 1)
    assert log.record("chn_a", "change", None, 11.0, b"one") == ("acc_a", 0)
    assert log.prune(before=50.0) == 1
    assert log.record("chn_a", "change", None, 60.0, b"one") == ("acc_a", 2)


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps(
            {
                "notification": {"type": "change", "changes_since": {"x": 1}},
                "channel": {"channel_id": "chn_a"},
            }
        ).encode(),
        b"[" * 30000 + b"]" * 30000,  # nested deeper than the parser goes
        json.dumps({"notification": {"type": 7}, "channel": {"channel_id": "chn_a"}}).encode(),
        json.dumps({"notification": {"type": "change"}, "channel": {"channel_id": ["a"]}}).encode(),
        json.dumps({"notification": {"type": "change"}, "channel": "chn_a"}).encode(),
        json.dumps(
            {"notification": {"type": "change"}, "channel": {"channel_id": "c" * 5000}}
        ).encode(),
    ],
)
def test_a_signed_body_of_the_wrong_shape_is_acknowledged_never_a_5xx(log, raw):
    """Cronofy retries 5xx forever: a well-signed body the receiver cannot use is not an
    outage. Nothing is recorded; it is logged once."""
    test_client, notifications = client(log)
    assert post(test_client, None, raw=raw).status_code == 200
    assert log.position() == 0 and notifications.counts == {"malformed": 1}


def test_request_text_in_log_lines_is_escaped_and_cut(log, caplog):
    from tap_cronofy.push.receiver import LOG_TEXT, loggable

    assert loggable('a\nb\r\x1b[31m"') == 'a\\nb\\r\\u001b[31m\\"'
    long = "x" * 250_000
    assert loggable(long) == "x" * LOG_TEXT + f"...({250_000 - LOG_TEXT} more)"
    test_client, _ = client(log)
    forged = "/hook%0a2026-12-01 INFO Notification 999: change for account acc_FORGED"
    with caplog.at_level("WARNING", logger="tap_cronofy.push.receiver"):
        answer = test_client.simulate_post(forged, body=b"{}", headers={HEADER: "x"})
        test_client.simulate_post("/" + "p" * 250_000, body=b"{}")
    assert answer.status_code == 401
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert "\\nNotification" in lines[0] or "\\n2026" in lines[0]
    assert len(lines[1]) < 400, "a 250 KB path is not a 250 KB line"


def test_sqlite_keeps_one_connection_per_thread(log):
    log.position()
    first = log._local.sqlite
    log.record("chn_a", "change", None, 1.0)
    assert log._local.sqlite is first, "no connection opened (and WAL checkpointed) per call"
    seen = []
    worker = threading.Thread(target=lambda: (log.position(), seen.append(log._local.sqlite)))
    worker.start()
    worker.join()
    assert seen[0] is not first, "another thread, its own connection"
    assert log._local.sqlite.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


# Lifecycle notifications carry no id or time: the same bytes again, once served, are new

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "push"


def captured(name: str, channel_id: str = "chn_a") -> bytes:
    """The captured notification's bytes (compact, as Cronofy sends them: the length its
    capture's Content-Length says), on one of this log's channels."""
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    raw = json.dumps(fixture["body"], separators=(",", ":")).encode()
    assert len(raw) == int(fixture["headers"]["content-length"]), "not the captured bytes"
    body = copy.deepcopy(fixture["body"])
    body["channel"]["channel_id"] = channel_id
    return json.dumps(body, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    "name", ["profile_initial_sync_completed", "profile_disconnected", "change"]
)
def test_the_same_body_after_a_run_took_it_up_is_a_new_notification(log, name):
    test_client, notifications = client(log)
    raw = captured(name)
    assert post(test_client, None, raw=raw).status_code == 200
    assert post(test_client, None, raw=raw).status_code == 200  # a retry: nothing more
    assert log.position() == 1 and notifications.counts["duplicate"] == 1
    log.snapshot(0)  # a run takes notification 1 up
    assert post(test_client, None, raw=raw).status_code == 200  # two days later, the same
    assert log.position() == 2, "a new notification, not a replay"
    assert post(test_client, None, raw=raw).status_code == 200  # and its retry
    assert log.position() == 2
    last, _, pending = log.snapshot(1)
    assert last == 2 and sum(p.count for p in pending.values()) == 1


def test_a_log_from_an_earlier_release_keeps_working_and_counts_its_bodies_as_taken(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the cronofy_seen of 0.2 (no seq column)
        db.execute(
            "CREATE TABLE cronofy_seen (body_hash TEXT PRIMARY KEY, "
            "received_at DOUBLE PRECISION NOT NULL)"
        )
        db.execute(
            "INSERT INTO cronofy_seen VALUES (?, 1.0)",
            (hashlib.sha256(b"lifecycle").hexdigest(),),
        )
    log = ChangeLog(str(path))
    log.add_channel("chn_a", "acc_a", "https://hooks.example/cronofy", 0.0)
    assert log.record("chn_a", SYNCED, None, 10.0, b"lifecycle") == ("acc_a", 1)
    assert log.record("chn_a", SYNCED, None, 11.0, b"lifecycle") == ("acc_a", 0)
