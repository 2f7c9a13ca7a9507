"""The quota is the application's, shared with the customer's product: the product holds all
of it for a while (Cronofy sends no Retry-After), then keeps using part of it. The tap waits
the window out (no account fails, every row arrives) and, beside the product, leaves it its
share: the product's requests refused while the tap runs are counted."""

from __future__ import annotations

import threading
import time

from harness.tap import expected_first_sync, run_tap, tap_config
from simulator import Simulator, SimulatorServer

WINDOW = 5.0  # the simulator's "minute": Cronofy's 500 a minute, scaled down
LIMIT = 20
HOLD = 20.0  # seconds the product holds the whole quota: longer than 5 tries' backoff


def product(sim: Simulator, stop: threading.Event, phases: list[tuple[float, float]]) -> None:
    """The product's own traffic: for each (seconds, interval), one request per interval."""
    for seconds, interval in phases:
        until = time.monotonic() + seconds
        while time.monotonic() < until and not stop.is_set():
            sim.product_request()
            time.sleep(interval)
    while not stop.is_set():
        sim.product_request()
        time.sleep(phases[-1][1])


def test_a_product_holding_the_quota_without_retry_after_fails_no_account():
    sim = Simulator(seed=23, accounts=6, events_per_account=30, page_size=10)
    sim.rate_limits = [(LIMIT, WINDOW)]
    sim.send_retry_after = False
    server = SimulatorServer(sim).start()
    stop = threading.Event()
    busy = threading.Thread(
        target=product, args=(sim, stop, [(HOLD, WINDOW / LIMIT / 2), (3600, 1.0)]), daemon=True
    )
    try:
        busy.start()
        time.sleep(1.0)  # the product has filled the window
        config = tap_config(sim, server.url, requests_per_second=5, max_retries=5)
        run = run_tap(config, streams=["free_busy"], timeout=300)
        refused_during_hold = sim.product_refused
        assert run.returncode == 0, run.stderr[-3000:]
        assert sim.rate_limited_count > 0, "the tap met the product's 429s"
        assert "no Retry-After" in run.stderr and "Giving up" not in run.stderr
        keys = run.live_keys()
        assert len(keys) == len(set(keys)) and set(keys) == expected_first_sync(sim)
    finally:
        stop.set()
        server.stop()
    print(f"product refused: {refused_during_hold} of {sim.product_requests}")
