"""The catalog's columns as Snowflake's and BigQuery's loaders type them, by their own code
(MeltanoLabs target-snowflake, z3 target-bigquery, in their Meltano venvs; no network)."""

from __future__ import annotations

import json
import subprocess

from harness.tap import ROOT

PROBES = ROOT / "tests" / "warehouse_probes"
TIMES = ("start_time", "end_time", "last_modified", "_sdc_deleted_at")


def probe(loader: str, script: str) -> dict:
    python = ROOT / ".meltano" / "loaders" / loader / "venv" / "bin" / "python"
    assert python.exists(), f"{loader} is not installed: run `make plugins`"
    result = subprocess.run(
        [str(python), str(PROBES / script), str(ROOT / "catalog.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_snowflake_types_and_reserved_words():
    found = probe("target-snowflake", "snowflake_types.py")
    free_busy = found["types"]["free_busy"]
    assert all(free_busy[c] == "TIMESTAMP_NTZ" for c in TIMES), "UTC timestamps, not text"
    assert free_busy["all_day"] == free_busy["deleted"] == "BOOLEAN"
    assert free_busy["start"] == free_busy["end"] == "VARCHAR"  # dates or times, as sent
    assert free_busy["start_date"] == free_busy["end_date"] == "DATE", "typed all-day days"
    requests = found["types"]["scheduling_requests"]
    for nested in ("recipients", "collaborator_groups", "event", "buffer", "recipient_operations"):
        assert requests[nested] == "VARIANT", nested
    assert found["types"]["calendars"]["calendar_primary"] == "BOOLEAN"
    accounts = found["types"]["accounts"]
    for nested in ("profiles", "conferencing_profiles", "authorization"):
        assert accounts[nested] == "VARIANT", nested
    assert requests["duration"] == "VARIANT"
    assert found["identifiers"] == {"start": '"start"', "end": '"end"', "account_id": "account_id"}


def test_bigquery_types_and_reserved_words():
    found = probe("target-bigquery", "bigquery_types.py")["types"]
    free_busy = found["free_busy"]
    assert all(free_busy[f"`{c}`"]["type"] == "TIMESTAMP" for c in TIMES)
    assert free_busy["`all_day`"]["type"] == free_busy["`deleted`"]["type"] == "BOOLEAN"
    assert "`start`" in free_busy and "`end`" in free_busy, "reserved words are quoted"
    assert free_busy["`start_date`"]["type"] == free_busy["`end_date`"]["type"] == "DATE"
    requests = found["scheduling_requests"]
    assert requests["`recipients`"] == {
        "type": "RECORD",
        "mode": "REPEATED",
        "fields": {
            "email": {"type": "STRING", "mode": "NULLABLE"},
            "display_name": {"type": "STRING", "mode": "NULLABLE"},
            "slot_selector": {"type": "BOOLEAN", "mode": "NULLABLE"},
            "select_url": {"type": "STRING", "mode": "NULLABLE"},
        },
    }
    event = requests["`event`"]["fields"]
    assert event["metadata"]["type"] == "JSON", "free-form objects stay JSON"
    assert event["start"]["fields"]["time"]["type"] == "TIMESTAMP"
    groups = requests["`collaborator_groups`"]["fields"]
    assert groups["required"]["type"] == "STRING", "'all' or a number: kept as text"
    assert requests["`duration`"]["type"] == "RECORD"
    accounts = found["accounts"]
    for repeated in ("`profiles`", "`conferencing_profiles`"):
        assert (accounts[repeated]["type"], accounts[repeated]["mode"]) == ("RECORD", "REPEATED")
    assert accounts["`authorization`"]["type"] == "RECORD"
