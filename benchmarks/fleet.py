"""Benchmark: what a fleet costs, before (BENCH_BASELINE, default the last commit before the
quota work) and after (this tree), measured in the same run on the same simulated data.

Part 1, quota: 24 simulated hourly runs of 20 accounts with refresh tokens, 5 changes an
hour, every stream selected, default settings, over one whole day (the first sync at 23:30,
then runs from 00:30 to 23:30). Requests per account by endpoint on the day's cheapest and
costliest runs and over the day, and the largest fleet an hourly schedule fits within 100%
and 20% of Cronofy's 500 requests/minute (the costliest run decides).

Part 2, growth: one first sync of 200, 1,000 and 10,000 accounts (free_busy, calendars and
accounts). CPU per extra account from 200 to 1,000 and from 1,000 to 10,000 (the ratio of
the two is 1.0 for linear work), peak RSS per account, and STATE bytes against the final
state's.

    make bench-fleet            (about 15 minutes; BENCH_FLEET_SIZES=200,1000 for a quick one)
"""

from __future__ import annotations

import collections
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import PYTHON, ROOT, fleet_simulator

sys.path.insert(0, str(ROOT))
from harness.tap import request_owner
from simulator import Simulator, SimulatorServer

BASELINE = os.environ.get("BENCH_BASELINE", "ca1fce4")
SIZES = [int(n) for n in os.environ.get("BENCH_FLEET_SIZES", "200,1000,10000").split(",")]
DAY_ACCOUNTS, HOURS, CHANGES_PER_HOUR = 20, 24, 5
QUOTA_PER_HOUR = 500 * 60
ENDPOINTS = ("/oauth/token", "/v1/free_busy", "/v1/userinfo", "/v1/calendars")
STREAMS = ("free_busy", "calendars", "accounts", "scheduling_requests")


@dataclass(frozen=True)
class Version:
    name: str
    root: Path  # holds the tap_cronofy package to run

    def command(self) -> list[str]:
        return [PYTHON, "-m", "tap_cronofy"]

    def catalog(self, streams: tuple[str, ...]) -> dict:
        out = subprocess.run(
            [*self.command(), "--discover"], cwd=self.root, capture_output=True, check=True
        ).stdout
        catalog = json.loads(out)
        for entry in catalog["streams"]:
            for item in entry["metadata"]:
                if item["breadcrumb"] == []:
                    item["metadata"]["selected"] = entry["tap_stream_id"] in streams
        return catalog

    def run(self, config: dict, catalog: dict, state: dict | None) -> dict:
        """One run as a process: its last STATE, STATE bytes, records, CPU s, peak RSS KiB."""
        with tempfile.TemporaryDirectory() as tmp:
            paths = {}
            for name, value in (("config", config), ("catalog", catalog), ("state", state)):
                if value is not None:
                    paths[name] = Path(tmp, f"{name}.json")
                    paths[name].write_text(json.dumps(value))
            args = [*self.command(), "--config", str(paths["config"])]
            args += ["--catalog", str(paths["catalog"])]
            if "state" in paths:
                args += ["--state", str(paths["state"])]
            out_path = Path(tmp, "out.jsonl")
            with out_path.open("wb") as out, tempfile.TemporaryFile() as err:
                process = subprocess.Popen(
                    args,
                    cwd=self.root,
                    stdout=out,
                    stderr=err,
                    env={**os.environ, "LOGLEVEL": "WARNING", "PYTHONPATH": str(self.root)},
                )
                _, status, usage = os.wait4(process.pid, 0)
                if os.waitstatus_to_exitcode(status) != 0:
                    err.seek(0)
                    tail = err.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"{self.name} failed:\n{tail}")
            last_state, state_bytes, records = None, 0, 0
            with out_path.open("rb") as lines:
                for line in lines:
                    if line.startswith(b'{"type":"STATE"') or b'"type":"STATE"' in line[:40]:
                        state_bytes += len(line)
                        last_state = json.loads(line)["value"]
                    elif b'"type":"RECORD"' in line[:40]:
                        records += 1
        return {
            "state": last_state,
            "state_bytes": state_bytes,
            "records": records,
            "cpu": usage.ru_utime + usage.ru_stime,
            "rss": usage.ru_maxrss,
        }


def baseline() -> Version:
    """The baseline's package, unpacked from git into .bench/baseline-REF."""
    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short", BASELINE], cwd=ROOT, capture_output=True, check=True
        )
        .stdout.decode()
        .strip()
    )
    target = ROOT / ".bench" / f"baseline-{commit}"
    if not (target / "tap_cronofy").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit, "tap_cronofy"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        with tempfile.TemporaryFile() as handle:
            handle.write(archive)
            handle.seek(0)
            with tarfile.open(fileobj=handle) as tar:
                tar.extractall(target, filter="data")
    return Version(f"before ({commit})", target)


# Part 1: a simulated day


def endpoint(path: str) -> str:
    return "/v1/free_busy" if path.startswith("/v1/free_busy") else path


def day_of_runs(version: Version) -> dict:
    sim = Simulator(seed=3, accounts=DAY_ACCOUNTS, events_per_account=20)
    server = SimulatorServer(sim).start()
    rng = random.Random(5)
    try:
        config = sim.tap_config(server.url)
        catalog = version.catalog(STREAMS)
        # The first sync at 23:30, then 24 hourly runs from 00:30 to 23:30: one whole day.
        sim.advance((23.5 * 3600 - sim.now() % 86400) % 86400)
        per_run: list[collections.Counter] = []
        state = None
        for hour in range(HOURS + 1):  # the first sync, then 24 hourly runs
            if hour:
                for _ in range(CHANGES_PER_HOUR):
                    sim.create_event(
                        rng.choice(sorted(sim.accounts)), event_uid=f"evt_{rng.random()}"
                    )
                sim.advance(3600)
            sim.requests.clear()
            state = version.run(config, catalog, state)["state"]
            counted: collections.Counter = collections.Counter()
            for request in sim.requests:
                if request_owner(sim, request) is not None:
                    counted[endpoint(request["path"])] += 1
            per_run.append(counted)
        runs = per_run[1:]  # the day after the first sync
        cheapest = min(runs, key=lambda c: sum(c.values()))
        costliest = max(runs, key=lambda c: sum(c.values()))
        day = sum(runs, collections.Counter())
        return {
            "cheapest run of the day": {e: cheapest[e] / DAY_ACCOUNTS for e in ENDPOINTS},
            "costliest run": {e: costliest[e] / DAY_ACCOUNTS for e in ENDPOINTS},
            "per account per day": {e: day[e] / DAY_ACCOUNTS for e in ENDPOINTS},
        }
    finally:
        server.stop()


# Part 2: growth


def first_sync(version: Version, accounts: int, catalog: dict) -> dict:
    sim = fleet_simulator(accounts)
    try:
        config = sim.tap_settings()
        config.pop("scheduling_request_ids")
        config.update(requests_per_second=100000, requests_per_minute=10000000)
        result = version.run(config, catalog, None)
        final = len(json.dumps(result["state"], separators=(",", ":")))
        return {**result, "final_state": final}
    finally:
        sim.process.terminate()
        sim.process.wait()


def growth(version: Version) -> dict[int, dict]:
    catalog = version.catalog(("free_busy", "calendars", "accounts"))
    return {n: first_sync(version, n, catalog) for n in SIZES}


def main() -> None:
    versions = [baseline(), Version("after (this tree)", ROOT)]
    started = time.monotonic()
    print(
        f"Part 1: {DAY_ACCOUNTS} accounts, {HOURS} hourly runs, {CHANGES_PER_HOUR} changes an hour"
    )
    days = {v.name: day_of_runs(v) for v in versions}
    print("\n| version | requests per account | " + " | ".join(ENDPOINTS) + " | total |")
    print("| --- | --- |" + " --- |" * (len(ENDPOINTS) + 1))
    for name, day in days.items():
        for row, counts in day.items():
            cells = " | ".join(f"{counts[e]:g}" for e in ENDPOINTS)
            print(f"| {name} | {row} | {cells} | **{sum(counts.values()):g}** |")
    print("\n| version | largest hourly fleet, 100% of the quota | at 20% |")
    print("| --- | --- | --- |")
    for name, day in days.items():
        peak = sum(day["costliest run"].values())
        print(
            f"| {name} | {int(QUOTA_PER_HOUR // peak):,} | {int(QUOTA_PER_HOUR * 0.2 // peak):,} |"
        )

    print(f"\nPart 2: one first sync of {', '.join(f'{n:,}' for n in SIZES)} accounts")
    print(
        "| version | accounts | CPU s | CPU ms per extra account | peak RSS KiB per account "
        "| STATE bytes / final state |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for version in versions:
        results = growth(version)
        previous = None
        for n, r in results.items():
            extra = (
                ""
                if previous is None
                else (f"{(r['cpu'] - previous[1]['cpu']) / (n - previous[0]) * 1000:.2f}")
            )
            print(
                f"| {version.name} | {n:,} | {r['cpu']:.1f} | {extra} | {r['rss'] / n:.1f} | "
                f"{r['state_bytes'] / max(r['final_state'], 1):.1f} |"
            )
            previous = (n, r)
        if len(SIZES) >= 3:
            a, b, c = SIZES[-3:]
            low = (results[b]["cpu"] - results[a]["cpu"]) / (b - a)
            high = (results[c]["cpu"] - results[b]["cpu"]) / (c - b)
            print(
                f"|  {version.name}: CPU per extra account, {b:,}-{c:,} vs {a:,}-{b:,}: "
                f"{high / low:.2f}x | | | | | |"
            )
    print(f"\n({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
