"""Real `meltano run` into real DuckDB and PostgreSQL, twice, with changes in between."""

from __future__ import annotations

import re

import duckdb
import pytest

from demo.project import meltano, meltano_env, meltano_state
from tests.helpers import (
    account_states,
    expected_first_sync,
    first_sync_rows,
    own_meltano_dir,
)


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
    request_id = list(sim.scheduling)[4]
    sim.set_slot_selection(
        request_id,
        "cancelled" if sim.scheduling[request_id]["slot_selection"] != "cancelled" else "expired",
    )
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
