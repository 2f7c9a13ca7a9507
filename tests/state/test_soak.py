"""Months of daily runs in minutes: the simulator's clock moves a day between runs, the tap
loads into a real DuckDB through target-duckdb, and after every run the warehouse's live
rows inside Cronofy's window must equal what a fresh full sync returns."""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

from harness.tap import FAST_RETRIES, ROOT, run_tap, select_streams
from simulator import Simulator, SimulatorServer

DAYS = 90
DAY = 86400
TARGET = ROOT / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin" / "target-duckdb"
WINDOW_BACK, WINDOW_AHEAD = 41, 201  # what the tap keeps current: one day inside Cronofy's


class Pipeline:
    """tap-cronofy | target-duckdb, as `meltano run` wires them, state carried across runs."""

    def __init__(self, tmp: Path, config: dict) -> None:
        self.tmp = tmp
        self.config = config
        self.state: dict | None = None
        self.warehouse = tmp / "warehouse.duckdb"
        (tmp / "target.json").write_text(
            json.dumps({"filepath": str(self.warehouse), "default_target_schema": "cronofy"})
        )
        (tmp / "catalog.json").write_text(json.dumps(select_streams(["free_busy"])))

    def run(self) -> dict:
        (self.tmp / "tap.json").write_text(json.dumps(self.config))
        args = [sys.executable, "-m", "tap_cronofy", "--config", str(self.tmp / "tap.json")]
        args += ["--catalog", str(self.tmp / "catalog.json")]
        if self.state is not None:
            (self.tmp / "state.json").write_text(json.dumps(self.state))
            args += ["--state", str(self.tmp / "state.json")]
        tap = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        target_out = open(self.tmp / "target.out", "w+")  # noqa: SIM115
        target_err = open(self.tmp / "target.err", "w+")  # noqa: SIM115
        target = subprocess.Popen(
            [str(TARGET), "--config", str(self.tmp / "target.json")],
            stdin=subprocess.PIPE,
            stdout=target_out,
            stderr=target_err,
            text=True,
        )
        stderr: list[str] = []
        reader = threading.Thread(target=lambda: stderr.append(tap.stderr.read()), daemon=True)
        reader.start()
        state_bytes, records, last_state = 0, 0, None
        for line in tap.stdout:  # type: ignore[union-attr]
            if line.startswith('{"type":"STATE"'):
                state_bytes += len(line)
                last_state = json.loads(line)["value"]
            elif line.startswith('{"type":"RECORD"'):
                records += 1
            target.stdin.write(line)  # type: ignore[union-attr]
        target.stdin.close()  # type: ignore[union-attr]
        target.wait(timeout=120)
        tap.wait(timeout=120)
        out = (self.tmp / "target.out").read_text()
        err = (self.tmp / "target.err").read_text()
        target_out.close()
        target_err.close()
        reader.join(timeout=10)
        assert target.returncode == 0, err[-2000:]
        emitted = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
        if emitted:  # what Meltano would save: the target's last state
            self.state = emitted[-1]
            assert self.state == last_state
        return {
            "returncode": tap.returncode,
            "stderr": stderr[0] if stderr else "",
            "state_bytes": state_bytes,
            "final_state_bytes": len(json.dumps(last_state, separators=(",", ":"))),
            "records": records,
        }

    def live_rows(self, lower: dt.datetime, upper: dt.datetime) -> dict[tuple, tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            rows = con.execute(
                "select account_id, calendar_id, event_uid, start_time, end_time, "
                "free_busy_status, deleted from cronofy.free_busy "
                "where _sdc_deleted_at is null"
            ).fetchall()
            total, distinct = con.execute(
                "select count(*), count(distinct (account_id, calendar_id, event_uid)) "
                "from cronofy.free_busy"
            ).fetchone()
        assert total == distinct, "a period is in the warehouse twice"
        live = {}
        for account_id, calendar_id, uid, start, end, status, deleted in rows:
            start, end = _utc(start), _utc(end)
            if not deleted and start < upper and end >= lower:
                live[(account_id, calendar_id, uid)] = (start, end, status)
        return live


def _utc(value: dt.datetime | str) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def truth(sim: Simulator, calendars: set[str], lower: dt.datetime, upper: dt.datetime) -> dict:
    """What a fresh full sync holds inside [lower, upper): live periods in scope."""
    expected = {}
    utc = dt.timezone.utc
    with sim.lock:
        for account in sim.accounts.values():
            for period in sim.periods_of(account, lower, upper):
                if period.deleted or period.calendar_id not in calendars:
                    continue
                start, end = period.bounds(utc)  # all-day: midnight in the query zone (UTC)
                if start < upper and end >= lower:
                    key = (account.account_id, period.calendar_id, period.event_uid)
                    expected[key] = (start, end, period.status)
    return expected


def change_the_calendars(sim: Simulator, rng: random.Random, day: int) -> None:
    """A day of edits: new events (some beyond the window), edits, moves inside the window,
    deletions, and every ten days an edited recurring series."""
    today = sim.now_dt().replace(hour=0, minute=0, second=0, microsecond=0)
    for account_id in sorted(sim.accounts):
        account = sim.accounts[account_id]
        for _ in range(2):
            begin = today + dt.timedelta(days=rng.randint(-5, 230), hours=rng.randint(7, 18))
            sim.create_event(
                account_id,
                calendar_id=rng.choice(account.calendars),
                start=begin.strftime("%Y-%m-%dT%H:%M:%SZ"),
                end=(begin + dt.timedelta(minutes=45)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                status=rng.choice(["busy", "tentative", "free"]),
            )
        live = sorted(
            (e for e in sim.events_of(account_id) if not e.deleted and not e.all_day),
            key=lambda e: e.event_uid,
        )
        for event in rng.sample(live, 2):
            sim.modify_event(account_id, event.event_uid, status=rng.choice(["busy", "unknown"]))
        moved = rng.choice(live)
        begin = today + dt.timedelta(days=rng.randint(1, 150), hours=9)
        sim.modify_event(
            account_id,
            moved.event_uid,
            start=begin.strftime("%Y-%m-%dT%H:%M:%SZ"),
            end=(begin + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        sim.delete_event(account_id, rng.choice(live).event_uid)
        if day % 10 == 5:
            uid = sorted(account.series)[0]
            sim.modify_series(account_id, uid, status=rng.choice(["busy", "tentative"]))


@pytest.fixture
def soak_sim():
    sim = Simulator(seed=21, accounts=3, events_per_account=30, page_size=40)
    sim.sync_lag = 120.0  # changes reach Cronofy 2 minutes late (the lookback is 10)
    server = SimulatorServer(sim).start()
    sim.url = server.url  # type: ignore[attr-defined]
    yield sim
    server.stop()


def test_ninety_days_of_daily_runs_converge_to_a_fresh_full_sync(soak_sim, tmp_path):
    sim = soak_sim
    rng = random.Random(2026)
    now = sim.now_dt().replace(minute=0, second=0, microsecond=0)
    for index, account_id in enumerate(sorted(sim.accounts)):
        calendar = sim.accounts[account_id].calendars[-1]
        # weekly, started a month ago, forever: occurrences keep entering the window
        sim.create_series(account_id, calendar_id=calendar, first=_ts(now - dt.timedelta(30)))
        # daily, starting 150 days ahead: all of it arrives by time passing alone
        sim.create_series(
            account_id, first=_ts(now + dt.timedelta(150 + index)), every_days=1, minutes=30
        )
        # booked now, 215 days ahead (beyond the window), never edited again
        far = now + dt.timedelta(days=215)
        sim.create_event(account_id, start=_ts(far), end=_ts(far + dt.timedelta(hours=2)))
    all_calendars = {c for a in sim.accounts.values() for c in a.calendars}
    narrow = sorted(c for a in sim.accounts.values() for c in a.calendars[:2])
    config = sim.tap_config(sim.url) | FAST_RETRIES | {"max_retries": 2, "full_resync_days": 14}
    config.pop("scheduling_request_ids")
    config["calendar_ids"] = narrow
    pipeline = Pipeline(tmp_path, config)
    outage_account = sorted(sim.accounts)[1]
    seen_reads: set[str] = set()

    for day in range(DAYS + 1):
        if day:
            sim.advance(DAY)
            change_the_calendars(sim, rng, day)
        if day == 30:  # widen the scope: the third calendars' periods must be backfilled
            config["calendar_ids"] = sorted(all_calendars)
        if day == 50:  # one account's queries fail for three days
            sim.add_fault(status=503, times=10**6, path="/v1/free_busy", account_id=outage_account)
        if day == 53:
            sim.faults.clear()
        run = pipeline.run()
        failing = 50 <= day < 53
        if failing:
            assert run["returncode"] == 1 and f"FAILED account {outage_account}" in run["stderr"]
        else:
            assert run["returncode"] == 0, run["stderr"][-3000:]
        assert run["state_bytes"] <= 5 * run["final_state_bytes"], "STATE volume is bounded"
        seen_reads.update(k for k in ("horizon", "full (", "incremental") if k in run["stderr"])

        today = sim.now_dt().replace(hour=0, minute=0, second=0, microsecond=0)
        lower = today - dt.timedelta(days=WINDOW_BACK)
        upper = today + dt.timedelta(days=WINDOW_AHEAD)
        scope = set(config["calendar_ids"])
        expected = truth(sim, scope & all_calendars, lower, upper)
        loaded = pipeline.live_rows(lower, upper)
        if failing:  # the failing account lags; the others must be exact
            expected = {k: v for k, v in expected.items() if k[0] != outage_account}
            loaded = {k: v for k, v in loaded.items() if k[0] != outage_account}
        missing = sorted(set(expected) - set(loaded))[:5]
        extra = sorted(set(loaded) - set(expected))[:5]
        wrong = [k for k in expected if k in loaded and expected[k] != loaded[k]][:5]
        assert not (missing or extra or wrong), (
            f"day {day}: missing {missing}, extra {extra}, stale {wrong}"
        )

    assert seen_reads == {"horizon", "full (", "incremental"}
    # And literally: a fresh full sync today returns exactly the live rows in the window.
    fresh = run_tap(config, streams=["free_busy"])
    assert fresh.returncode == 0, fresh.stderr
    fresh_keys = {
        (r["account_id"], r["calendar_id"], r["event_uid"])
        for r in fresh.records()
        if r["_sdc_deleted_at"] is None
        and _utc(r["start_time"]) < upper
        and _utc(r["end_time"]) >= lower
    }
    assert fresh_keys == set(pipeline.live_rows(lower, upper))


def _ts(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
