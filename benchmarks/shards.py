"""`make bench-shards`: a simulated fleet whose Cronofy quota binds, read by one process,
then by N shard processes sharing the quota (PostgreSQL), in one run; then the same fleet
with the quota lifted, for the wall-time ratio of N processes to one on this machine; and
the state bytes per account. Prints, first:

shards: 1-proc X s, N-proc Y s; requests N-proc = A (1-proc = B);
    peak requests/min = P (limit L); 429 answers = Z; records equal: yes|no
(one line: wrapped here only).

BENCH_ACCOUNTS (default 400), BENCH_SHARDS (4), BENCH_LIMIT (requests per minute, 400)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from common import PYTHON, ROOT, fleet_simulator, free_busy_catalog, free_busy_config

from harness.postgres import PostgresServer, find_bindir
from harness.project import SimulatorProcess, free_port

ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "400"))
SHARDS = int(os.environ.get("BENCH_SHARDS", "4"))
LIMIT = int(os.environ.get("BENCH_LIMIT", "400"))


def tap(config: dict, catalog: str) -> tuple[set[tuple], dict, float]:
    """One tap process: the keys it emitted, its final state, and its wall time."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(config, handle)
    started = time.monotonic()
    done = subprocess.run(
        [PYTHON, "-m", "tap_cronofy", "--config", handle.name, "--catalog", catalog],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LOGLEVEL": "WARNING"},
    )
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    keys, state = set(), {}
    for line in done.stdout.splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            r = message["record"]
            keys.add((r["account_id"], r["calendar_id"], r["event_uid"]))
        elif message["type"] == "STATE":
            state = message["value"]
    return keys, state, elapsed


def shards(config: dict, catalog: str, count: int) -> tuple[set[tuple], list[dict], float]:
    started = time.monotonic()
    with ThreadPoolExecutor(count) as pool:
        runs = list(
            pool.map(lambda k: tap({**config, "shard": f"{k}/{count}"}, catalog), range(count))
        )
    return set().union(*(r[0] for r in runs)), [r[1] for r in runs], time.monotonic() - started


def peak_per_minute(sim: SimulatorProcess) -> int:
    arrivals = sorted(r["at"] for r in sim.control("GET", "requests"))
    return max(
        (sum(1 for t in arrivals[i:] if t < s + 60) for i, s in enumerate(arrivals)), default=0
    )


def main() -> None:
    if find_bindir() is None:
        raise SystemExit(
            "bench-shards needs PostgreSQL's server (Debian's postgresql) for the shared quota"
        )
    postgres = PostgresServer(free_port())
    sim = fleet_simulator(ACCOUNTS)
    try:
        catalog = free_busy_catalog()
        quota = f"postgresql://{postgres.user}@127.0.0.1:{postgres.port}/postgres"
        # both phases draw on the one bucket, as every process of the application would
        config = free_busy_config(
            sim, requests_per_minute=LIMIT, requests_per_second=50, shared_quota=quota
        )
        sim.control("POST", "config", {"rate_limits": [[LIMIT, 60]]})

        def fresh() -> None:  # every run a first sync, from an empty request log
            sim.control("DELETE", "requests")

        fresh()
        one_keys, one_state, one_time = tap(config, catalog)
        one_requests = len(sim.control("GET", "requests"))
        before = sim.control("GET", "stats")["rate_limited"]
        fresh()
        many_keys, _, many_time = shards(config, catalog, SHARDS)
        many_requests = len(sim.control("GET", "requests"))
        peak = peak_per_minute(sim)
        refused = sim.control("GET", "stats")["rate_limited"] - before
        print(
            f"shards: 1-proc {one_time:.1f} s, {SHARDS}-proc {many_time:.1f} s; requests "
            f"{SHARDS}-proc = {many_requests} (1-proc = {one_requests}); peak requests/min = "
            f"{peak} (limit {LIMIT}); 429 answers = {refused}; records equal: "
            f"{'yes' if one_keys == many_keys else 'no'}",
            flush=True,
        )
        sim.control("POST", "config", {"rate_limits": []})
        lifted = {**config, "requests_per_minute": 10**7, "requests_per_second": 10**5}
        lifted.pop("shared_quota")
        _, _, one_free = tap(lifted, catalog)
        _, _, many_free = shards(lifted, catalog, SHARDS)
        print(
            f"quota lifted: 1-proc {one_free:.1f} s, {SHARDS}-proc {many_free:.1f} s: "
            f"ratio {many_free / one_free:.2f} on {os.cpu_count()} cores",
            flush=True,
        )
        size = len(json.dumps(one_state, separators=(",", ":")))
        print(f"state: {size / ACCOUNTS:.0f} bytes per account ({size} for {ACCOUNTS})")
    finally:
        sim.stop()
        postgres.stop()


if __name__ == "__main__":
    main()
