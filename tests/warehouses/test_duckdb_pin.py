"""Why meltano.yml pins duckdb==1.2.2 for target-duckdb 0.8.0: with duckdb 1.3 or later the
target loses rows. Its batch CSV files have no header line and its COPY does not say so, so
DuckDB guesses, and from 1.3 on it takes some first rows (a calendar row, say) for a header.
This test reproduces it with the real target: the same Singer input, loaded by the same
target, with the pinned duckdb and with 1.3.2 put in front of it. When a later target-duckdb
stops losing rows, this test fails: lift the pin then."""

from __future__ import annotations

import json
import subprocess
import sys

import duckdb

from harness.tap import ROOT, run_tap, tap_config

TARGET = ROOT / ".meltano" / "loaders" / "target-duckdb" / "venv"


def load(tmp_path, singer: str, name: str, pythonpath: str | None) -> int:
    database = tmp_path / f"{name}.duckdb"
    config = tmp_path / f"{name}.json"
    config.write_text(
        json.dumps(
            {"filepath": str(database), "default_target_schema": "cronofy", "batch_size_rows": 1}
        )
    )
    env = {"PATH": str(TARGET / "bin")}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    subprocess.run(
        [str(TARGET / "bin" / "target-duckdb"), "--config", str(config)],
        input=singer,
        text=True,
        capture_output=True,
        check=True,
        env=env,
    )
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute("select count(*) from cronofy.calendars").fetchone()[0]


def without_column(singer: str, name: str) -> str:
    """The same Singer messages without one property of every SCHEMA and RECORD."""
    lines = []
    for line in singer.splitlines():
        message = json.loads(line)
        if message["type"] == "SCHEMA":
            message["schema"]["properties"].pop(name, None)
        elif message["type"] == "RECORD":
            message["record"].pop(name, None)
        lines.append(json.dumps(message))
    return "\n".join(lines) + "\n"


def test_target_duckdb_loses_rows_with_duckdb_1_3_so_the_pin_stays(sim, tmp_path):
    run = run_tap(tap_config(sim, sim.url), streams=["calendars"])
    assert run.returncode == 0, run.stderr
    calendars = len(run.records("calendars"))
    assert calendars >= 3
    newer = tmp_path / "duckdb-1.3.2"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(newer),
            "duckdb==1.3.2",
        ],
        check=True,
        capture_output=True,
    )
    # Calendar rows whose last column is empty (a calendar not deleted: _sdc_deleted_at
    # null) are not taken for a header; rows ending in a value are. The bug is the target's
    # whatever the data: the rows without that column show it.
    singer = without_column(run.stdout, "_sdc_deleted_at")
    pinned_rows = load(tmp_path, singer, "pinned", None)
    newer_rows = load(tmp_path, singer, "newer", str(newer))
    assert pinned_rows == calendars, "with duckdb 1.2.2 every row is loaded"
    assert newer_rows < calendars, (
        f"with duckdb 1.3.2 target-duckdb loaded {newer_rows} of {calendars} rows: if it "
        "loads them all now, the pin in meltano.yml can go"
    )
    pinned = subprocess.run(
        [str(TARGET / "bin" / "python"), "-c", "import duckdb; print(duckdb.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert pinned == "1.2.2" and "duckdb==1.2.2" in (ROOT / "meltano.yml").read_text()
