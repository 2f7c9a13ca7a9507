"""Benchmark: the tap beside the customer's product on one Cronofy quota.

The simulator's quota is LIMIT requests per WINDOW seconds (a minute, as Cronofy's; the
tap's requests_per_minute set to it, as a user sets it to the application's quota), 429s
without Retry-After (as Cronofy documents them). The product sends a steady
PRODUCT_SHARE of the quota all along. In one run, measured:

- the product alone: how many of its requests are refused (the baseline, about 0);
- the tap beside it: the product's refusals, the tap's 429 share, and the run's time
  against the ideal (the tap's requests at the quota the product leaves free).

    make bench-shared-quota      (about 8 minutes; BENCH_ACCOUNTS, BENCH_PRODUCT_SHARE,
                                  BENCH_LIMIT)
"""

from __future__ import annotations

import os
import sys
import threading
import time

from common import ROOT

sys.path.insert(0, str(ROOT))
from harness.tap import run_tap, tap_config
from simulator import Simulator, SimulatorServer

ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "40"))
PRODUCT_SHARE = float(os.environ.get("BENCH_PRODUCT_SHARE", "0.5"))
WINDOW = 60.0
LIMIT = int(os.environ.get("BENCH_LIMIT", "120"))


def product(sim: Simulator, stop: threading.Event, interval: float, log: list) -> None:
    while not stop.is_set():
        log.append((time.monotonic(), sim.product_request()))
        time.sleep(interval)


def measure(sim: Simulator, server: SimulatorServer, with_tap: bool) -> dict:
    """The product for a window alone (its steady share), then the tap's run (or as long
    without it), then a window more (the tap's requests still count in it)."""
    stop = threading.Event()
    log: list[tuple[float, bool]] = []
    interval = WINDOW / (LIMIT * PRODUCT_SHARE)
    thread = threading.Thread(target=product, args=(sim, stop, interval, log), daemon=True)
    thread.start()
    time.sleep(WINDOW)
    started = time.monotonic()
    tap_requests = refused_before = 0
    if with_tap:
        refused_before = sim.rate_limited_count
        sim.requests.clear()
        config = tap_config(sim, server.url, requests_per_minute=LIMIT)
        run = run_tap(config, streams=["free_busy"], timeout=1800)
        assert run.returncode == 0, run.stderr[-2000:]
        tap_requests = len(sim.requests)
    elapsed = time.monotonic() - started
    time.sleep(WINDOW)
    stop.set()
    thread.join()
    during = [served for moment, served in log if moment >= started]
    free_rate = LIMIT * (1 - PRODUCT_SHARE) / WINDOW
    return {
        "seconds": elapsed,
        "product_requests": len(during),
        "product_refused": sum(1 for served in during if not served),
        "tap_requests": tap_requests,
        "tap_429": sim.rate_limited_count - refused_before,
        "ideal_seconds": tap_requests / free_rate if tap_requests else 0.0,
    }


def main() -> None:
    sim = Simulator(seed=29, accounts=ACCOUNTS, events_per_account=40, page_size=10)
    sim.rate_limits = [(LIMIT, WINDOW)]
    sim.send_retry_after = False
    server = SimulatorServer(sim).start()
    try:
        alone = measure(sim, server, with_tap=False)
        beside = measure(sim, server, with_tap=True)
    finally:
        server.stop()
    share = beside["tap_429"] / max(beside["tap_requests"], 1)
    print(
        f"shared quota ({LIMIT} per {WINDOW:.0f} s, no Retry-After; product at "
        f"{PRODUCT_SHARE:.0%}): product alone refused {alone['product_refused']} of "
        f"{alone['product_requests']}; beside the tap refused {beside['product_refused']} of "
        f"{beside['product_requests']}; tap 429 share = {share:.1%} "
        f"({beside['tap_429']} of {beside['tap_requests']}); run {beside['seconds']:.1f} s "
        f"against {beside['ideal_seconds']:.1f} s ideal "
        f"(ratio {beside['seconds'] / max(beside['ideal_seconds'], 1e-9):.2f})"
    )


if __name__ == "__main__":
    main()
