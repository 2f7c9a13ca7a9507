"""Benchmark 2: growth. Peak RSS and CPU per record of a tap process syncing 10,000 vs
200,000 periods of one account: both should stay flat as an account grows (a per-record
cost that grows with the account's size is work that is not linear).

make bench-memory
"""

from __future__ import annotations

import os

from common import bulk_simulator, free_busy_catalog, run_child, unlimited_config

SIZES = [int(s) for s in os.environ.get("BENCH_MEMORY_SIZES", "10000,200000").split(",")]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))


def measure(periods: int) -> tuple[int, float]:
    """Peak RSS (KiB) and CPU microseconds per record of one sync of ``periods``."""
    sim = bulk_simulator(periods)
    try:
        config, catalog = unlimited_config(sim), free_busy_catalog()
        best: tuple[int, float] | None = None
        for _ in range(ROUNDS):  # CPU time is noisy on a shared machine: best of the rounds
            result, rss = run_child(["benchmarks/timed_tap.py", config, catalog, "tap"])
            assert result["records"] == periods, result
            cpu = result["cpu"] / periods * 1e6
            best = (rss, cpu) if best is None else (min(best[0], rss), min(best[1], cpu))
        assert best is not None
        return best
    finally:
        sim.stop()


def main() -> None:
    results = {size: measure(size) for size in SIZES}
    print("\nGrowth of one account's sync (whole process, output to /dev/null)")
    for size, (rss, cpu) in results.items():
        print(f"  {size:>9,} periods: peak RSS {rss / 1024:7.1f} MiB, {cpu:6.1f} us CPU/record")
    (small_rss, small_cpu), (large_rss, large_cpu) = results[SIZES[0]], results[SIZES[-1]]
    per_period = (large_rss - small_rss) * 1024 / (SIZES[-1] - SIZES[0])
    print(
        f"  ratio {SIZES[-1]:,} / {SIZES[0]:,}: peak RSS {large_rss / small_rss:.2f}x "
        f"({per_period:.0f} bytes per extra period), CPU per record "
        f"{large_cpu / small_cpu:.2f}x (targets <= 1.25x)"
    )


if __name__ == "__main__":
    main()
