"""Shared pieces of the benchmarks: the simulator process, configs, timed child processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.project import SimulatorProcess  # noqa: E402

PYTHON = sys.executable


def bulk_simulator(periods: int, page_size: int = 500) -> SimulatorProcess:
    """One account holding ``periods`` plain in-window events."""
    return SimulatorProcess(
        "--accounts",
        "1",
        "--events-per-account",
        "0",
        "--bulk-events",
        str(periods),
        "--page-size",
        str(page_size),
        "--scheduling-requests",
        "60",
    )


def fleet_simulator(accounts: int) -> SimulatorProcess:
    """A simulator of ``accounts`` small accounts (4 events each, pages of 100), no
    scheduling requests: the fleet benchmarks' data."""
    return SimulatorProcess(
        "--accounts",
        str(accounts),
        "--events-per-account",
        "4",
        "--page-size",
        "100",
        "--scheduling-requests",
        "0",
    )


def unlimited_config(sim: SimulatorProcess) -> str:
    """Config file with client-side rate limits lifted (to measure per-record cost, not
    the quota), after a warm-up pass that fills the simulator's page cache."""
    settings = free_busy_config(sim, requests_per_second=100000, requests_per_minute=10000000)
    for account in settings["accounts"]:
        # No refresh: a refreshed token would invalidate the one the bare loop sends.
        account.pop("refresh_token", None)
    config = write_json(settings)
    run_child(["benchmarks/bare_loop.py", config])
    return config


def free_busy_config(sim: SimulatorProcess, **overrides: object) -> dict:
    settings = sim.tap_settings()
    settings.pop("scheduling_request_ids")
    settings.update(overrides)
    return settings


def write_json(data: object) -> str:
    handle = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115
    json.dump(data, handle)
    handle.close()
    return handle.name


def free_busy_catalog() -> str:
    catalog = json.loads((ROOT / "catalog.json").read_text())
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] == "free_busy"
    return write_json(catalog)


def run_child(args: list[str]) -> tuple[dict, int]:
    """Run a Python child whose last stdout line is JSON; return it and its peak RSS (KiB)."""
    errors = tempfile.TemporaryFile()  # noqa: SIM115
    process = subprocess.Popen(
        [PYTHON, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=errors,
        env={**os.environ, "LOGLEVEL": "WARNING"},
    )
    output = process.stdout.read().decode() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        errors.seek(0)
        tail = errors.read().decode(errors="replace")[-2000:]
        raise RuntimeError(f"{args} failed with {process.returncode}:\n{tail}")
    return json.loads(output.strip().splitlines()[-1]), usage.ru_maxrss
