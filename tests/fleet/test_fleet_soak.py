"""The production topology at once, over simulated days: two shards side by side on one
accounts_file with Cronofy rotating refresh tokens, the receiver always on (change-driven
sync), `channels` daily, `check` now and then, 500s and 429s without Retry-After,
lifecycle notifications, and one account whose answers cannot be read. After every round:
the merged warehouse (records upserted by key, as a merging target does) equals Cronofy
inside the window, every account holds the refresh token Cronofy accepts, no secret is in
any process's output, and only the poisoned account failed.

The processes share one quota (`shared_quota`): the simulator, enforcing it, never refuses
one of their requests but the 429s injected on purpose. Seeded and bounded here
(SOAK_ROUNDS, default 4); `make soak-fleet` runs a deep profile."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import subprocess
import sys
import threading

from harness.tap import ROOT, select_streams, start_receiver, tap_config
from simulator import Simulator, SimulatorServer
from tests.state.test_soak import _utc, change_the_calendars, truth

ROUNDS = int(os.environ.get("SOAK_ROUNDS", "4"))
SHARDS = ("0/2", "1/2")
WINDOW_BACK, WINDOW_AHEAD = 41, 201
HOUR = 3600


def poison(body: dict) -> dict:
    """One period's start as no calendar can have it."""
    periods = body.get("free_busy") or []
    if periods:
        periods[0] = {**periods[0], "start": "2026-13-45T25:61:00Z"}
    return body


def secrets_of(sim: Simulator) -> list[str]:
    found = [sim.client_secret]
    for account in sim.accounts.values():
        found += [account.access_token, account.refresh_token]
    return found


def launch(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_the_fleet_side_by_side_over_days(tmp_path, postgres):
    rng = random.Random(31)
    sim = Simulator(seed=31, accounts=8, events_per_account=20, page_size=40)
    sim.rotate_refresh_tokens = True
    sim.send_retry_after = False
    # Cronofy's documented per-application limits: the minute's shared by every process
    # (shared_quota), the second's split between the four processes running at once.
    sim.rate_limits = [(50, 1.0), (500, 60.0)]
    server = SimulatorServer(sim).start()
    log_path = tmp_path / "changes.db"
    receiver, host, port = start_receiver(sim.client_secret, log_path)
    receiver_said: list[str] = []  # drained, or a full pipe would stall the receiver
    drain = threading.Thread(
        target=lambda: receiver_said.extend(receiver.stderr),
        daemon=True,  # type: ignore[arg-type]
    )
    drain.start()
    now = sim.now_dt().replace(minute=0, second=0, microsecond=0)
    for account_id in sorted(sim.accounts):  # change_the_calendars edits one every ten days
        first = (now - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        sim.create_series(account_id, first=first)
    try:
        config = tap_config(
            sim,
            server.url,
            change_log=str(log_path),
            notification_url=f"http://{host}:{port}/cronofy/notifications",
            max_retries=4,
            backoff_factor_seconds=0.05,
            max_retry_wait_seconds=1,
            requests_per_second=12,
            shared_quota=postgres.url,
        )
        entries = config.pop("accounts")
        accounts_file = tmp_path / "accounts.json"
        accounts_file.write_text(json.dumps(entries, indent=2))
        config["accounts_file"] = str(accounts_file)
        ids = sorted(sim.accounts)
        poisoned = ids[3]
        sim.corruptions[poisoned] = poison
        catalog = tmp_path / "catalog.json"
        catalog.write_text(json.dumps(select_streams(["free_busy", "calendars", "accounts"])))
        states: dict[str, dict | None] = dict.fromkeys(SHARDS)
        warehouse: dict[tuple, dict] = {}

        for round_ in range(ROUNDS):
            if round_:
                sim.advance(rng.choice([HOUR, 6 * HOUR, 26 * HOUR]))
                change_the_calendars(sim, rng, round_)
                sim.notify(rng.choice(ids), "profile_initial_sync_completed")
            sim.add_fault(status=500, times=2, path="/v1/free_busy")
            sim.add_fault(status=429, times=3, path="/v1/free_busy")  # no Retry-After
            assert sim.notifier.flush(timeout=60), f"round {round_}: notifications stuck"
            running = {}
            for shard in SHARDS:
                path = tmp_path / f"config-{shard.replace('/', '-')}.json"
                path.write_text(json.dumps({**config, "shard": shard}))
                command = [sys.executable, "-m", "tap_cronofy", "--config", str(path)]
                command += ["--catalog", str(catalog)]
                if states[shard] is not None:
                    state_path = tmp_path / f"state-{shard.replace('/', '-')}.json"
                    state_path.write_text(json.dumps(states[shard]))
                    command += ["--state", str(state_path)]
                running[shard] = launch(command)
            plain = tmp_path / "config.json"
            plain.write_text(json.dumps(config))
            if round_ % 2 == 0:  # channels daily (and first), check now and then
                channels = [sys.executable, "-m", "tap_cronofy.push", "channels"]
                running["channels"] = launch([*channels, "--config", str(plain)])
            else:
                check = [sys.executable, "-m", "tap_cronofy.check", "--config", str(plain)]
                running["check"] = launch(check)
            outputs = {name: process.communicate(timeout=300) for name, process in running.items()}
            said = "\n".join([*(out + err for out, err in outputs.values()), *receiver_said])
            for secret in secrets_of(sim):
                assert secret not in said, f"round {round_}: a secret in the output"
            for name, process in running.items():
                err = outputs[name][1]
                assert "invalid_grant" not in err, (round_, name)
                failed = {a for a in ids if f"FAILED account {a}" in err}
                assert failed <= {poisoned}, (round_, name, failed)
                ok = process.returncode == 0 or (failed == {poisoned} and process.returncode == 1)
                assert ok, (round_, name, err[-3000:])
            assert any(f"FAILED account {poisoned}" in err for _, err in outputs.values())
            assert all(fault.times == 0 for fault in sim.faults), "every 500 and 429 was met"
            assert sim.rate_limited_count == 0, "together, the processes kept to the quota"
            for shard in SHARDS:
                messages = [
                    json.loads(line)
                    for line in outputs[shard][0].splitlines()
                    if line.startswith("{")
                ]
                for message in messages:
                    if message["type"] == "RECORD" and message["stream"] == "free_busy":
                        r = message["record"]
                        warehouse[(r["account_id"], r["calendar_id"], r["event_uid"])] = r
                states[shard] = next(
                    (m["value"] for m in reversed(messages) if m["type"] == "STATE"),
                    states[shard],
                )

            saved = {
                e["account_id"]: e["refresh_token"] for e in json.loads(accounts_file.read_text())
            }
            assert saved == {a: sim.accounts[a].refresh_token for a in ids}, round_

            today = sim.now_dt().replace(hour=0, minute=0, second=0, microsecond=0)
            lower = today - dt.timedelta(days=WINDOW_BACK)
            upper = today + dt.timedelta(days=WINDOW_AHEAD)
            calendars = {c for a in sim.accounts.values() for c in a.calendars}
            expected = {
                k: v for k, v in truth(sim, calendars, lower, upper).items() if k[0] != poisoned
            }
            loaded = {
                k: (_utc(r["start_time"]), _utc(r["end_time"]), r["free_busy_status"])
                for k, r in warehouse.items()
                if k[0] != poisoned
                and r["_sdc_deleted_at"] is None
                and _utc(r["start_time"]) < upper
                and _utc(r["end_time"]) >= lower
            }
            missing = sorted(set(expected) - set(loaded))[:5]
            extra = sorted(set(loaded) - set(expected))[:5]
            stale = [k for k in expected if k in loaded and expected[k] != loaded[k]][:5]
            assert not (missing or extra or stale), (round_, missing, extra, stale)
            assert len(expected) > 100, "a warehouse worth comparing"
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)
        server.stop()
