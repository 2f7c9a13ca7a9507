"""Running the real tap against the simulator, and what to expect from the simulator's data."""

from __future__ import annotations

import collections
import copy
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from simulator.core import DAYS_AHEAD, DAYS_BACK, Simulator
from tap_cronofy.statecodec import expand

ROOT = Path(__file__).resolve().parent.parent

# Small waits so that retry tests stay fast.
FAST_RETRIES = {"backoff_factor_seconds": 0.01, "max_retry_wait_seconds": 0.3, "max_retries": 4}


@dataclass
class TapRun:
    """A finished tap process. Its output is read only once the run is known to have
    finished well: a test that reads records, state or keys of a run that exited non-zero
    without having read ``returncode`` fails, so "nothing more was emitted" can never pass
    because the run crashed."""

    exit_code: int
    stdout: str
    stderr: str
    messages: list[dict] = field(default_factory=list)
    exit_code_read: bool = field(default=False, repr=False)

    @property
    def returncode(self) -> int:
        self.exit_code_read = True
        return self.exit_code

    def _output(self) -> list[dict]:
        if self.exit_code != 0 and not self.exit_code_read:
            raise AssertionError(
                f"the tap exited {self.exit_code}, and the test read its output without "
                f"checking that:\n{self.stderr[-3000:]}"
            )
        return self.messages

    def records(self, stream: str | None = None) -> list[dict]:
        return [
            m["record"]
            for m in self._output()
            if m["type"] == "RECORD" and (stream is None or m["stream"] == stream)
        ]

    @property
    def states(self) -> list[dict]:
        return [m["value"] for m in self._output() if m["type"] == "STATE"]

    @property
    def state(self) -> dict | None:
        return self.states[-1] if self.states else None

    def record_keys(self, stream: str = "free_busy") -> list[tuple]:
        if stream == "free_busy":
            return [
                (r["account_id"], r["calendar_id"], r["event_uid"]) for r in self.records(stream)
            ]
        return [r["scheduling_request_id"] for r in self.records(stream)]

    def live_keys(self) -> list[tuple]:
        """free_busy keys emitted live: neither deleted by Cronofy nor out of the window."""
        return [
            (r["account_id"], r["calendar_id"], r["event_uid"])
            for r in self.records("free_busy")
            if r["_sdc_deleted_at"] is None
        ]


def request_owner(sim: Simulator, request: dict) -> str | None:
    """The account a logged simulator request is for: its bearer token's, or, for a token
    request (no bearer), the account whose refresh token its body carries."""
    if request["account_id"] or request["path"] != "/oauth/token":
        return request["account_id"]
    return next(
        (a.account_id for a in sim.accounts.values() if a.refresh_token in request["body"]), None
    )


def costs(sim: Simulator) -> dict[str | None, collections.Counter]:
    """Requests of the last run by account (in the order of their first request) and path,
    every page of a query counted as one more request of its endpoint; then forget them."""
    counted: dict[str | None, collections.Counter] = collections.defaultdict(collections.Counter)
    for request in sim.requests:
        path = request["path"]
        path = "/v1/free_busy" if path.startswith("/v1/free_busy") else path
        counted[request_owner(sim, request)][path] += 1
    sim.requests.clear()
    return counted


def account_states(state: dict | None) -> dict[str, dict]:
    """free_busy's state per account id, as a STATE message carries it (values most
    accounts share written once: spelled out here)."""
    full = expand(copy.deepcopy(state or {}))
    return (full.get("bookmarks", {}).get("free_busy", {})).get("accounts", {})


def run_tap(
    config: dict,
    state: dict | None = None,
    *,
    streams: list[str] | None = None,
    extra_args: list[str] | None = None,
    env: dict | None = None,
    timeout: float = 120,
) -> TapRun:
    """Run ``tap-cronofy`` as a process, as Meltano would, and parse its output."""
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp, "config.json")
        config_path.write_text(json.dumps(config))
        args = [sys.executable, "-m", "tap_cronofy", "--config", str(config_path)]
        if state is not None:
            Path(tmp, "state.json").write_text(json.dumps(state))
            args += ["--state", str(Path(tmp, "state.json"))]
        if streams is not None:
            catalog = select_streams(streams)
            Path(tmp, "catalog.json").write_text(json.dumps(catalog))
            args += ["--catalog", str(Path(tmp, "catalog.json"))]
        args += extra_args or []
        process = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            check=False,
        )
    messages = [json.loads(line) for line in process.stdout.splitlines() if line.startswith("{")]
    return TapRun(process.returncode, process.stdout, process.stderr, messages)


_CATALOG: dict | None = None


def discovered_catalog() -> dict:
    global _CATALOG
    if _CATALOG is None:
        _CATALOG = json.loads((ROOT / "catalog.json").read_text())
    return _CATALOG


def select_streams(streams: list[str]) -> dict:
    catalog = json.loads(json.dumps(discovered_catalog()))
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


def tap_config(sim: Simulator, url: str, **overrides: object) -> dict:
    """The simulator's accounts (no scheduling request ids), fast retries, then overrides."""
    config = sim.tap_config(url)
    del config["scheduling_request_ids"]
    return {**config, **FAST_RETRIES, **overrides}


def expected_first_sync(
    sim: Simulator,
    tzid: str = "Etc/UTC",
    *,
    include_managed: bool = True,
    calendar_ids: set[str] | None = None,
    window: tuple[dt.date, dt.date] | None = None,
) -> set[tuple]:
    """Keys a full first sync must emit live, computed from the simulator's stored events
    and the tap's promise (not from the simulator's or the tap's code): periods overlapping
    [first, last), by default Cronofy's own window, 42 days back to 201 ahead, and then
    (with include_managed) managed events wherever they lie, as Cronofy returns them."""
    zone = ZoneInfo(tzid)
    today = sim.now_dt().astimezone(zone).date()
    first, last = window or (
        today - dt.timedelta(days=DAYS_BACK),
        today + dt.timedelta(days=DAYS_AHEAD),
    )
    lower = dt.datetime.combine(first, dt.time(), zone)
    upper = dt.datetime.combine(last, dt.time(), zone)
    far = dt.timedelta(days=5000)
    keys = set()
    for account in sim.accounts.values():
        for event in sim.periods_of(account, lower - far, upper + far):
            if event.deleted or (event.managed and not include_managed):
                continue
            if calendar_ids and event.calendar_id not in calendar_ids:
                continue
            start, end = event.bounds(zone)
            anywhere = event.managed and window is None
            if anywhere or (start < upper and end > lower):
                keys.add((account.account_id, event.calendar_id, event.event_uid))
    return keys


def first_sync_rows(sim: Simulator, tzid: str = "Etc/UTC") -> set[tuple]:
    """Keys of every row a first sync (default settings) loads, live or not: all Cronofy
    returns to a query of its own window with deletions (periods ending on or after its
    first day, starting before its last; managed events anywhere), by the documents."""
    zone = ZoneInfo(tzid)
    today = sim.now_dt().astimezone(zone).date()
    lower = dt.datetime.combine(today - dt.timedelta(days=DAYS_BACK), dt.time(), zone)
    upper = dt.datetime.combine(today + dt.timedelta(days=DAYS_AHEAD), dt.time(), zone)
    far = dt.timedelta(days=5000)
    keys = set()
    for account in sim.accounts.values():
        for event in sim.periods_of(account, lower - far, upper + far):
            start, end = event.bounds(zone)
            if event.managed or (start < upper and end >= lower):
                keys.add((account.account_id, event.calendar_id, event.event_uid))
    return keys


def deleted_keys(sim: Simulator) -> set[tuple]:
    """Keys of the simulator's deleted events."""
    return {
        (a.account_id, e.calendar_id, e.event_uid)
        for a in sim.accounts.values()
        for e in a.events.values()
        if e.deleted
    }


def selected_events(sim: Simulator) -> dict[tuple, object]:
    return {
        (a.account_id, e.calendar_id, e.event_uid): e
        for a in sim.accounts.values()
        for e in a.events.values()
    }


def own_meltano_dir(tmp: Path) -> dict[str, str]:
    """Meltano environment for a test's own ``.meltano`` directory: the plugins installed in
    the project's (symlinked), but its own run/ and logs/, where Meltano writes each run's
    catalog and config. Tests that run Meltano side by side then never share those files."""
    own = tmp / ".meltano"
    own.mkdir(exist_ok=True)
    for entry in (ROOT / ".meltano").iterdir():
        if entry.is_dir() and entry.name not in ("run", "logs"):
            (own / entry.name).symlink_to(entry)
    return {"MELTANO_SYS_DIR_ROOT": str(own)}


def start_receiver(
    secret: str, log_path: Path, *args: str, cwd: Path = ROOT
) -> tuple[subprocess.Popen, str, int]:
    """`tap-cronofy-push receive` configured as the manual allows (only the client secret
    and the change log, from the environment), on a free port: the process, once it says
    where it listens, and that host and port (its further stderr is left to the caller)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_CRONOFY_")}
    env.update(TAP_CRONOFY_CLIENT_SECRET=secret, TAP_CRONOFY_CHANGE_LOG=str(log_path))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tap_cronofy.push",
            "receive",
            "--port",
            "0",
            "--config",
            "ENV",
            *args,
        ],
        cwd=cwd,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = ""
    while "Receiving" not in line:
        line = process.stderr.readline()  # type: ignore[union-attr]
        assert line, "the receiver exited"
    where = re.search(r"http://(\S+):(\d+)", line)
    assert where is not None, line
    return process, where[1], int(where[2])


def change_notification(n: int) -> bytes:
    """The body of Cronofy's n-th change notification on channel chn_1 (n seconds past
    10:00 on 2026-12-01: each one distinct, so none is taken for a replay)."""
    return json.dumps(
        {
            "notification": {"type": "change", "changes_since": f"2026-12-01T10:00:{n:02d}Z"},
            "channel": {"channel_id": "chn_1"},
        }
    ).encode()
