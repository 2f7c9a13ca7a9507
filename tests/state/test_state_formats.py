"""States written by earlier releases (tests/fixtures/state/, each written by that commit's
own tap) are read incrementally by this one, and a state from a newer release is refused
in one line, before any request."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from harness.tap import ROOT, run_tap, tap_config
from simulator import Simulator, SimulatorServer
from tap_cronofy.statecodec import FORMAT, FORMAT_KEY

FIXTURES = sorted((ROOT / "tests" / "fixtures" / "state").glob("*.json"))
STREAMS = ["free_busy", "calendars"]
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def shifted(value: object, seconds: float, days: int) -> object:
    """The fixture as if written ``seconds`` later: every time and date moved on."""
    if isinstance(value, dict):
        return {k: shifted(v, seconds, days) for k, v in value.items()}
    if isinstance(value, list):
        return [shifted(v, seconds, days) for v in value]
    if isinstance(value, str) and TIME.match(value):
        moment = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ") + dt.timedelta(seconds=seconds)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, str) and DATE.match(value):
        return (dt.date.fromisoformat(value) + dt.timedelta(days=days)).isoformat()
    return value


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_a_state_of_an_earlier_release_is_read_incrementally(path):
    fixture = json.loads(path.read_text())
    sim = Simulator(seed=41, accounts=4, events_per_account=10, page_size=50)
    server = SimulatorServer(sim).start()
    try:
        written = dt.datetime.strptime(fixture["written_at"], "%Y-%m-%dT%H:%M:%SZ")
        now = sim.now_dt().replace(tzinfo=None)
        state = shifted(
            fixture["state"],
            (now - written).total_seconds() - 600,
            (now.date() - written.date()).days,
        )
        run = run_tap(tap_config(sim, server.url), state, streams=STREAMS)
        assert run.returncode == 0, run.stderr[-2000:]
        lines = [line for line in run.stderr.splitlines() if "| Account acc_" in line]
        free_busy = [line for line in lines if "tap-cronofy.free_busy" in line]
        assert len(free_busy) == 4 and all(": incremental;" in line for line in free_busy), lines
        assert not [line for line in lines if "first read" in line or "full" in line], lines
        assert "scope changed" not in run.stderr
        assert run.state[FORMAT_KEY] == FORMAT, "this release says which format it wrote"
    finally:
        server.stop()


def test_a_state_of_a_newer_format_is_refused_in_one_line_before_any_request(sim):
    state = {FORMAT_KEY: FORMAT + 1, "bookmarks": {}}
    run = run_tap(tap_config(sim, sim.url), state, streams=STREAMS)
    assert run.returncode != 0 and sim.requests == []
    assert (
        f"The state was written by a newer tap-cronofy (state format {FORMAT + 1}; this "
        f"release reads up to {FORMAT}): upgrade tap-cronofy" in run.stderr
    )
