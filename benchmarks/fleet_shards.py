"""`make bench-fleet-shards`: a fleet of BENCH_ACCOUNTS (default 100,000) simulated accounts
run end to end as BENCH_SHARDS (default 8) shards: each shard a partition of the Dagster
asset in orchestration/, materialized with Dagster's own API, each a real `meltano run
tap-cronofy target-duckdb` with its shard and state id suffix, into one DuckDB warehouse.
The accounts come from an `accounts_file`; the Cronofy quota is lifted (a first sync of
100,000 accounts at 500 requests a minute would take most of a week). Prints one line:

fleet: A accounts, N shards under Dagster + Meltano into DuckDB: T s (shards a to b s);
    requests = R (r per account); 429 answers = Z; rows equal to Cronofy's: yes|no;
    every account in exactly one shard's state: yes|no; state bytes per account = S,
    spelled out S0 (largest shard state M MiB)
(one line: wrapped here only).

    make bench-fleet-shards      (100,000 accounts: about an hour on 2 cores)
    BENCH_ACCOUNTS=2000 make bench-fleet-shards     (a quick one)
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "orchestration")]

import dagster as dg  # noqa: E402
import duckdb  # noqa: E402

from harness.project import meltano, meltano_env  # noqa: E402
from harness.tap import expected_first_sync  # noqa: E402
from simulator import Simulator, SimulatorServer  # noqa: E402
from tap_cronofy.statecodec import expand  # noqa: E402

ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "100000"))
SHARDS = int(os.environ.get("BENCH_SHARDS", "8"))


def main() -> None:
    sim = Simulator(
        seed=5, accounts=ACCOUNTS, events_per_account=4, page_size=100, scheduling_requests=0
    )
    server = SimulatorServer(sim).start()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            run(sim, server.url, Path(tmp))
        finally:
            server.stop()


def run(sim: Simulator, url: str, tmp: Path) -> None:
    settings = sim.tap_config(url)
    accounts_file = tmp / "accounts.json"
    accounts_file.write_text(json.dumps(settings.pop("accounts")))
    settings.pop("scheduling_request_ids")
    settings.update(
        accounts_file=str(accounts_file), requests_per_minute=10**7, requests_per_second=10**5
    )
    warehouse = tmp / "warehouse.duckdb"
    env = meltano_env(
        settings,
        MELTANO_DATABASE_URI=f"sqlite:///{tmp / 'meltano.db'}",
        TARGET_DUCKDB_FILEPATH=str(warehouse),
        MELTANO_PROJECT_ROOT=str(ROOT),
        CRONOFY_SHARDS=str(SHARDS),
        CRONOFY_LOADER="target-duckdb",
        CRONOFY_RETRY_DELAY="0",
        LOGLEVEL="WARNING",
    )
    os.environ.update(env)
    module = importlib.import_module("cronofy_shards.definitions")
    meltano("--log-level=warning", "select", "tap-cronofy", "--list", env=env)  # project ready
    instance = dg.DagsterInstance.ephemeral()
    times = []
    started = time.monotonic()
    for shard in range(SHARDS):
        began = time.monotonic()
        result = dg.materialize([module.cronofy_shard], partition_key=str(shard), instance=instance)
        if not result.success:
            raise SystemExit(f"shard {shard} failed")
        times.append(time.monotonic() - began)
        print(f"  shard {shard}/{SHARDS}: {times[-1]:.0f} s", file=sys.stderr, flush=True)
    elapsed = time.monotonic() - started
    requests = len(sim.requests)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select account_id, calendar_id, event_uid from cronofy.free_busy "
            "where _sdc_deleted_at is null"
        ).fetchall()
    equal = len(rows) == len(set(rows)) and set(rows) == expected_first_sync(sim)
    seen: list[str] = []
    sizes, spelled = [], []
    for shard in range(SHARDS):
        state_id = f"dev:tap-cronofy-to-target-duckdb:shard-{shard}"
        text = meltano("--log-level=warning", "state", "get", state_id, env=env).stdout
        value = json.loads(text)
        sizes.append(len(json.dumps(value, separators=(",", ":"))))
        full = expand(copy.deepcopy(value["singer_state"]))  # as before statecodec
        spelled.append(len(json.dumps({"singer_state": full}, separators=(",", ":"))))
        seen += list(value["singer_state"]["bookmarks"]["free_busy"]["accounts"])
    once = len(seen) == len(set(seen)) and set(seen) == set(sim.accounts)
    print(
        f"fleet: {ACCOUNTS} accounts, {SHARDS} shards under Dagster + Meltano into DuckDB: "
        f"{elapsed:.0f} s (shards {min(times):.0f} to {max(times):.0f} s); requests = "
        f"{requests} ({requests / ACCOUNTS:.2f} per account); 429 answers = "
        f"{sim.rate_limited_count}; rows equal to Cronofy's: {'yes' if equal else 'no'}; "
        f"every account in exactly one shard's state: {'yes' if once else 'no'}; state "
        f"bytes per account = {sum(sizes) / ACCOUNTS:.0f}, spelled out "
        f"{sum(spelled) / ACCOUNTS:.0f} (largest shard state {max(sizes) / 2**20:.1f} MiB)",
        flush=True,
    )


if __name__ == "__main__":
    main()
