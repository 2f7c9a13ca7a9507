"""One account's answer the tap cannot read (any field of any period corrupted, the list
missing, a zone no database has) fails that account alone, in this run and the next: every
other account is served and bookmarked, and every record emitted validates against its
schema. The real tap, over HTTP, against the simulator."""

from __future__ import annotations

import copy
import os

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from harness.tap import account_states, run_tap, tap_config
from simulator import Simulator, SimulatorServer
from tap_cronofy.schemas import FREE_BUSY
from tests.unit.test_records import BAD_TIMES, FIELDS, JSON

VALIDATOR = Draft202012Validator(FREE_BUSY, format_checker=FormatChecker())
STREAMS = ["free_busy"]
EXAMPLES = 40 if os.environ.get("HYPOTHESIS_PROFILE") == "deep" else 6


def corruption(kind: str, field: str, value: object, index: int):
    """A function that rewrites one free_busy answer as ``kind`` says."""

    def corrupt(body: dict) -> dict:
        body = copy.deepcopy(body)
        found = body.get("free_busy") or []
        if kind == "no list":
            body.pop("free_busy", None)
        elif kind == "not a list":
            body["free_busy"] = {"calendar_id": "cal_x"}
        elif found and kind == "period not an object":
            found[index % len(found)] = value if not isinstance(value, dict) else [value]
        elif found and kind == "unknown zone":
            found[index % len(found)]["start"] = {"time": "2026-12-24", "tzid": "Mars/Olympus"}
        elif found:
            found[index % len(found)][field] = value
        return body

    return corrupt


@settings(max_examples=EXAMPLES)
@given(
    poisoned=st.integers(0, 3),
    kind=st.sampled_from(
        ["field", "no list", "not a list", "period not an object", "unknown zone"]
    ),
    field=st.sampled_from(FIELDS),
    value=JSON | BAD_TIMES,
    index=st.integers(0, 50),
)
def test_one_poisoned_account_never_stops_the_others(poisoned, kind, field, value, index):
    sim = Simulator(seed=19, accounts=4, events_per_account=10, page_size=50)
    server = SimulatorServer(sim).start()
    try:
        ids = sorted(sim.accounts)
        bad = ids[poisoned]
        sim.corruptions[bad] = corruption(kind, field, value, index)
        config = tap_config(sim, server.url, localized_times=True)
        state = None
        for run_number in (1, 2):
            sim.requests.clear()
            run = run_tap(config, state, streams=STREAMS)
            failed = [a for a in ids if f"FAILED account {a}" in run.stderr]
            assert failed in ([], [bad]), (run_number, failed, run.stderr[-2000:])
            assert run.returncode == (1 if failed else 0), run.stderr[-2000:]
            for record in run.records("free_busy"):
                assert not list(VALIDATOR.iter_errors(record)), record
            states = account_states(run.state)
            queried = {r["account_id"] for r in sim.requests if r["path"] == "/v1/free_busy"}
            for account_id in ids:
                if account_id == bad and failed:
                    continue
                assert account_id in queried, (run_number, account_id)
                assert states[account_id].get("replication_key_value"), (run_number, account_id)
            if failed and run_number == 1:
                assert not states.get(bad, {}).get("replication_key_value"), "bookmark kept"
            state = run.state
    finally:
        server.stop()
