"""Benchmark: what `lookback_seconds` costs. Twelve simulated hourly runs (5 accounts,
5 changes an hour at random minutes, each reaching Cronofy 30 s or 3 minutes late), once per
lookback; counts rows emitted beyond the changes, requests, and changes never loaded.

make bench-lookback
"""

from __future__ import annotations

import random
import sys

from common import ROOT

sys.path.insert(0, str(ROOT))
from harness.tap import run_tap, tap_config
from simulator import Simulator, SimulatorServer

ACCOUNTS, HOURS, CHANGES_PER_HOUR, MAX_LAG = 5, 12, 5, 180.0


def day_of_runs(lookback: float) -> dict[str, float]:
    sim = Simulator(seed=3, accounts=ACCOUNTS, events_per_account=20)
    server = SimulatorServer(sim).start()
    rng = random.Random(5)
    try:
        config = tap_config(sim, server.url, lookback_seconds=lookback)
        state = run_tap(config, streams=["free_busy"]).state
        rows = changes = requests = 0
        changed: set[tuple[str, str]] = set()
        loaded: set[tuple[str, str]] = set()
        for _ in range(HOURS):
            elapsed = 0.0
            for minute in sorted(rng.uniform(0, 3600) for _ in range(CHANGES_PER_HOUR)):
                sim.advance(minute - elapsed)
                elapsed = minute
                account = rng.choice(sorted(sim.accounts))
                sim.sync_lag = rng.choice((30.0, MAX_LAG))
                uid = f"evt_b_{changes}"
                sim.create_event(account, event_uid=uid)
                changed.add((account, uid))
                changes += 1
            sim.advance(3600 - elapsed)
            sim.requests.clear()
            run = run_tap(config, state, streams=["free_busy"])
            state = run.state
            rows += len(run.records())
            requests += len([r for r in sim.requests if r["path"].startswith("/v1/free_busy")])
            loaded |= {(r["account_id"], r["event_uid"]) for r in run.records()}
        return {
            "rows per run": rows / HOURS,
            "changes per run": changes / HOURS,
            "free_busy requests per run": requests / HOURS,
            "changes never loaded": len(changed - loaded),
        }
    finally:
        server.stop()


def main() -> None:
    print(f"{ACCOUNTS} accounts, {HOURS} hourly runs, {CHANGES_PER_HOUR} changes an hour")
    print("| lookback_seconds | rows per run | changes per run | requests per run | lost |")
    print("| --- | --- | --- | --- | --- |")
    for lookback in (5, 600):
        r = day_of_runs(lookback)
        print(
            f"| {lookback} | {r['rows per run']:.2f} | {r['changes per run']:.2f} | "
            f"{r['free_busy requests per run']:.2f} | {r['changes never loaded']:.0f} |"
        )


if __name__ == "__main__":
    main()
