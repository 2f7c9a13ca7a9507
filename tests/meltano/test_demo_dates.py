"""`make demo`'s job on fixed dates spread over a week, every clock moved (the simulator's,
the tap's, Meltano's, dbt's and DuckDB's: libfaketime under the whole process tree), so that
a demo that passes today also passes on a Sunday night in Tokyo or a DST change."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time

import pytest

from harness.tap import ROOT

# A Sunday 23:55 in Tokyo (its week turns), Europe's spring DST change on a Sunday night,
# a Wednesday in January, the night the US leaves DST.
DATES = ["2026-12-06 14:55:00", "2027-03-28 23:30:00", "2027-01-06 12:00:00", "2026-11-01 05:30:00"]


def test_the_demo_passes_on_fixed_dates_with_every_clock_moved():
    faketime = shutil.which("faketime")
    if faketime is None:
        if os.environ.get("CI"):
            pytest.fail("faketime is not installed: .ci/run should have installed it")
        pytest.skip("faketime (Debian's package) is not installed on this machine")
    for date in DATES:  # one at a time: the demo owns output/ and the project's state
        # an offset, not a start time: every process of the tree then shares one clock
        target = dt.datetime.fromisoformat(date).replace(tzinfo=dt.timezone.utc)
        offset = int(target.timestamp() - time.time())
        result = subprocess.run(
            [faketime, "-f", f"{offset:+d}s", sys.executable, "demo/run_demo.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, (
            f"demo on {date}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
        assert "after run 2:" in result.stdout and date[:10] in result.stdout, date
        loaded = result.stdout.split("records this run loaded", 1)[1]
        for stream in ("free_busy", "calendars", "accounts", "scheduling_requests"):
            assert stream in loaded.split("==", 1)[0], (date, stream)
