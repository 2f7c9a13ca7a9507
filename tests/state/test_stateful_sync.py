"""Random edits and runs, the warehouse checked against Cronofy's truth after every run.

A Hypothesis state machine drives the real tap (a process, as Meltano runs it) against the
simulator over HTTP: it starts on a random day, in a random zone, and interleaves runs with
edits (create, move in and out of the window, delete, managed or not, all-day or timed,
recurring series rescheduled), accounts removed and added again, and the clock moved by
hours or days. After each run, the warehouse (every record merged by key, rows marked
deleted dropped) must equal what Cronofy would return to a fresh query by its own rules,
except for the cases the README names ("What the warehouse holds"), each checked here by
its own rule:

- history: a row whose period ended before the window's start keeps its last value;
- beyond Cronofy's reach: an event that now lies wholly outside Cronofy's own window (and is
  not a managed one Cronofy returns anywhere) is returned by no query, so its row keeps
  its last value from inside the window;
- a rescheduled series: occurrences that no longer exist come with no deletion marker;
- an account removed from the configuration keeps its rows as they were.

HYPOTHESIS_PROFILE=deep runs many more and longer sequences; a failure prints the steps
and a reproduce blob (CONTRIBUTING.md, "Property-based and stateful tests").
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from harness.tap import run_tap, tap_config
from simulator import Simulator, SimulatorServer
from simulator.core import DAYS_AHEAD, DAYS_BACK, fmt_time

ZONES = ["Etc/UTC", "Asia/Tokyo", "Pacific/Kiritimati", "America/St_Johns", "Europe/London"]
START = dt.datetime(2026, 12, 3, 12, tzinfo=dt.timezone.utc)  # moved by a random number of days
FB = ["free_busy"]


def key_of(record: dict) -> tuple[str, str, str]:
    return record["account_id"], record["calendar_id"], record["event_uid"]


class WarehouseEqualsCronofy(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sim: Simulator | None = None
        self.server: SimulatorServer | None = None
        self.rows: dict[tuple, dict] = {}
        self.state: dict | None = None
        self.removed: set[str] = set()
        self.series_uids: set[str] = set()
        self.rescheduled: set[str] = set()  # series whose old occurrences may linger
        self.made = 0
        self.runs = 0

    # Setup

    @initialize(
        days=st.integers(-800, 800),
        hour=st.integers(0, 23),
        tzid=st.sampled_from(ZONES),
        dates=st.one_of(
            st.none(),
            # start_date before end_date (the tap refuses the config otherwise)
            st.tuples(st.integers(-45, 30), st.integers(1, 200)).map(lambda d: (d[0], d[0] + d[1])),
            st.just((-5, 20)),
        ),
    )
    def start(self, days: int, hour: int, tzid: str, dates: tuple[int, int] | None) -> None:
        sim = Simulator(seed=5, accounts=2, events_per_account=0, page_size=7)
        moment = START.replace(hour=hour) + dt.timedelta(days=days)
        sim.clock_offset = moment.timestamp() - sim.now() + sim.clock_offset
        for account_id in sorted(sim.accounts):  # seeded relative to the moved clock
            sim.add_events(account_id, 25, days=(-70, 240))
        self.sim, self.tzid = sim, tzid
        self.server = SimulatorServer(sim).start()
        self.config = tap_config(sim, self.server.url, tzid=tzid, max_parallel_accounts=2)
        self.dates: tuple[dt.date, dt.date] | None = None
        if dates is not None:  # start_date/end_date, fixed dates the window moves past
            today = self.today()
            self.dates = (today + dt.timedelta(days=dates[0]), today + dt.timedelta(days=dates[1]))
            self.config |= {
                "start_date": self.dates[0].isoformat(),
                "end_date": self.dates[1].isoformat(),
            }

    def teardown(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def accounts(self) -> list[str]:
        assert self.sim is not None
        return sorted(self.sim.accounts)

    def today(self) -> dt.date:
        assert self.sim is not None
        return self.sim.now_dt().astimezone(ZoneInfo(self.tzid)).date()

    def at(self, days: int, minutes: int) -> dt.datetime:
        midnight = dt.datetime.combine(
            self.today() + dt.timedelta(days=days), dt.time(), ZoneInfo(self.tzid)
        )
        return (midnight + dt.timedelta(minutes=minutes)).astimezone(dt.timezone.utc)

    # Edits

    @rule(
        account=st.integers(0, 1),
        days=st.one_of(st.integers(-50, 210), st.sampled_from([-43, -42, -41, 200, 201, 202])),
        minutes=st.integers(-60, 24 * 60),
        length=st.sampled_from([0, 15, 60, 24 * 60, 3 * 24 * 60]),
        all_day=st.booleans(),
        managed=st.booleans(),
    )
    def create(self, account, days, minutes, length, all_day, managed) -> None:
        assert self.sim is not None
        self.made += 1
        account_id = self.accounts[account]
        if all_day:
            first = self.today() + dt.timedelta(days=days)
            times = {
                "start": first.isoformat(),
                "end": (first + dt.timedelta(days=max(1, length // (24 * 60)))).isoformat(),
            }
        else:
            begin = self.at(days, minutes)
            times = {
                "start": fmt_time(begin),
                "end": fmt_time(begin + dt.timedelta(minutes=length)),
            }
        self.sim.create_event(
            account_id,
            event_uid=f"evt_made_{self.made:05d}",
            managed=managed,
            event_id=f"app-{self.made}" if managed else None,
            **times,
        )

    def events(self, account: int) -> list:
        assert self.sim is not None
        account_id = self.accounts[account]
        return sorted(
            (e for e in self.sim.accounts[account_id].events.values() if not e.deleted),
            key=lambda e: e.event_uid,
        )

    @rule(
        account=st.integers(0, 1),
        pick=st.integers(0, 10**6),
        days=st.one_of(
            st.integers(-45, 205), st.sampled_from([-300, -90, -43, 201, 202, 300, 400])
        ),
        minutes=st.integers(0, 24 * 60 - 1),
    )
    def move(self, account, pick, days, minutes) -> None:
        """Move an event (in the window, out of it, beyond Cronofy's reach, back)."""
        assert self.sim is not None
        if not (events := self.events(account)):
            return
        event = events[pick % len(events)]
        begin = self.at(days, minutes)
        if event.all_day:
            first = begin.astimezone(ZoneInfo(self.tzid)).date()
            times = {"start": first.isoformat(), "end": (first + dt.timedelta(days=1)).isoformat()}
        else:
            times = {"start": fmt_time(begin), "end": fmt_time(begin + dt.timedelta(minutes=45))}
        self.sim.modify_event(self.accounts[account], event.event_uid, **times)

    @rule(account=st.integers(0, 1), pick=st.integers(0, 10**6))
    def delete(self, account, pick) -> None:
        assert self.sim is not None
        if events := self.events(account):
            self.sim.delete_event(self.accounts[account], events[pick % len(events)].event_uid)

    @rule(
        account=st.integers(0, 1),
        pick=st.integers(0, 10**6),
        status=st.sampled_from(["busy", "free", "tentative"]),
    )
    def restatus(self, account, pick, status) -> None:
        assert self.sim is not None
        if events := self.events(account):
            event = events[pick % len(events)]
            self.sim.modify_event(self.accounts[account], event.event_uid, status=status)

    @rule(account=st.integers(0, 1), days=st.integers(-10, 30), every=st.integers(2, 9))
    def add_series(self, account, days, every) -> None:
        assert self.sim is not None
        self.made += 1
        uid = f"evt_series_{self.made:05d}"
        self.sim.create_series(
            self.accounts[account], uid=uid, first=fmt_time(self.at(days, 9 * 60)), every_days=every
        )
        self.series_uids.add(uid)

    @precondition(lambda self: self.series_uids)
    @rule(pick=st.integers(0, 10**6), shift=st.integers(1, 3))
    def reschedule_series(self, pick, shift) -> None:
        assert self.sim is not None
        uid = sorted(self.series_uids)[pick % len(self.series_uids)]
        account_id = next(a for a in self.accounts if uid in self.sim.accounts[a].series)
        series = self.sim.accounts[account_id].series[uid]
        moved = dt.datetime.fromisoformat(series.first.replace("Z", "+00:00"))
        self.sim.modify_series(
            account_id, uid, first=fmt_time(moved + dt.timedelta(days=shift, hours=shift))
        )
        self.rescheduled.add(uid)

    @rule(hours=st.one_of(st.integers(1, 30), st.integers(1, 12).map(lambda d: 24 * d)))
    def advance(self, hours) -> None:
        assert self.sim is not None
        self.sim.advance(hours * 3600)

    @rule()
    def clear_state(self) -> None:
        """`meltano state clear`, or --full-refresh: the next run reads every window whole."""
        self.state = None

    @precondition(lambda self: not self.removed)
    @rule(account=st.integers(0, 1))
    def remove_account(self, account) -> None:
        self.removed.add(self.accounts[account])

    @precondition(lambda self: self.removed)
    @rule()
    def add_account_again(self) -> None:
        self.removed.clear()

    # Runs

    @rule()
    def run_the_next_day(self) -> None:
        """Runs a day apart: the window moves on, the far edge brings periods in."""
        assert self.sim is not None
        self.sim.advance(24 * 3600)
        self.run()

    @rule()
    def run(self) -> None:
        assert self.sim is not None
        config = dict(self.config)
        config["accounts"] = [a for a in config["accounts"] if a["account_id"] not in self.removed]
        result = run_tap(config, self.state, streams=FB)
        assert result.returncode == 0, result.stderr[-3000:]
        self.state = result.state
        for record in result.records("free_busy"):
            self.rows[key_of(record)] = record
        self.runs += 1
        self.check()

    def truth(self, account_id: str) -> dict[tuple, tuple]:
        """What a fresh query returns live, by the documents: periods overlapping Cronofy's
        window (42 days back, 201 ahead, in tzid) cut to start_date/end_date, and without
        those dates, managed events anywhere."""
        assert self.sim is not None
        zone = ZoneInfo(self.tzid)
        lower, upper = self.kept()
        far = dt.timedelta(days=3000)
        found = {}
        for event in self.sim.periods_of(self.sim.accounts[account_id], lower - far, upper + far):
            start, end = event.bounds(zone)
            anywhere = event.managed and self.dates is None
            inside = lower < upper and start < upper and end > lower
            if event.deleted or not (anywhere or inside):
                continue
            found[(account_id, event.calendar_id, event.event_uid)] = (
                event.start,
                event.end,
                event.status,
            )
        return found

    def window(self) -> tuple[dt.datetime, dt.datetime]:
        zone = ZoneInfo(self.tzid)
        today = self.today()
        return (
            dt.datetime.combine(today - dt.timedelta(days=DAYS_BACK), dt.time(), zone),
            dt.datetime.combine(today + dt.timedelta(days=DAYS_AHEAD), dt.time(), zone),
        )

    def kept(self) -> tuple[dt.datetime, dt.datetime]:
        """The window the tap keeps: Cronofy's, cut to start_date/end_date."""
        lower, upper = self.window()
        if self.dates is not None:
            zone = ZoneInfo(self.tzid)
            lower = max(lower, dt.datetime.combine(self.dates[0], dt.time(), zone))
            upper = min(upper, dt.datetime.combine(self.dates[1], dt.time(), zone))
        return lower, upper

    def beyond_reach(self, key: tuple) -> bool:
        """The README's cases: history, an event Cronofy returns to no query, an occurrence
        of a rescheduled series."""
        assert self.sim is not None
        lower, upper = self.window()
        row = self.rows[key]
        kept_lower = self.kept()[0].astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if row["end_time"] <= kept_lower:
            return True  # history: it ended before the window's start
        account = self.sim.accounts[key[0]]
        event = account.events.get((key[1], key[2]))
        if event is not None:
            start, end = event.bounds(ZoneInfo(self.tzid))
            return not event.managed and (end < lower or start >= upper)
        return any(key[2].startswith(uid + "_") for uid in self.rescheduled)

    def check(self) -> None:
        states = (self.state or {}).get("bookmarks", {}).get("free_busy", {}).get("accounts", {})
        configured = set(self.accounts) - self.removed
        assert configured <= set(states), "a configured account's state was dropped"
        live = {k: r for k, r in self.rows.items() if r["_sdc_deleted_at"] is None}
        for account_id in self.accounts:
            if account_id in self.removed:
                continue
            truth = self.truth(account_id)
            mine = {k: r for k, r in live.items() if k[0] == account_id}
            missing = sorted(set(truth) - set(mine))
            assert not missing, f"run {self.runs}: live in Cronofy, not in the warehouse: {missing}"
            wrong = {
                k: ((r["start"], r["end"], r["free_busy_status"]), truth[k])
                for k, r in mine.items()
                if k in truth and (r["start"], r["end"], r["free_busy_status"]) != truth[k]
            }
            assert not wrong, f"run {self.runs}: stale rows (warehouse, Cronofy): {wrong}"
            extra = sorted(k for k in set(mine) - set(truth) if not self.beyond_reach(k))
            assert not extra, f"run {self.runs}: live in the warehouse, not in Cronofy: {extra}"


WarehouseEqualsCronofy.TestCase.settings = settings(
    settings.default,
    max_examples=max(8, settings.default.max_examples // 20),
    stateful_step_count=16,
)
test_warehouse_equals_cronofy = WarehouseEqualsCronofy.TestCase


def replay(steps) -> None:
    """Run a sequence of the machine's steps, as Hypothesis prints a falsifying one."""
    machine = WarehouseEqualsCronofy()
    try:
        for step in steps:
            step(machine)
    finally:
        machine.teardown()


def test_known_sequences():
    """Sequences that fail on broken code, replayed on every run (the seeded CI search does
    not reach them all): the first was found by the deep profile on a tap that skipped
    out-of-window periods, the other two fail on a first sync without deletions and on a
    run without the horizon slice (each checked on its mutant)."""
    # a period moved past end_date is emitted marked deleted, not left live
    replay(
        [
            lambda m: m.start(days=0, hour=0, tzid="Etc/UTC", dates=(0, 31)),
            lambda m: m.run(),
            lambda m: m.move(account=0, days=31, minutes=0, pick=1567),
            lambda m: m.run(),
        ]
    )
    # after a cleared state, the full read learns of deletions made since the last run
    replay(
        [
            lambda m: m.start(days=-300, hour=5, tzid="Asia/Tokyo", dates=None),
            lambda m: m.run(),
            lambda m: m.delete(account=1, pick=3),
            lambda m: m.delete(account=0, pick=8),
            lambda m: m.clear_state(),
            lambda m: m.run(),
        ]
    )
    # the far edge: periods time brings into the window arrive the next day
    replay(
        [
            lambda m: m.start(days=123, hour=23, tzid="Pacific/Kiritimati", dates=None),
            lambda m: m.create(
                account=0, days=202, minutes=30, length=60, all_day=False, managed=False
            ),
            lambda m: m.advance(hours=2),
            lambda m: m.run(),
            lambda m: m.run_the_next_day(),
            lambda m: m.run_the_next_day(),
        ]
    )
