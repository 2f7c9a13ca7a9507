"""Benchmark 1: CPU per record and records/s of the tap vs bare requests+json and urllib+json
loops and vs the SDK's default message writer, on the same simulator pages in one run. CPU time
(every thread of the child process) is the measure of the tap's own cost: wall time also
holds network waits and, in real runs, rate-limit sleeps.

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
            "bare loop (urllib + json)": ["benchmarks/bare_loop.py", config, "urllib"],
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
        cpu: dict[str, float] = {}  # microseconds of CPU per record, best round
        for _ in range(ROUNDS):  # interleaved rounds, best of each
            for name, args in runs.items():
                result, _ = run_child(args)
                assert result["records"] == PERIODS, (name, result)
                best[name] = max(best.get(name, 0.0), result["records"] / result["seconds"])
                per_record = result["cpu"] / result["records"] * 1e6
                cpu[name] = min(cpu.get(name, per_record), per_record)
    finally:
        sim.stop()
    print(
        f"\nThroughput, {PERIODS:,} free-busy periods in pages of 500, output to /dev/null "
        f"(best of {ROUNDS})"
    )
    bare = "bare loop (requests + json)"
    for name, rate in best.items():
        print(
            f"  {name:<40} {cpu[name]:6.1f} us CPU/record ({cpu[name] / cpu[bare]:4.2f}x bare)"
            f"   {rate:>9,.0f} records/s"
        )
    lean = "bare loop (urllib + json)"
    print(
        f"  tap-cronofy CPU per record: {cpu['tap-cronofy'] / cpu[bare]:.2f}x the requests loop, "
        f"{cpu['tap-cronofy'] / cpu[lean]:.2f}x the urllib loop (bar <= 2x); "
        f"{cpu['tap, SDK default writer'] / cpu['tap-cronofy']:.2f}x less than with the SDK's "
        "default writer"
    )


if __name__ == "__main__":
    main()
