"""busy_hours_weekly on random periods in random zones, across local week and DST
boundaries, built by the real dbt in DuckDB and checked against a brute-force reference.

Each example is a warehouse of several accounts (a random zone each, with DST or odd
offsets) whose periods start near a local Monday midnight in the weeks of 2026's DST
changes: touching, overlapping, zero-length, multi-day, all-day, free, deleted, and rows
that left the window. dbt builds the models and runs their tests (busy never exceeds
booked in any week); the table must equal the reference, hour by hour."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections import defaultdict
from zoneinfo import ZoneInfo

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.tap import ROOT
from tests.warehouses.test_analytics import BUSY, add_weeks

DBT = ROOT / ".meltano" / "utilities" / "dbt-duckdb" / "venv" / "bin" / "dbt"
DBT_POSTGRES = ROOT / ".meltano" / "utilities" / "dbt-postgres" / "venv" / "bin" / "dbt"
ZONES = [
    "Asia/Tokyo",
    "Europe/London",
    "America/New_York",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "Pacific/Kiritimati",
    "Etc/UTC",
]
# Mondays around 2026's DST changes (northern spring and autumn, Lord Howe's April/October)
MONDAYS = [
    dt.date(2026, 3, 9),
    dt.date(2026, 3, 30),
    dt.date(2026, 4, 6),
    dt.date(2026, 10, 5),
    dt.date(2026, 10, 26),
    dt.date(2026, 11, 2),
    dt.date(2026, 12, 28),
]
UTC = dt.timezone.utc


@st.composite
def accounts(draw) -> list[tuple[str, str, list[dict]]]:
    made = []
    for number in range(draw(st.integers(2, 5))):
        zone = draw(st.sampled_from(ZONES))
        monday = draw(st.sampled_from(MONDAYS))
        boundary = dt.datetime.combine(monday, dt.time(), ZoneInfo(zone)).astimezone(UTC)
        periods = []
        for index in range(draw(st.integers(1, 10))):
            start = boundary + dt.timedelta(minutes=draw(st.integers(-2000, 2000)))
            start = start.replace(second=0)
            length = draw(st.sampled_from([0, 15, 30, 60, 90, 180, 24 * 60, 9 * 24 * 60]))
            all_day = draw(st.integers(0, 9)) == 0
            periods.append(
                {
                    "uid": f"evt_{index:03d}",
                    "start": start,
                    "end": start + dt.timedelta(minutes=length),
                    "status": draw(st.sampled_from(["busy", "busy", "tentative", "free"])),
                    "all_day": all_day,
                    "deleted": draw(st.integers(0, 9)) == 0,
                    "left": draw(st.integers(0, 9)) == 0,  # _sdc_deleted_at set, deleted false
                }
            )
        made.append((f"acc_{number}", zone, periods))
    return made


def naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


TABLES = (
    "create table cronofy.free_busy (account_id varchar, calendar_id varchar, "
    'event_uid varchar, event_id varchar, "start" varchar, "end" varchar, '
    "start_tzid varchar, end_tzid varchar, start_time timestamp, end_time timestamp, "
    "all_day boolean, free_busy_status varchar, deleted boolean, "
    "last_modified timestamp, _sdc_deleted_at timestamp)",
    "create table cronofy.calendars (account_id varchar, calendar_id varchar, "
    "calendar_name varchar, last_modified timestamp, _sdc_deleted_at timestamp)",
    "create table cronofy.accounts (account_id varchar, email varchar, name varchar, "
    "zoneinfo varchar)",
    "create table cronofy.scheduling_requests (scheduling_request_id varchar, "
    "slot_selection varchar, last_modified timestamp)",
)


def rows_of(made) -> dict[str, list[list]]:
    """The rows of each table, as target-duckdb and target-postgres hold them (times as
    naive UTC timestamps)."""
    now = naive(dt.datetime.now(UTC))
    rows: dict[str, list[list]] = {"accounts": [], "calendars": [], "free_busy": []}
    for account_id, zone, periods in made:
        rows["accounts"].append([account_id, f"{account_id}@example.com", account_id, zone])
        rows["calendars"].append([account_id, f"cal_{account_id}", "Work", now, None])
        for p in periods:
            gone = now if (p["deleted"] or p["left"]) else None
            if p["all_day"]:
                first = p["start"].astimezone(ZoneInfo(zone)).date()
                start_text, end_text = first.isoformat(), (first + dt.timedelta(days=1)).isoformat()
            else:
                start_text = p["start"].strftime("%Y-%m-%dT%H:%M:%SZ")
                end_text = p["end"].strftime("%Y-%m-%dT%H:%M:%SZ")
            rows["free_busy"].append(
                [
                    account_id,
                    f"cal_{account_id}",
                    p["uid"],
                    None,
                    start_text,
                    end_text,
                    None,
                    None,
                    naive(p["start"]),
                    naive(p["end"]),
                    p["all_day"],
                    p["status"],
                    p["deleted"],
                    now,
                    gone,
                ]
            )
    return rows


def load_postgres(dsn: str, made) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute("drop schema if exists cronofy cascade")
        con.execute("drop schema if exists analytics cascade")
        con.execute("create schema cronofy")
        for statement in TABLES:
            con.execute(statement)
        for table, rows in rows_of(made).items():
            for row in rows:
                marks = ", ".join(["%s"] * len(row))
                con.execute(f"insert into cronofy.{table} values ({marks})", row)


def load(path, made) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema cronofy")
        for statement in TABLES:
            con.execute(statement)
        for table, rows in rows_of(made).items():
            for row in rows:
                marks = ", ".join(["?"] * len(row))
                con.execute(f"insert into cronofy.{table} values ({marks})", row)


def dbt_build(dbt, tmp, env: dict[str, str], *target: str) -> None:
    """`dbt build` of the analytics project (its models and tests, not the freshness of
    sources), logs and artefacts in ``tmp``."""
    result = subprocess.run(
        [
            str(dbt),
            "build",
            *target,
            "--project-dir",
            str(ROOT / "analytics"),
            "--profiles-dir",
            str(ROOT / "analytics"),
            "--target-path",
            str(tmp / "target"),
            "--log-path",
            str(tmp / "logs"),
            "--exclude",
            "source:*",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]


def reference(made) -> dict[tuple[str, dt.date], tuple[float, float]]:
    weeks: dict[tuple[str, dt.date], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for account_id, zone, periods in made:
        spans = [
            (p["start"], p["end"])
            for p in periods
            if not (p["deleted"] or p["left"] or p["all_day"])
            and p["status"] in BUSY
            and p["end"] > p["start"]
        ]
        add_weeks(weeks, account_id, spans, ZoneInfo(zone))
    return {k: (round(v[0], 4), round(v[1], 4)) for k, v in weeks.items() if v[0] or v[1]}


@settings(max_examples=max(3, settings.default.max_examples // 50))
@given(made=accounts())
def test_busy_hours_weekly_equals_the_reference_on_every_week_and_zone(made, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dbt")
    warehouse = tmp / "warehouse.duckdb"
    load(warehouse, made)
    dbt_build(DBT, tmp, {"DBT_DUCKDB_PATH": str(warehouse)})
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select account_id, week_start, busy_hours, booked_hours "
            "from analytics.busy_hours_weekly"
        ).fetchall()
    built = {(a, w): (round(b, 4), round(k, 4)) for a, w, b, k in rows if b or k}
    assert built == reference(made)


@pytest.fixture(scope="module")
def warehouse_postgres():
    """One PostgreSQL for the module's examples (each drops and remakes its schemas)."""
    from harness.postgres import started

    server = started()
    yield server
    server.stop()


@settings(max_examples=max(3, settings.default.max_examples // 50))
@given(made=accounts())
def test_on_postgresql_busy_hours_weekly_equals_the_reference_too(
    made, warehouse_postgres, tmp_path_factory
):
    """The same models, macros and property, built by dbt-postgres in a real PostgreSQL."""
    import psycopg

    server = warehouse_postgres
    dsn = f"host=127.0.0.1 port={server.port} user={server.user} dbname=postgres"
    load_postgres(dsn, made)
    tmp = tmp_path_factory.mktemp("dbt-postgres")
    env = {
        "DBT_POSTGRES_PORT": str(server.port),
        "DBT_POSTGRES_USER": server.user,
        "DBT_POSTGRES_DBNAME": "postgres",
    }
    dbt_build(DBT_POSTGRES, tmp, env, "--target", "postgres")
    with psycopg.connect(dsn) as con:
        rows = con.execute(
            "select account_id, week_start, busy_hours, booked_hours "
            "from analytics.busy_hours_weekly"
        ).fetchall()
    built = {(a, w): (round(float(b), 4), round(float(k), 4)) for a, w, b, k in rows if b or k}
    assert built == reference(made)
