"""Scheduling requests at scale: 100,000 tracked ids, mostly settled, over 24 hourly runs,
each run's queries counted by the simulator, against querying every id every run (what a
run without state does, measured in the same run), and the state's size.

make bench-scheduling    (BENCH_SCHEDULING_IDS=20000 for a quicker look)
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import sys
import time

from common import ROOT

sys.path.insert(0, str(ROOT))
from harness.tap import run_tap
from simulator import Simulator, SimulatorServer
from tap_cronofy.scheduling_plan import OPEN, tier_of

IDS = int(os.environ.get("BENCH_SCHEDULING_IDS", "100000"))
RUNS = 24
OPEN_SHARE = 0.05  # pending, rescheduling, or booked with the meeting ahead
CHANGES_PER_HOUR = 50  # of open requests; and a few settled ones reopen


def query_ids(sim: Simulator) -> list[str]:
    return [
        i
        for r in sim.requests
        if r["path"] == "/v1/scheduling_requests/query"
        for i in json.loads(r["body"])["scheduling_request_ids"]
    ]


def main() -> None:
    started = time.monotonic()
    rng = random.Random(7)
    sim = Simulator(seed=3, accounts=1, events_per_account=0, scheduling_requests=IDS)
    sim.log_bodies = True
    ids = list(sim.scheduling)
    for request_id in ids:  # mostly settled: expired, cancelled, or their meeting is over
        if rng.random() >= OPEN_SHARE:
            request = sim.scheduling[request_id]
            request["slot_selection"] = rng.choice(["expired", "cancelled", "complete"])
            request["event"]["end"] = {"time": "2026-01-05T10:00:00Z", "tzid": "Etc/UTC"}
    server = SimulatorServer(sim).start()
    config = {
        **sim.tap_config(server.url),
        "accounts": [],
        "requests_per_minute": 1_000_000,
        "requests_per_second": 100_000,
    }
    config.pop("accounts")
    try:
        sim.requests.clear()
        first = run_tap(config, streams=["scheduling_requests"], timeout=3600)
        assert first.returncode == 0, first.stderr[-2000:]
        every_id = len({i for i in query_ids(sim)})
        baseline = math.ceil(every_id / 10)
        state = first.state
        per_run, late = [], 0
        reopened: dict[str, int] = {}
        for run_number in range(1, RUNS + 1):
            sim.advance(3600)
            now = sim.now_dt()
            opened = [i for i in ids if tier_of(sim.scheduling[i], now) == OPEN]
            for request_id in rng.sample(opened, min(CHANGES_PER_HOUR, len(opened))):
                sim.set_slot_selection(
                    request_id, rng.choice(["pending_rescheduling", "cancelled"])
                )
            for request_id in rng.sample(ids, 3):
                if tier_of(sim.scheduling[request_id], now) != OPEN:
                    sim.set_slot_selection(request_id, "pending_rescheduling")
                    reopened[request_id] = run_number
            sim.requests.clear()
            run = run_tap(config, state, streams=["scheduling_requests"], timeout=3600)
            assert run.returncode == 0, run.stderr[-2000:]
            state = run.state
            per_run.append(len([r for r in sim.requests if "scheduling" in r["path"]]))
            for record in run.records("scheduling_requests"):
                if (request_id := record["scheduling_request_id"]) in reopened:
                    late = max(late, run_number - reopened.pop(request_id))
        assert state is not None
        size = len(json.dumps(state["bookmarks"]["scheduling_requests"]))
    finally:
        server.stop()
    print(f"\nScheduling requests: {IDS:,} tracked, {OPEN_SHARE:.0%} open, {RUNS} hourly runs")
    print(f"  every id every run (a run without state, measured): {baseline:,} queries a run")
    print(
        f"  by tier: {statistics.mean(per_run):,.0f} queries a run on average, "
        f"{max(per_run):,} at most, {sum(per_run):,} a day "
        f"({sum(per_run) / (baseline * RUNS):.1%} of {baseline * RUNS:,})"
    )
    print(
        f"  settled requests that reopened: each emitted within {late} h (the cycle: 24 h); "
        f"{len(reopened)} reopened in the day's last hours, not yet due"
    )
    print(f"  state: {size:,} bytes ({size / IDS:.1f} per id)")
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
