"""Faults from Cronofy and the network: nothing lost, nothing duplicated, nothing leaked."""

from __future__ import annotations

import collections
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.tap import account_states, expected_first_sync, run_tap, tap_config

TOKEN = "/oauth/token"
FB = ["free_busy"]


def assert_exact_full_sync(sim, run) -> None:
    keys = run.live_keys()
    assert len(keys) == len(set(keys)), "duplicated records"
    assert set(keys) == expected_first_sync(sim), "lost or extra records"


def bookmarks(state: dict | None) -> dict[str, str]:
    return {
        a: s["replication_key_value"]
        for a, s in account_states(state).items()
        if "replication_key_value" in s
    }


def secrets_of(sim, config: dict) -> list[str]:
    values = [sim.client_secret, config.get("client_secret")]
    for account in sim.accounts.values():
        values += [account.access_token, account.refresh_token]
    for entry in config.get("accounts", []):
        values += [entry.get("access_token"), entry.get("refresh_token")]
    return [v for v in values if v]


# Retried faults


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(sim, status):
    sim.add_fault(status=status, times=2, path="/v1/free_busy/pages/")
    run = run_tap(tap_config(sim, sim.url), streams=FB)
    assert run.returncode == 0, run.stderr
    assert_exact_full_sync(sim, run)
    assert f"{status} Server Error" in run.stderr and "Retrying" in run.stderr


@pytest.mark.parametrize("kind", ["drop", "truncate", "garbage"])
def test_broken_connections_and_bodies_are_retried(sim, kind):
    sim.add_fault(kind=kind, times=2, path="/v1/free_busy")
    run = run_tap(tap_config(sim, sim.url), streams=FB)
    assert run.returncode == 0, run.stderr
    assert [f.times for f in sim.faults] == [0], "both faults fired"
    assert run.stderr.count("Retrying") >= 2, "and each was retried"
    assert_exact_full_sync(sim, run)


def test_read_timeout_is_retried(sim):
    sim.add_fault(kind="delay", seconds=1.5, times=1, path="/v1/free_busy/pages/")
    run = run_tap(tap_config(sim, sim.url, request_timeout_seconds=0.4), streams=FB)
    assert run.returncode == 0, run.stderr
    assert "Timeout" in run.stderr
    assert_exact_full_sync(sim, run)


def test_retry_after_is_honoured_and_capped(sim):
    sim.add_fault(status=429, retry_after="0.25", times=1, path="/v1/free_busy")
    sim.add_fault(status=429, retry_after="3600", times=1, path="/v1/free_busy")
    run = run_tap(tap_config(sim, sim.url, max_retry_wait_seconds=0.5), streams=FB)
    assert run.returncode == 0, run.stderr
    assert "(429, Retry-After): every request waits 0.2 s" in run.stderr
    assert "(429, Retry-After): every request waits 0.5 s" in run.stderr, "capped"
    assert_exact_full_sync(sim, run)


def quota_waits(run) -> list[float]:
    return [
        float(line.split("every request waits ")[1].split(" s")[0])
        for line in run.stderr.splitlines()
        if "every request waits" in line
    ]


def test_429_without_retry_after_backs_off_exponentially(sim):
    sim.add_fault(status=429, times=3, path="/v1/free_busy")
    config = tap_config(sim, sim.url, backoff_factor_seconds=0.05, max_parallel_accounts=1)
    run = run_tap(config, streams=FB)
    assert run.returncode == 0, run.stderr
    waits = quota_waits(run)
    assert waits == [0.1, 0.1, 0.2] or (len(waits) == 3 and waits[0] <= waits[1] < waits[2])
    assert "slows to 5 requests/second and 50/minute" in run.stderr, "a tenth: it sent little"
    assert_exact_full_sync(sim, run)


def test_429s_are_not_failed_tries_and_never_fail_an_account_while_time_lasts(sim):
    """Far more 429s than `max_retries` (the product holds the quota): waited out."""
    sim.add_fault(status=429, times=12, path="/v1/free_busy")
    config = tap_config(
        sim, sim.url, max_retries=2, backoff_factor_seconds=0.01, max_retry_wait_seconds=0.05
    )
    run = run_tap(config, streams=FB)
    assert run.returncode == 0, run.stderr
    assert len(quota_waits(run)) == 12 and "Giving up" not in run.stderr
    assert_exact_full_sync(sim, run)


def test_retries_are_bounded_then_fatal_with_status_and_path(sim):
    sim.add_fault(status=503, times=100, path="/v1/free_busy")
    run = run_tap(tap_config(sim, sim.url, max_retries=3), streams=FB)
    assert run.returncode != 0
    assert "Giving up after 3 tries" in run.stderr
    assert "503" in run.stderr and "/v1/free_busy" in run.stderr
    tries = collections.Counter(r["account_id"] for r in sim.requests if r["path"] != TOKEN)
    assert set(tries) == set(sim.accounts) and set(tries.values()) == {3}, "3 tries per account"
    assert run.records() == []
    assert bookmarks(run.state) == {}


def test_expired_next_page_restarts_the_account_once(sim):
    sim.add_fault(status=404, times=1, path="/v1/free_busy/pages/")
    run = run_tap(tap_config(sim, sim.url, max_parallel_accounts=1), streams=FB)
    assert run.returncode == 0, run.stderr
    assert "restarting its query once" in run.stderr
    assert_exact_full_sync(sim, run)
    assert len([r for r in sim.requests if r["path"] == "/v1/free_busy"]) == len(sim.accounts) + 1


def test_page_expiring_twice_is_fatal_for_that_account_only(sim):
    first_account = sorted(sim.accounts)[0]
    sim.add_fault(status=404, times=2, path="/v1/free_busy/pages/", account_id=first_account)
    run = run_tap(tap_config(sim, sim.url), streams=FB)
    assert run.returncode != 0
    assert first_account in run.stderr
    assert set(bookmarks(run.state)) == set(sim.accounts) - {first_account}


# Credentials


def test_failed_refresh_names_the_account_and_others_still_sync(sim):
    config = tap_config(sim, sim.url)
    broken = sorted(sim.accounts)[1]
    sim.expire_access_token(broken)
    sim.accounts[broken].refresh_token = "rotated-elsewhere-0000"  # refresh -> invalid_grant
    run = run_tap(config, streams=FB, env={"LOGLEVEL": "DEBUG"})
    assert run.returncode != 0
    assert f"account {broken}" in run.stderr and "re-authorised" in run.stderr
    assert "invalid_grant" in run.stderr
    others = {k for k in expected_first_sync(sim) if k[0] != broken}
    assert set(run.live_keys()) == others
    assert set(bookmarks(run.state)) == set(sim.accounts) - {broken}
    assert "1 account(s) failed" in run.stderr
    for secret in secrets_of(sim, config):
        assert secret not in run.stderr and secret not in run.stdout


def test_401_without_refresh_credentials_says_reauthorise(sim):
    config = tap_config(sim, sim.url)
    for entry in config["accounts"]:
        entry.pop("refresh_token")
    broken = sorted(sim.accounts)[0]
    sim.expire_access_token(broken)
    run = run_tap(config, streams=FB)
    assert run.returncode != 0
    assert f"401 Unauthorized for account {broken}" in run.stderr
    assert "Re-authorise" in run.stderr
    assert [r for r in sim.requests if r["path"] == "/oauth/token"] == []


def test_refreshed_token_refused_again_is_not_refreshed_twice(sim):
    broken = sorted(sim.accounts)[0]
    # Cronofy refuses the first query of that account, and again after the refresh
    sim.add_fault(status=401, times=2, path="/v1/free_busy", account_id=broken)
    run = run_tap(tap_config(sim, sim.url, max_parallel_accounts=1), streams=FB)
    refreshed = [json.loads(r["body"])["refresh_token"] for r in sim.requests if r["path"] == TOKEN]
    assert refreshed.count(sim.accounts[broken].refresh_token) == 1, "once, up front"
    assert run.returncode != 0
    assert "even with a freshly refreshed token" in run.stderr and broken in run.stderr
    assert set(bookmarks(run.state)) == set(sim.accounts) - {broken}


def test_missing_scope_names_read_free_busy(sim):
    blocked = sorted(sim.accounts)[2]
    sim.accounts[blocked].scopes = set()
    run = run_tap(tap_config(sim, sim.url), streams=FB)
    assert run.returncode != 0
    assert "403" in run.stderr and "read_free_busy" in run.stderr and blocked in run.stderr
    assert {k[0] for k in run.record_keys()} == set(sim.accounts) - {blocked}


def test_locked_account_423(sim):
    locked = sorted(sim.accounts)[0]
    sim.accounts[locked].locked = True
    run = run_tap(tap_config(sim, sim.url), streams=FB)
    assert run.returncode != 0
    assert "423" in run.stderr and "locked" in run.stderr and locked in run.stderr
    assert set(bookmarks(run.state)) == set(sim.accounts) - {locked}


def test_422_lists_the_field_errors(sim):
    body = {"errors": {"tzid": [{"key": "errors.required", "description": "required"}]}}
    sim.add_fault(status=422, body=body, times=1, path="/v1/free_busy")
    run = run_tap(tap_config(sim, sim.url), streams=FB)
    assert run.returncode != 0
    assert "422" in run.stderr and "tzid: required" in run.stderr


# State across a run that dies


def test_run_dying_midway_keeps_no_bookmark_past_unemitted_data(sim):
    config = tap_config(sim, sim.url, max_retries=2)
    order = sorted(sim.accounts)
    sim.add_fault(status=503, times=50, path="/v1/free_busy/pages/", account_id=order[1])
    dying = run_tap(config, streams=FB)
    assert dying.returncode != 0
    assert f"FAILED account {order[1]}" in dying.stderr
    assert set(bookmarks(dying.state)) == {order[0], order[2]}, "the failing one did not move"
    emitted = set(dying.live_keys())
    sim.faults.clear()
    sim.advance(30)
    rerun = run_tap(config, dying.state, streams=FB)
    assert rerun.returncode == 0, rerun.stderr
    assert emitted | set(rerun.live_keys()) == expected_first_sync(sim), "no gap"
    redone = {k[0] for k in rerun.record_keys()}
    assert redone == {order[1]}, "finished accounts are not redone"


# Rate limits


def test_client_side_rate_limit_avoids_429(sim):
    sim.page_size = 10
    sim.rate_limits = [(6, 1.0)]
    run = run_tap(tap_config(sim, sim.url, requests_per_second=6), streams=FB)
    assert run.returncode == 0, run.stderr
    assert len(sim.requests) > 12, "enough requests to exceed the limit without a limiter"
    assert sim.rate_limited_count == 0
    assert_exact_full_sync(sim, run)


def test_without_the_client_limit_the_simulator_would_429(sim):
    sim.page_size = 10
    sim.rate_limits = [(4, 1.0)]
    config = tap_config(
        sim, sim.url, requests_per_second=1000, max_retry_wait_seconds=2, max_retries=20
    )
    run = run_tap(config, streams=FB)
    assert sim.rate_limited_count > 0, "the simulator enforces its limit"
    assert run.returncode == 0, run.stderr
    assert_exact_full_sync(sim, run)


# Secrets and hosts


class Recorder(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_GET(self) -> None:
        Recorder.received.append({"path": self.path, "headers": dict(self.headers)})
        body = b'{"pages": {"current": 2, "total": 2}, "free_busy": []}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_host():
    Recorder.received = []
    try:
        server = ThreadingHTTPServer(("127.0.0.2", 0), Recorder)
    except OSError as exc:  # pragma: no cover - 127.0.0.2 is loopback on Linux
        pytest.fail(f"cannot bind 127.0.0.2: {exc}")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.2:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_next_page_on_another_host_gets_no_token(sim, other_host):
    sim.next_page_host = other_host
    config = tap_config(sim, sim.url)
    run = run_tap(config, streams=FB)
    assert run.returncode != 0
    assert "Refusing to send" in run.stderr and "127.0.0.2" in run.stderr
    assert Recorder.received == [], "nothing at all reaches the other host"
    assert bookmarks(run.state) == {}


def test_redirect_to_another_host_is_not_followed(sim, other_host):
    sim.add_fault(kind="redirect", location=f"http://{other_host}/v1/free_busy", times=1)
    run = run_tap(tap_config(sim, sim.url), streams=FB)
    assert run.returncode != 0
    assert "redirect" in run.stderr and "not followed" in run.stderr
    assert Recorder.received == []


# In every failure below, Cronofy's answer echoes the credential the request carried beside a
# marker (a misbehaving proxy or API might). Where the tap shows a body to help the user
# ("surfaced"), the marker must appear and the secret must be masked: that is redaction at
# work, and these scenarios fail without it. Where it shows only status and path
# ("withheld"), the marker must not appear: bodies are kept out of messages by design.
MARK = "echo-marker-5c1d"


@pytest.mark.parametrize(
    ("scenario", "body"),
    [
        ("invalid_grant", "surfaced"),  # the token endpoint's `error` is shown
        ("field_errors", "surfaced"),  # Cronofy's 422 field errors are shown
        ("client_error", "surfaced"),  # another 4xx: the start of its body is shown
        ("forbidden", "withheld"),
        ("give_up", "withheld"),
        ("scheduling_401", "withheld"),
        ("foreign_host", "withheld"),
    ],
)
def test_no_secret_in_any_output_even_at_debug_level(sim, scenario, body, other_host):
    config = tap_config(sim, sim.url, scheduling_request_ids=list(sim.scheduling)[:5])
    first = sorted(sim.accounts)[0]
    token = next(e for e in config["accounts"] if e["account_id"] == first)["access_token"]
    refresh = sim.accounts[first].refresh_token
    streams = FB
    echo = {"error": f"echoed {MARK} {token} {refresh} {sim.client_secret}"}
    if scenario == "invalid_grant":
        sim.add_fault(status=400, body=echo, times=1, path=TOKEN)
    elif scenario == "field_errors":
        errors = {"tzid": [{"key": "x", "description": echo["error"]}]}
        sim.add_fault(status=422, body={"errors": errors}, times=1, path="/v1/free_busy")
    elif scenario == "client_error":
        sim.add_fault(status=409, body=echo, times=1, path="/v1/free_busy")
    elif scenario == "forbidden":
        sim.add_fault(status=403, body=echo, times=1, path="/v1/free_busy")
    elif scenario == "give_up":
        sim.add_fault(status=500, body=echo, times=100, path="/v1/free_busy")
    elif scenario == "scheduling_401":
        sim.add_fault(status=401, body=echo, times=100, path="/v1/scheduling_requests")
        streams = ["scheduling_requests"]
    elif scenario == "foreign_host":
        sim.next_page_host = other_host
    run = run_tap(config, streams=streams, env={"LOGLEVEL": "DEBUG"})
    assert run.returncode != 0
    assert "DEBUG" in run.stderr
    if scenario != "foreign_host":
        assert (MARK in run.stderr) is (body == "surfaced"), scenario
    for secret in secrets_of(sim, config):
        assert secret not in run.stderr, f"secret leaked to stderr ({scenario})"
        assert secret not in run.stdout, f"secret leaked to stdout ({scenario})"
    for state in run.states:
        assert not any(secret in json.dumps(state) for secret in secrets_of(sim, config))


def test_json_logging_keeps_metrics_and_exceptions_structured_with_secrets_masked(sim, tmp_path):
    """Under the SDK's JSON logging (SINGER_SDK_LOG_CONFIG), as orchestrators and log
    pipelines parse it: metrics carry metric_info, an account's failure is named, and no
    secret appears anywhere. (Exceptions: tests/unit/test_leaves.py.)"""
    (tmp_path / "logging.yaml").write_text(
        "version: 1\n"
        "disable_existing_loggers: false\n"
        "formatters:\n"
        "  json:\n"
        "    (): singer_sdk.logging.StructuredFormatter\n"
        "handlers:\n"
        "  stderr:\n"
        "    class: logging.StreamHandler\n"
        "    formatter: json\n"
        "    stream: ext://sys.stderr\n"
        "root:\n"
        "  level: INFO\n"
        "  handlers: [stderr]\n"
    )
    broken = sorted(sim.accounts)[0]
    sim.add_fault(status=503, times=100, path="/v1/free_busy", account_id=broken)
    config = tap_config(sim, sim.url, max_retries=1)
    run = run_tap(
        config,
        streams=["free_busy"],
        env={"SINGER_SDK_LOG_CONFIG": str(tmp_path / "logging.yaml")},
    )
    assert run.returncode == 1
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    metrics = [line for line in lines if line.get("message") == "METRIC"]
    assert {m["metric_info"]["metric"] for m in metrics} >= {"sync_duration", "record_count"}
    assert all(m["metric_info"]["type"] in ("timer", "counter") for m in metrics)
    failures = [line for line in lines if broken in line.get("message", "")]
    assert failures, "the failed account is named"
    secrets = [a.access_token for a in sim.accounts.values()] + [sim.client_secret]
    secrets += [a.refresh_token for a in sim.accounts.values()]
    assert not any(secret in run.stderr for secret in secrets)
