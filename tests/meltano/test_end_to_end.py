"""Real `meltano run` into real DuckDB and PostgreSQL, twice, with changes in between."""

from __future__ import annotations

import datetime as dt
import re

import duckdb
import pytest

from harness import docs
from harness.project import meltano, meltano_env, meltano_state
from harness.tap import (
    account_states,
    expected_first_sync,
    first_sync_rows,
    own_meltano_dir,
)
from tap_cronofy.scheduling_plan import OPEN, tier_of


@pytest.fixture
def project(sim, tmp_path):
    """Meltano pointed at the simulator, with its own system database and warehouse file."""
    settings = dict(sim.tap_config(sim.url), max_retry_wait_seconds=1)
    settings["scheduling_request_ids"] = settings["scheduling_request_ids"][:30]
    env = meltano_env(
        settings,
        MELTANO_DATABASE_URI=f"sqlite:///{tmp_path / 'meltano.db'}",
        TARGET_DUCKDB_FILEPATH=str(tmp_path / "warehouse.duckdb"),
        **own_meltano_dir(tmp_path),
    )
    return env, tmp_path / "warehouse.duckdb"


def change_some_data(sim) -> dict:
    sim.advance(60)
    first, _, third = sorted(sim.accounts)
    live = [e for e in sim.events_of(first) if not e.deleted and not e.managed]
    modified = [
        sim.modify_event(first, e.event_uid, status="unknown" if e.status != "unknown" else "busy")
        for e in live[:2]
    ]
    deleted = sim.delete_event(first, live[2].event_uid)
    created = sim.create_event(third, status="tentative")
    # an open request (queried every run) is cancelled: the next run emits it
    now = sim.now_dt()
    request_id = next(i for i in sim.scheduling if tier_of(sim.scheduling[i], now) == OPEN)
    sim.set_slot_selection(request_id, "cancelled")
    sim.advance(60)
    return {
        "modified": modified,
        "deleted": deleted,
        "created": created,
        "request": request_id,
        "first": first,
        "third": third,
    }


def emitted(result, stream: str) -> int:
    """Records the tap reported emitting in a `meltano run`: its summary line per stream
    (Meltano renders the SDK's structured metrics without their stream tag)."""
    found = re.findall(rf"Summary {stream}: (\d+) records?\b", result.stderr)
    assert len(found) == 1, f"one summary line for {stream}"
    metrics = re.findall(r"metric_name=record_count metric_value=(\d+)", result.stderr)
    assert found[0] in metrics, "the SDK's own record count agrees"
    return int(found[0])


def free_busy_rows(con) -> list[tuple]:
    return con.execute(
        "select account_id, calendar_id, event_uid, free_busy_status, deleted, _sdc_deleted_at "
        "from cronofy.free_busy"
    ).fetchall()


def test_meltano_into_duckdb_twice(sim, project):
    env, warehouse = project
    state_id = "dev:tap-cronofy-to-target-duckdb"
    first = meltano("run", "tap-cronofy", "target-duckdb", env=env)
    expected = expected_first_sync(sim)
    loaded = first_sync_rows(sim)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = free_busy_rows(con)
        assert len(rows) == emitted(first, "free_busy") == len(loaded), (
            "every emitted record is a row (this target has dropped rows before)"
        )
        assert {r[:3] for r in rows} == loaded
        assert {r[:3] for r in rows if r[5] is None} == expected, "live: the window"
        assert con.execute("select count(*) from cronofy.scheduling_requests").fetchone()[0] == 30
    state_1 = meltano_state(state_id, env)

    change = change_some_data(sim)
    second = meltano("run", "tap-cronofy", "target-duckdb", env=env)
    assert emitted(second, "free_busy") == 4, "2 modified, 1 deleted, 1 created"
    assert emitted(second, "scheduling_requests") == 1
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = free_busy_rows(con)
        keys = [r[:3] for r in rows]
        assert len(keys) == len(set(keys)), "updated rows are updated, not duplicated"
        assert len(rows) == len(loaded) + 1, "one new event"
        by_uid = {r[2]: r for r in rows}
        for event in change["modified"]:
            assert by_uid[event.event_uid][3] == event.status
        assert by_uid[change["deleted"].event_uid][4] is True
        assert by_uid[change["deleted"].event_uid][5] is not None
        assert by_uid[change["created"].event_uid][3] == "tentative"
        selection = con.execute(
            "select slot_selection from cronofy.scheduling_requests"
            " where scheduling_request_id = ?",
            [change["request"]],
        ).fetchone()[0]
        assert selection == sim.scheduling[change["request"]]["slot_selection"]
        assert con.execute("select count(*) from cronofy.scheduling_requests").fetchone()[0] == 30
    state_2 = meltano_state(state_id, env)
    before = {
        a: s["replication_key_value"] for a, s in account_states(state_1["singer_state"]).items()
    }
    after = {
        a: s["replication_key_value"] for a, s in account_states(state_2["singer_state"]).items()
    }
    assert set(after) == set(sim.accounts) and all(after[a] > before[a] for a in after)


def test_duckdb_hard_delete_removes_deleted_events(sim, project):
    env, warehouse = project
    env = {**env, "TARGET_DUCKDB_HARD_DELETE": "true"}
    meltano("run", "tap-cronofy", "target-duckdb", env=env)
    change = change_some_data(sim)
    meltano("run", "tap-cronofy", "target-duckdb", env=env)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        uids = {r[2] for r in free_busy_rows(con)}
    assert change["deleted"].event_uid not in uids
    assert change["created"].event_uid in uids
    # every row marked deleted (by Cronofy, or out of the window) is gone: the rest is live
    assert uids == {k[2] for k in expected_first_sync(sim)}


def test_meltano_into_postgres_twice(sim, project, postgres):
    import psycopg

    env, _ = project
    env = {
        **env,
        "TARGET_POSTGRES_HOST": "127.0.0.1",
        "TARGET_POSTGRES_PORT": str(postgres.port),
        "TARGET_POSTGRES_USER": postgres.user,
        "TARGET_POSTGRES_PASSWORD": "unused",
        "TARGET_POSTGRES_DATABASE": "postgres",
    }
    meltano("run", "tap-cronofy", "target-postgres", env=env)
    expected = first_sync_rows(sim)
    dsn = f"host=127.0.0.1 port={postgres.port} user={postgres.user} dbname=postgres"
    with psycopg.connect(dsn) as con:
        rows = con.execute(
            "select account_id, calendar_id, event_uid from cronofy.free_busy"
        ).fetchall()
        assert len(rows) == len(expected) and set(rows) == expected
        live = con.execute(
            "select account_id, calendar_id, event_uid from cronofy.free_busy "
            "where _sdc_deleted_at is null"
        ).fetchall()
        assert set(live) == expected_first_sync(sim)
    change = change_some_data(sim)
    meltano("run", "tap-cronofy", "target-postgres", env=env)
    with psycopg.connect(dsn) as con:
        rows = con.execute(
            "select event_uid, free_busy_status, deleted from cronofy.free_busy"
        ).fetchall()
        assert len(rows) == len(expected) + 1 and len({r[0] for r in rows}) == len(rows)
        by_uid = {r[0]: r for r in rows}
        for event in change["modified"]:
            assert by_uid[event.event_uid][1] == event.status
        assert by_uid[change["deleted"].event_uid][2] is True
        count = con.execute("select count(*) from cronofy.scheduling_requests").fetchone()[0]
        assert count == 30
        assert_types_as_the_manual_says(con)
        assert_the_manuals_queries_read_it_right(con, sim)


def documented_postgres_types() -> dict[str, str]:
    """The manual's PostgreSQL column, by column name (`calendar_*` a prefix)."""
    text = docs.page("warehouses.md")
    table = text[text.index("| columns | PostgreSQL |") :].split("\n\n", 1)[0]
    types = {}
    for row in table.splitlines()[2:]:
        columns, postgres = row.split(" | ")[0], row.split(" | ")[1]
        kind = re.search(r"`([^`]+)`", postgres).group(1)
        for name in re.findall(r"`([^`]+)`", columns.split("(")[0]):
            if "[]" not in name:
                types[name] = kind
    return types


def assert_types_as_the_manual_says(con) -> None:
    found = con.execute(
        "select table_name, column_name, data_type, udt_name from information_schema.columns "
        "where table_schema = 'cronofy'"
    ).fetchall()
    spelled = {"timestamp without time zone": "timestamp", "ARRAY": None}
    checked = 0
    for name, kind in documented_postgres_types().items():
        for table, column, data_type, udt in found:
            if column == name or (name.endswith("*") and column.startswith(name[:-1])):
                actual = spelled.get(data_type, data_type) or f"{udt.lstrip('_')}[]"
                if name.endswith("*") and data_type != "boolean":
                    continue  # calendar_id and calendar_name: text, not flags
                assert actual == kind, (table, column, actual, kind)
                checked += 1
    assert checked >= 25, checked


def assert_the_manuals_queries_read_it_right(con, sim) -> None:
    """The manual's queries, in a session of another zone than UTC: the instants are the
    records' own, and every recipient comes out of the array."""
    text = docs.page("warehouses.md")
    block = re.search(r"```sql\n(.*?)```", text, re.S).group(1)
    times, recipients = (query.strip() for query in block.split(";\n\n"))
    con.execute("set time zone 'America/Chicago'")
    rows = con.execute(times).fetchall()
    by_account = {}
    for account_id, starts_at, starts_local in rows:
        assert starts_at.utcoffset() is not None, "an instant, with its zone"
        assert starts_local.tzinfo is None
        by_account.setdefault(account_id, set()).add(starts_at)
    naive = con.execute(
        "select account_id, start_time from cronofy.free_busy where _sdc_deleted_at is null"
    ).fetchall()
    for account_id, start_time in naive:
        instant = start_time.replace(tzinfo=dt.timezone.utc)
        assert instant in by_account[account_id], "at time zone 'UTC' reads UTC"
    cast = con.execute("select start_time::timestamptz from cronofy.free_busy limit 1").fetchone()
    first = con.execute("select start_time from cronofy.free_busy limit 1").fetchone()
    assert cast[0] != first[0].replace(tzinfo=dt.timezone.utc), "the cast is hours off"
    emails = {r[1] for r in con.execute(recipients).fetchall()}
    expected = {
        person["email"] for request in sim.scheduling.values() for person in request["recipients"]
    }
    assert emails and emails <= expected


def test_meltano_into_jsonl(sim, project, tmp_path):
    env, _ = project
    out = tmp_path / "jsonl"
    out.mkdir()
    result = meltano(
        "run", "tap-cronofy", "target-jsonl", env={**env, "TARGET_JSONL_DESTINATION_PATH": str(out)}
    )
    lines = (out / "free_busy.jsonl").read_text().splitlines()
    assert len(lines) == emitted(result, "free_busy") == len(first_sync_rows(sim))
    assert len((out / "scheduling_requests.jsonl").read_text().splitlines()) == 30
