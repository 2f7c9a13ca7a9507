"""Benchmark: requests per account per hour, change-driven against polling, in the same run.

10,000 accounts (BENCH_PUSH_ACCOUNTS), 24 simulated hours (BENCH_PUSH_HOURS), 5% of the
accounts changed each hour. The simulator (its own process) notifies the receiver (the real
`tap-cronofy-push receive`, SQLite change log) of each change; then the same hour is run
twice, by a change-driven tap and by a polling tap, each with its own state, and every
request the simulator serves is counted. The first syncs and the channels are not counted
(each is paid once; the channels' cost is printed apart).

    make bench-push     (about 40 minutes at 10,000 accounts; BENCH_PUSH_ACCOUNTS=1000 quick)
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import PYTHON, ROOT, fleet_simulator

sys.path.insert(0, str(ROOT))
from harness.project import SimulatorProcess, free_port, wait_until_healthy

ACCOUNTS = int(os.environ.get("BENCH_PUSH_ACCOUNTS", "10000"))
HOURS = int(os.environ.get("BENCH_PUSH_HOURS", "24"))
CHANGED_SHARE = 0.05
FAST = {"requests_per_second": 100000, "requests_per_minute": 10000000}


def served(sim: SimulatorProcess) -> int:
    """Requests served since the last call (the log is emptied)."""
    count = sim.control("GET", "stats")["requests"]
    sim.control("DELETE", "requests")
    return count


def tap(config: dict, state: dict | None, tmp: Path) -> dict:
    (tmp / "config.json").write_text(json.dumps(config))
    catalog = json.loads((ROOT / "catalog.json").read_text())
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] in ("free_busy", "accounts")
    (tmp / "catalog.json").write_text(json.dumps(catalog))
    args = [PYTHON, "-m", "tap_cronofy", "--config", str(tmp / "config.json")]
    args += ["--catalog", str(tmp / "catalog.json")]
    if state is not None:
        (tmp / "state.json").write_text(json.dumps(state))
        args += ["--state", str(tmp / "state.json")]
    last = None
    with subprocess.Popen(
        args,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "LOGLEVEL": "WARNING"},
    ) as process:
        for line in process.stdout:  # type: ignore[union-attr]
            if b'"type":"STATE"' in line[:40]:
                last = line
    if process.returncode != 0:
        raise RuntimeError(f"the tap failed ({process.returncode})")
    assert last is not None
    return json.loads(last)["value"]


def main() -> None:
    started = time.monotonic()
    sim = fleet_simulator(ACCOUNTS)
    tmp = Path(tempfile.mkdtemp(prefix="bench-push-"))
    port = free_port()
    receiver = None
    try:
        sim.control("POST", "config", {"log_bodies": False})
        settings = sim.tap_settings()
        settings.pop("scheduling_request_ids")
        hook = f"http://127.0.0.1:{port}/cronofy/notifications"
        polling = {**settings, **FAST}
        push = {**polling, "change_log": str(tmp / "changes.db"), "notification_url": hook}
        (tmp / "push.json").write_text(json.dumps(push))
        command = [PYTHON, "-m", "tap_cronofy.push"]
        receiver = subprocess.Popen(
            [*command, "receive", "--port", str(port), "--config", str(tmp / "push.json")],
            cwd=ROOT,
            stderr=subprocess.DEVNULL,
        )
        wait_until_healthy(port, receiver)
        subprocess.run(
            [PYTHON, "-m", "tap_cronofy.push", "channels", "--config", str(tmp / "push.json")],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        sim.control("POST", "push/flush", {"timeout": 600})
        channels = served(sim)
        states = {"push": tap(push, None, tmp), "polling": tap(polling, None, tmp)}
        served(sim)
        rng = random.Random(7)
        ids = sorted(a["account_id"] for a in settings["accounts"])
        spent = {"push": 0, "polling": 0}
        for hour in range(HOURS):
            sim.control("POST", "advance", {"seconds": 3600})
            changed = rng.sample(ids, round(CHANGED_SHARE * len(ids)))
            sim.control("POST", "changes", {"account_ids": changed})
            assert sim.control("POST", "push/flush", {"timeout": 600})["flushed"]
            for mode, config in (("push", push), ("polling", polling)):
                states[mode] = tap(config, states[mode], tmp)
                spent[mode] += served(sim)
            print(
                f"hour {hour + 1:2d}: push {spent['push'] / ACCOUNTS / (hour + 1):.3f}, "
                f"polling {spent['polling'] / ACCOUNTS / (hour + 1):.3f} requests/account/hour",
                flush=True,
            )
        per_hour = {mode: n / ACCOUNTS / HOURS for mode, n in spent.items()}
        print(
            f"\n{ACCOUNTS} accounts, {HOURS} hours, {CHANGED_SHARE:.0%} changed an hour; "
            f"channels cost {channels / ACCOUNTS:.1f} requests/account once; "
            f"{time.monotonic() - started:.0f} s"
        )
        print(
            f"push requests/account/hour = {per_hour['push']:.3f}; "
            f"polling = {per_hour['polling']:.3f}"
        )
        share = per_hour["push"] * ACCOUNTS / (500 * 60)
        print(f"change-driven: {share:.1%} of Cronofy's 500 requests/minute for this fleet")
    finally:
        if receiver is not None:
            receiver.terminate()
            receiver.wait(timeout=30)
        sim.stop()


if __name__ == "__main__":
    main()
