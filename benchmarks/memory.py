"""Benchmark 2: peak RSS of a tap process syncing 10,000 vs 200,000 periods.

make bench-memory
"""

from __future__ import annotations

import os

from common import bulk_simulator, free_busy_catalog, run_child, unlimited_config

SIZES = [int(s) for s in os.environ.get("BENCH_MEMORY_SIZES", "10000,200000").split(",")]


def peak_rss_kib(periods: int) -> int:
    sim = bulk_simulator(periods)
    try:
        config = unlimited_config(sim)
        result, rss = run_child(["benchmarks/timed_tap.py", config, free_busy_catalog(), "tap"])
        assert result["records"] == periods, result
        return rss
    finally:
        sim.stop()


def main() -> None:
    peaks = {size: peak_rss_kib(size) for size in SIZES}
    print("\nPeak RSS of the tap process (whole process, output to /dev/null)")
    for size, rss in peaks.items():
        print(f"  {size:>9,} periods: {rss / 1024:7.1f} MiB")
    small, large = peaks[SIZES[0]], peaks[SIZES[-1]]
    print(f"  ratio {SIZES[-1]:,} / {SIZES[0]:,}: {large / small:.2f}x (target <= 1.25x)")


if __name__ == "__main__":
    main()
