"""Benchmark 3: HTTP requests per sync, counted by the simulator.

make bench-requests
"""

from __future__ import annotations

import math
import sys

from common import ROOT, SimulatorProcess, bulk_simulator

sys.path.insert(0, str(ROOT))
from harness.tap import run_tap

PERIODS = 12_345
PAGE = 500
IDS = 37


def cronofy_requests(sim: SimulatorProcess) -> list[dict]:
    return [r for r in sim.control("GET", "requests") if not r["path"].startswith("/_sim")]


def main() -> None:
    sim = bulk_simulator(PERIODS, PAGE)
    try:
        settings = sim.tap_settings()
        ids = settings["scheduling_request_ids"][:30] + [f"srq_missing{n}" for n in range(7)]
        config = dict(settings, scheduling_request_ids=ids)
        account = settings["accounts"][0]["account_id"]
        rows = []

        sim.control("DELETE", "requests")
        first = run_tap(config, streams=["free_busy"])
        full = len(cronofy_requests(sim))
        rows.append(
            (
                "free_busy full sync",
                f"{len(first.records())} periods",
                full,
                math.ceil(PERIODS / PAGE),
            )
        )

        sim.control("POST", "advance", {"seconds": 60})
        events = sim.control("GET", f"events/{account}")
        for event in events[:25]:
            sim.control("PATCH", f"events/{account}/{event['event_uid']}", {"status": "tentative"})
        sim.control("POST", "advance", {"seconds": 60})
        sim.control("DELETE", "requests")
        second = run_tap(config, first.state, streams=["free_busy"])
        rows.append(
            (
                "free_busy incremental",
                f"{len(second.records())} changed",
                len(cronofy_requests(sim)),
                math.ceil(25 / PAGE),
            )
        )

        sim.control("DELETE", "requests")
        third = run_tap(config, streams=["scheduling_requests"])
        rows.append(
            (
                "scheduling_requests",
                f"{IDS} ids, {len(third.records())} found",
                len(cronofy_requests(sim)),
                math.ceil(IDS / 10),
            )
        )
    finally:
        sim.stop()
    print("\nHTTP requests per sync (counted by the simulator)")
    print(f"  {'sync':<24} {'data':<22} {'requests':>8} {'minimum':>8}")
    for name, data, count, minimum in rows:
        print(f"  {name:<24} {data:<22} {count:>8} {minimum:>8}")
    modes = by_mode()
    print("\nAll streams, per account, in each answer shape (by endpoint)")
    for mode, runs in modes.items():
        for run, counts in runs.items():
            detail = ", ".join(f"{path} {n}" for path, n in sorted(counts.items()))
            print(f"  {mode:<44} {run:<12} {sum(counts.values()):>3}  ({detail})")


MODES = {
    "userinfo embedded (as documented), calendars sub": {},
    "as the SDK fixtures answer (neither)": {
        "embed_userinfo": False,
        "calendars_sub": False,
        "calendars_optional": False,
    },
}


def by_mode() -> dict[str, dict[str, dict[str, int]]]:
    """A first sync and the next hourly run of every stream (free_busy, calendars,
    accounts), for each shape of Cronofy's answers, each on a simulator of its own (the
    same data): requests by endpoint."""
    streams = ["free_busy", "calendars", "accounts"]
    out: dict[str, dict[str, dict[str, int]]] = {}
    for mode, knobs in MODES.items():
        sim = bulk_simulator(PERIODS, PAGE)
        config = {k: v for k, v in sim.tap_settings().items() if k != "scheduling_request_ids"}
        if knobs:
            sim.control("POST", "config", knobs)
        runs: dict[str, dict[str, int]] = {}
        state = None
        for run in ("first sync", "next hour"):
            sim.control("DELETE", "requests")
            done = run_tap(config, state, streams=streams)
            state = done.state
            counts: dict[str, int] = {}
            for request in cronofy_requests(sim):
                path = "/v1/free_busy" if "free_busy" in request["path"] else request["path"]
                counts[path] = counts.get(path, 0) + 1
            runs[run] = counts
            sim.control("POST", "advance", {"seconds": 3600})
        sim.stop()
        out[mode] = runs
    return out


if __name__ == "__main__":
    main()
