"""Benchmark 4: many accounts against Cronofy's per-application quota.

300 accounts, 250 ms latency per request, the simulator enforcing 500 requests/minute
(and 50/second) with 429s. Prints the sustained request rate as a fraction of the quota
and the 429s seen, for the tap's defaults and for one account at a time.

    make bench-quota            (about 3 minutes)
"""

from __future__ import annotations

import os
import sys
import time

from common import ROOT, SimulatorProcess

sys.path.insert(0, str(ROOT))
from harness.tap import run_tap

ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "300"))
SEQUENTIAL_ACCOUNTS = int(os.environ.get("BENCH_SEQUENTIAL_ACCOUNTS", "60"))
QUOTA = 500


def sustained_per_minute(times: list[float]) -> tuple[float, int]:
    """Mean requests per complete 60-second window from the first request, and the most
    requests in any sliding 60-second window."""
    times = sorted(times)
    start = times[0]
    windows = int((times[-1] - start) // 60)
    if windows == 0:
        rate = len(times) / max(times[-1] - start, 1e-9) * 60
    else:
        rate = sum(1 for t in times if t < start + 60 * windows) / windows
    peak, left = 0, 0
    for right, moment in enumerate(times):
        while moment - times[left] >= 60:
            left += 1
        peak = max(peak, right - left + 1)
    return rate, peak


def scenario(accounts: int, **settings: object) -> dict:
    sim = SimulatorProcess(
        "--accounts",
        str(accounts),
        "--events-per-account",
        "40",
        "--page-size",
        "10",
        "--scheduling-requests",
        "0",
        "--latency",
        "0.25",
        "--rate-limit-per-minute",
        str(QUOTA),
        "--rate-limit-per-second",
        "50",
    )
    try:
        config = dict(sim.tap_settings(), **settings)
        config.pop("scheduling_request_ids")
        started = time.monotonic()
        run = run_tap(config, streams=["free_busy"], timeout=1800)
        elapsed = time.monotonic() - started
        log = [r for r in sim.control("GET", "requests") if not r["path"].startswith("/_sim")]
        stats = sim.control("GET", "stats")
    finally:
        sim.stop()
    rate, peak = sustained_per_minute([r["at"] for r in log])
    return {
        "requests": len(log),
        "seconds": elapsed,
        "rate": rate,
        "peak": peak,
        "429s": stats["rate_limited"],
        "ok": run.returncode == 0,
        "records": len(run.records()),
    }


def main() -> None:
    results = {
        f"tap defaults, {ACCOUNTS} accounts": scenario(ACCOUNTS),
        f"one account at a time, {SEQUENTIAL_ACCOUNTS} accounts": scenario(
            SEQUENTIAL_ACCOUNTS, max_parallel_accounts=1
        ),
    }
    print(f"\nQuota: 250 ms per request, simulator quota {QUOTA}/minute and 50/second")
    for name, r in results.items():
        print(
            f"  {name:<34} {r['requests']:>5} requests in {r['seconds']:6.1f} s: "
            f"{r['rate']:6.1f}/min sustained = {r['rate'] / QUOTA:5.1%} of quota, "
            f"busiest minute {r['peak']}, 429s: {r['429s']}, "
            f"{r['records']} records, exit {'ok' if r['ok'] else 'FAILED'}"
        )


if __name__ == "__main__":
    main()
