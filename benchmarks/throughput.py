"""Benchmark 1: records/s of the tap vs a bare requests+json loop and vs the SDK's default
message writer, all on the same simulator pages in the same run.

    make bench-throughput          (BENCH_PERIODS=200000 by default)
"""

from __future__ import annotations

import os

from common import bulk_simulator, free_busy_catalog, run_child, unlimited_config

PERIODS = int(os.environ.get("BENCH_PERIODS", "200000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))


def main() -> None:
    sim = bulk_simulator(PERIODS)
    try:
        # At Cronofy's 50 requests/s, pages of 500 cap a real sync at 25,000 records/s;
        # client-side limits are lifted here to measure the per-record cost.
        config = unlimited_config(sim)
        catalog = free_busy_catalog()
        runs = {
            "bare loop (requests + json)": ["benchmarks/bare_loop.py", config],
            "tap-cronofy": ["benchmarks/timed_tap.py", config, catalog, "tap"],
            "tap, SDK default writer": [
                "benchmarks/timed_tap.py",
                config,
                catalog,
                "sdk-default-writer",
            ],
            "tap, SDK default writer + conformance": [
                "benchmarks/timed_tap.py",
                config,
                catalog,
                "sdk-defaults",
            ],
        }
        best: dict[str, float] = {}
        for _ in range(ROUNDS):  # interleaved rounds, best of each
            for name, args in runs.items():
                result, _ = run_child(args)
                assert result["records"] == PERIODS, (name, result)
                best[name] = max(best.get(name, 0.0), result["records"] / result["seconds"])
    finally:
        sim.stop()
    print(
        f"\nThroughput, {PERIODS:,} free-busy periods in pages of 500, output to /dev/null "
        f"(best of {ROUNDS})"
    )
    base = best["bare loop (requests + json)"]
    ours = best["tap-cronofy"]
    for name, rate in best.items():
        print(f"  {name:<40} {rate:>10,.0f} records/s   {rate / base:5.2f}x bare loop")
    print(
        f"  tap-cronofy vs SDK default writer: {ours / best['tap, SDK default writer']:.2f}x "
        f"(target >= 2x); vs bare loop: {ours / base:.2f}x (target >= 0.5x)"
    )


if __name__ == "__main__":
    main()
