"""`make demo`: simulator -> tap-cronofy -> Meltano -> DuckDB, twice, with changes between;
then change-driven: the receiver, one channel per account, and a change that arrives by
push notification and is the only thing the next run reads."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb

from demo import chart
from harness.project import (
    ROOT,
    SimulatorProcess,
    free_port,
    meltano,
    meltano_env,
    meltano_receiver,
    meltano_state,
    stop_receiver,
)
from tap_cronofy.statecodec import expand

WAREHOUSE = ROOT / "output" / "warehouse.duckdb"
CHANGE_LOG = ROOT / "output" / "changes.db"
STATE_ID = "dev:tap-cronofy-to-target-duckdb"


BOLD, PLAIN = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")


def heading(text: str) -> None:
    print(f"\n{BOLD}== {text}{PLAIN}", flush=True)


def show(sql: str, title: str) -> None:
    with duckdb.connect(str(WAREHOUSE), read_only=True) as con:
        print(f"-- {title}")
        con.sql(sql).show(max_width=140)


def summary() -> None:
    show(
        """
        select account_id, calendar_id,
               round(sum(epoch(end_time::timestamp - start_time::timestamp) / 3600)
                     filter (where not all_day), 1) as busy_hours,
               count(*) filter (where not all_day) as timed_periods,
               count(*) filter (where all_day) as all_day_periods
        from warehouse.cronofy.free_busy
        where free_busy_status in ('busy', 'tentative') and not deleted
          and start_time::timestamp >= current_date
          and start_time::timestamp < current_date + interval 14 day
        group by all order by account_id, calendar_id
    """,
        "busy and tentative time in the next two weeks, per account and calendar",
    )
    show(
        """
        select slot_selection, count(*) as requests
        from warehouse.cronofy.scheduling_requests group by all order by requests desc
    """,
        "scheduling requests by slot_selection",
    )
    show(
        """
        select (select count(*) from warehouse.cronofy.free_busy) as free_busy_rows,
               (select count(*) from warehouse.cronofy.free_busy where deleted) as marked_deleted,
               (select count(*) from warehouse.cronofy.scheduling_requests) as scheduling_rows
    """,
        "row counts",
    )


def book_overlapping_meetings(sim: SimulatorProcess, accounts: list[str]) -> None:
    """Back-to-back and overlapping meetings this week, as real calendars have them."""
    start = dt.datetime.now(dt.timezone.utc).replace(hour=9, minute=0, second=0, microsecond=0)
    for day in range(1, 4):
        for account in accounts:
            for begin, minutes in ((0, 60), (30, 60), (120, 45)):
                at = start + dt.timedelta(days=day, minutes=begin)
                sim.control(
                    "POST",
                    "events",
                    {
                        "account_id": account,
                        "start": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "end": (at + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    },
                )


def run(env: dict, label: str) -> None:
    heading(f"{label}: meltano run tap-cronofy target-duckdb")
    result = meltano("run", "tap-cronofy", "target-duckdb", env=env)
    print("-- records this run loaded, per stream (the tap's own summary of the run)")
    for stream, count in loaded_per_stream(result.stderr):
        print(f"  {stream:<22}{count:>8}")


STREAMS = ("free_busy", "calendars", "accounts", "scheduling_requests")


def loaded_per_stream(log: str) -> list[tuple[str, int]]:
    """Each stream's record count from the tap's summary lines, every stream listed (0 for
    one the run emitted nothing of)."""
    counts = {s: int(n) for s, n in re.findall(r"Summary (\w+): (\d+) records?\b", log)}
    return [(stream, counts.get(stream, 0)) for stream in STREAMS]


def change_driven(sim: SimulatorProcess, env: dict, accounts: list[str]) -> None:
    """The receiver as Meltano runs it, channels, then a change that arrives by push."""
    heading("Change-driven: Cronofy's push notifications decide what a run reads")
    for path in CHANGE_LOG.parent.glob(CHANGE_LOG.name + "*"):
        path.unlink()
    port = free_port()
    env = {
        **env,
        "TAP_CRONOFY_CHANGE_LOG": str(CHANGE_LOG),
        "TAP_CRONOFY_NOTIFICATION_URL": f"http://127.0.0.1:{port}/cronofy/notifications",
    }
    print(f"  meltano invoke tap-cronofy:receive   (listening on 127.0.0.1:{port})")
    receiver = meltano_receiver(env, port)
    try:
        result = meltano("invoke", "tap-cronofy:channels", env=env)
        print("  meltano invoke tap-cronofy:channels:", last_line(result.stderr, "Channels:"))
        sim.control("POST", "push/flush", {})
        result = meltano("run", "tap-cronofy", "target-duckdb", env=env)
        print("  Run 3 (each account once, to start from the change log):")
        print("   ", last_line(result.stderr, "Change-driven:"))
        changed = next(
            e
            for e in sim.control("GET", f"events/{accounts[1]}")
            if not e["deleted"] and not e["managed"] and len(e["start"]) > 10
        )
        sim.control("POST", "advance", {"seconds": 60})
        sim.control("PATCH", f"events/{accounts[1]}/{changed['event_uid']}", {"status": "free"})
        sim.control("POST", "push/flush", {})
        print(f"\n  An event of {accounts[1]} is edited; Cronofy posts a signed notification.")
        result = meltano("run", "tap-cronofy", "target-duckdb", env=env)
        print("  Run 4:")
        print("   ", last_line(result.stderr, "Change-driven:"))
        print("   ", last_line(result.stderr, f"Account {accounts[1]} ("))
        show(
            f"""
            select account_id, event_uid, free_busy_status from warehouse.cronofy.free_busy
            where event_uid = '{changed["event_uid"]}'
        """,
            "the row the notification brought in (the other accounts cost no request)",
        )
    finally:
        stop_receiver(receiver)


def last_line(text: str, marker: str) -> str:
    """The last log line holding ``marker``, from the message on."""
    line = next((x for x in reversed(text.splitlines()) if marker in x), "")
    return line[line.index(marker) :] if marker in line else "(not found)"


def main() -> None:
    WAREHOUSE.parent.mkdir(exist_ok=True)
    WAREHOUSE.unlink(missing_ok=True)
    heading("Starting the Cronofy simulator (no Cronofy account needed)")
    sim = SimulatorProcess("--accounts", "3", "--events-per-account", "400", "--page-size", "25")
    try:
        settings = sim.tap_settings()
        print(
            f"  {sim.url}: {len(settings['accounts'])} accounts, "
            f"{len(settings['scheduling_request_ids'])} scheduling requests"
        )
        env = meltano_env(settings, DBT_DUCKDB_PATH=str(WAREHOUSE))
        meltano("state", "clear", "--force", STATE_ID, env=env, check=False)
        book_overlapping_meetings(sim, [a["account_id"] for a in settings["accounts"]])

        run(env, "Run 1 (full load)")
        summary()
        before = meltano_state(STATE_ID, env)

        heading(
            "Changing data in Cronofy: 3 events edited, 2 deleted, 2 created, 2 requests moved on"
        )
        sim.control("POST", "advance", {"seconds": 60})
        accounts = [a["account_id"] for a in settings["accounts"]]
        events = [
            e
            for e in sim.control("GET", f"events/{accounts[0]}")
            if not e["deleted"] and not e["managed"] and len(e["start"]) > 10
        ]
        for event in events[:3]:
            sim.control(
                "PATCH", f"events/{accounts[0]}/{event['event_uid']}", {"status": "tentative"}
            )
        for event in events[3:5]:
            sim.control("DELETE", f"events/{accounts[0]}/{event['event_uid']}")
        for account in accounts[1:]:
            sim.control("POST", "events", {"account_id": account, "status": "busy"})
        requests = settings["scheduling_request_ids"]
        sim.control("POST", f"scheduling_requests/{requests[0]}", {"slot_selection": "cancelled"})
        sim.control("POST", f"scheduling_requests/{requests[1]}", {"slot_selection": "complete"})
        sim.control("POST", "advance", {"seconds": 60})

        run(env, "Run 2 (incremental: only the changes)")
        after = meltano_state(STATE_ID, env)
        summary()
        show(
            """
            select account_id, event_uid, free_busy_status, deleted, _sdc_deleted_at
            from warehouse.cronofy.free_busy
            where last_modified = (select max(last_modified) from warehouse.cronofy.free_busy)
            order by deleted, account_id
        """,
            "rows loaded by run 2 (deleted events are kept, marked deleted)",
        )
        print(
            "  Run 2 loads more rows than the 7 changes: the meetings booked just before run 1\n"
            "  changed within lookback_seconds (600 s) of its watermark, so they are read\n"
            "  again. That re-read is what catches changes that reach Cronofy late (calendar\n"
            "  providers sync into it asynchronously); a merging target keeps one row each."
        )
        change_driven(sim, env, accounts)
        heading("dbt: busy hours per person per ISO week (analytics/, overlaps counted once)")
        meltano("invoke", "dbt-duckdb:build", env=env)
        show(
            """
            select account_name, round(sum(busy_hours), 1) as busy_hours_union,
                   round(sum(booked_hours), 1) as booked_hours_summed,
                   round(sum(overlap_hours), 1) as double_counted, sum(all_day_days) as all_day
            from warehouse.analytics.busy_hours_weekly group by all order by account_name
        """,
            "every week loaded (Cronofy's window: 6 weeks back to 29 ahead); summing durations "
            "double-counts overlapping meetings, the union does not",
        )
        days, series = chart.weekly(WAREHOUSE)
        print(chart.terminal(days, series))
        picture = chart.png(days, series, ROOT / "output" / "busy_hours_weekly.png")
        print(f"\n  chart written to {picture.relative_to(ROOT)}")
        heading("State in Meltano's system database")
        for label, state in (("after run 1", before), ("after run 2", after)):
            accounts = expand(state["singer_state"])["bookmarks"]["free_busy"]["accounts"]
            print(
                f"  {label}: "
                + ", ".join(f"{a}={s['replication_key_value']}" for a, s in accounts.items())
            )
    finally:
        sim.stop()
        print("\nSimulator stopped.")

    heading("Point the same project at your real Cronofy account")
    print("""  meltano config set tap-cronofy data_center us          # or uk, de, au, ca, sg
  meltano config set tap-cronofy access_token  <ACCESS_TOKEN>
  meltano config set tap-cronofy refresh_token <REFRESH_TOKEN>
  meltano config set tap-cronofy client_id     <CLIENT_ID>
  meltano config set tap-cronofy client_secret <CLIENT_SECRET>
  meltano run tap-cronofy target-duckdb
(the demo passed its simulator settings as TAP_CRONOFY_* variables, so nothing is left to
unset). Getting tokens: docs/getting-started.md, "Your first real account, end to end".""")


if __name__ == "__main__":
    main()
