"""The scheduling_requests stream: batches of 10, unknown ids, change detection."""

from __future__ import annotations

import json
import math

from jsonschema import Draft7Validator, FormatChecker

from harness.tap import discovered_catalog, run_tap, tap_config
from tap_cronofy.scheduling_plan import OPEN, SETTLED, tier_of

SR = ["scheduling_requests"]
UNKNOWN = [f"srq_unknown{n:020d}" for n in range(7)]


def queries(sim) -> list[list[str]]:
    return [
        json.loads(r["body"])["scheduling_request_ids"]
        for r in sim.requests
        if r["path"] == "/v1/scheduling_requests/query"
    ]


def test_many_ids_in_batches_of_ten_with_unknown_ids(sim):
    known = list(sim.scheduling)[:30]
    # (no duplicates: the setting refuses them; the file's are merged in the next test)
    ids = known[:15] + UNKNOWN + known[15:]
    run = run_tap(tap_config(sim, sim.url, scheduling_request_ids=ids), streams=SR)
    assert run.returncode == 0, run.stderr
    emitted = run.record_keys("scheduling_requests")
    assert sorted(emitted) == sorted(known), "every found request exactly once"
    sent = queries(sim)
    assert len(sent) == math.ceil(37 / 10) and max(len(batch) for batch in sent) <= 10
    assert sorted(i for batch in sent for i in batch) == sorted(known + UNKNOWN)
    assert "7 of 37 scheduling request ids queried were not found" in run.stderr
    for request in (r for r in sim.requests if r["path"] == "/v1/scheduling_requests/query"):
        assert request["authorization"] == f"Bearer {sim.client_secret}"


def test_duplicates_and_ids_file_are_merged(sim, tmp_path):
    known = list(sim.scheduling)
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(["# exported ids", *known[5:25], "", known[5]]) + "\n")
    run = run_tap(
        tap_config(
            sim,
            sim.url,
            scheduling_request_ids=known[:8],
            scheduling_request_ids_file=str(ids_file),
        ),
        streams=SR,
    )
    assert run.returncode == 0, run.stderr
    assert sorted(run.record_keys("scheduling_requests")) == sorted(known[:25])
    assert len(queries(sim)) == 3


def test_records_are_the_unwrapped_requests_and_validate(sim):
    ids = list(sim.scheduling)
    run = run_tap(tap_config(sim, sim.url, scheduling_request_ids=ids), streams=SR)
    schema = next(
        s["schema"]
        for s in discovered_catalog()["streams"]
        if s["tap_stream_id"] == "scheduling_requests"
    )
    validator = Draft7Validator(schema, format_checker=FormatChecker())
    records = run.records("scheduling_requests")
    assert len(records) == len(ids)
    for record in records:
        assert not list(validator.iter_errors(record)), record
        stored = sim.scheduling[record["scheduling_request_id"]]
        assert {k: v for k, v in record.items() if k != "last_modified"} == stored
    seen = {r["slot_selection"] for r in records}
    assert seen == {"pending", "pending_rescheduling", "complete", "expired", "cancelled"}
    required = {g["required"] for r in records for g in r.get("collaborator_groups", [])}
    assert "all" in required and any(isinstance(v, int) for v in required)
    assert any("start" in r["event"] for r in records) and any(
        "start" not in r["event"] for r in records
    )
    assert any("decline_url" not in r["recipient_operations"] for r in records)
    assert any("buffer" in r for r in records) and any("buffer" not in r for r in records)


def test_second_run_emits_only_changed_requests(sim):
    """Open requests (pending, pending_rescheduling, complete with the meeting ahead) are
    queried every run: a change to any is emitted by the next run. Settled ones wait for
    their hour of the cycle (test below)."""
    ids = list(sim.scheduling)[:25]
    config = tap_config(sim, sim.url, scheduling_request_ids=ids)
    first = run_tap(config, streams=SR)
    assert len(first.records()) == 25
    open_ids = [i for i in ids if tier_of(sim.scheduling[i], sim.now_dt()) == OPEN]
    assert 5 <= len(open_ids) < 25
    sim.advance(120)
    changed = {open_ids[0]: "cancelled", open_ids[3]: "expired", open_ids[-1]: "complete"}
    for request_id, selection in changed.items():
        if sim.scheduling[request_id]["slot_selection"] == selection:
            selection = "pending_rescheduling"
            changed[request_id] = selection
        sim.set_slot_selection(request_id, selection)
    sim.requests.clear()
    second = run_tap(config, first.state, streams=SR)
    assert second.returncode == 0, second.stderr
    got = {r["scheduling_request_id"]: r for r in second.records()}
    assert set(got) == set(changed)
    for request_id, selection in changed.items():
        assert got[request_id]["slot_selection"] == selection
        assert got[request_id]["last_modified"] > first.records()[0]["last_modified"]
    assert sorted(i for batch in queries(sim) for i in batch) == sorted(open_ids)
    assert len(queries(sim)) == math.ceil(len(open_ids) / 10), "only the open ones"
    sim.requests.clear()
    third = run_tap(config, second.state, streams=SR)
    assert third.returncode == 0, third.stderr
    assert third.records() == []
    still_open = [i for i in open_ids if i not in changed or changed[i] == "pending_rescheduling"]
    assert sorted(i for batch in queries(sim) for i in batch) == sorted(still_open)


def test_a_settled_request_that_reopens_is_emitted_within_its_cycle(sim):
    ids = list(sim.scheduling)[:25]
    config = tap_config(sim, sim.url, scheduling_request_ids=ids, scheduling_settled_hours=6)
    state = run_tap(config, streams=SR).state
    settled = [i for i in ids if tier_of(sim.scheduling[i], sim.now_dt()) == SETTLED]
    assert len(settled) >= 5
    reopened = settled[0]
    sim.set_slot_selection(reopened, "pending_rescheduling")
    seen_after = None
    asked = {i: 0 for i in ids}
    for hour in range(1, 8):  # hourly runs over a little more than one cycle
        sim.advance(3600)
        sim.requests.clear()
        run = run_tap(config, state, streams=SR)
        assert run.returncode == 0, run.stderr
        state = run.state
        for batch in queries(sim):
            for request_id in batch:
                asked[request_id] += 1
        if reopened in run.record_keys("scheduling_requests"):
            seen_after = seen_after or hour
    assert seen_after is not None and seen_after <= 6, "within the 6-hour cycle"
    for request_id in settled[1:]:
        assert 1 <= asked[request_id] <= 2, (request_id, asked[request_id])
    assert sum(asked[i] for i in settled[1:]) < 7 * len(settled[1:]) / 2, "not every run"


def test_new_ids_are_emitted_and_removed_ids_leave_state(sim):
    ids = list(sim.scheduling)
    first = run_tap(tap_config(sim, sim.url, scheduling_request_ids=ids[:20]), streams=SR)
    fingerprints = first.state["bookmarks"]["scheduling_requests"]["fingerprints"]
    assert len(fingerprints) == 20
    second = run_tap(
        tap_config(sim, sim.url, scheduling_request_ids=ids[10:25]), first.state, streams=SR
    )
    assert sorted(second.record_keys("scheduling_requests")) == sorted(ids[20:25])
    kept = second.state["bookmarks"]["scheduling_requests"]["fingerprints"]
    assert sorted(item.split(":")[0] for item in kept) == sorted(ids[10:25])
    assert sim.client_secret not in json.dumps(second.state)


def test_no_ids_emits_nothing_and_says_why(sim):
    run = run_tap(tap_config(sim, sim.url), streams=SR)
    assert run.returncode == 0
    assert run.records() == []
    assert "Skipping scheduling_requests: no scheduling_request_ids" in run.stderr
    assert queries(sim) == []


def test_401_and_403_say_what_to_fix(sim):
    ids = list(sim.scheduling)[:3]
    wrong = run_tap(
        tap_config(
            sim, sim.url, scheduling_request_ids=ids, client_secret="not-the-internal-app-secret"
        ),
        streams=SR,
    )
    assert wrong.returncode != 0
    assert "401" in wrong.stderr and "Internal Application" in wrong.stderr
    assert "not-the-internal-app-secret" not in wrong.stderr
    sim.scheduler_plan = False
    plan = run_tap(tap_config(sim, sim.url, scheduling_request_ids=ids), streams=SR)
    assert plan.returncode != 0
    assert "403" in plan.stderr and "Scheduler plan" in plan.stderr
    # the manual's promise: that stream fails, and free_busy is already loaded, its state kept
    every = run_tap(tap_config(sim, sim.url, scheduling_request_ids=ids))
    assert every.returncode != 0 and "Scheduler plan" in every.stderr
    assert {r["account_id"] for r in every.records("free_busy")} == set(sim.accounts)
    assert set(every.state["bookmarks"]["free_busy"]["accounts"]) == set(sim.accounts)


def test_failed_batch_keeps_what_was_emitted_and_rerun_fills_the_gap(sim):
    ids = list(sim.scheduling)[:25]
    config = tap_config(sim, sim.url, scheduling_request_ids=ids, max_retries=2)
    sim.add_fault(status=503, times=10, after=2, path="/v1/scheduling_requests/query")
    failed = run_tap(config, streams=SR)
    assert failed.returncode != 0 and "Giving up after 2 tries" in failed.stderr
    emitted = failed.record_keys("scheduling_requests")
    assert sorted(emitted) == sorted(ids[:20])
    saved = failed.state["bookmarks"]["scheduling_requests"]["fingerprints"]
    assert sorted(item.split(":")[0] for item in saved) == sorted(ids[:20])
    sim.faults.clear()
    rerun = run_tap(config, failed.state, streams=SR)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(rerun.record_keys("scheduling_requests")) == sorted(ids[20:])


def test_duration_is_loaded_and_an_undeclared_field_is_named_once(sim):
    ids = list(sim.scheduling)[:12]
    for request_id in ids[:5]:  # a field no one has documented yet, on five requests
        sim.scheduling[request_id]["meeting_room_hint"] = "Level 3"
    run = run_tap(tap_config(sim, sim.url, scheduling_request_ids=ids), streams=SR)
    assert run.returncode == 0, run.stderr
    records = {r["scheduling_request_id"]: r for r in run.records("scheduling_requests")}
    for request_id in ids:
        assert records[request_id]["duration"] == sim.scheduling[request_id]["duration"]
        assert "meeting_room_hint" not in records[request_id]
    named = [line for line in run.stderr.splitlines() if "does not declare" in line]
    assert len(named) == 1 and "does not declare, not loaded: meeting_room_hint." in named[0]


def test_ids_come_from_the_products_postgresql_read_only(sim, postgres):
    import psycopg

    ids = list(sim.scheduling)[:15]
    dsn = f"host=127.0.0.1 port={postgres.port} user={postgres.user} dbname=postgres"
    with psycopg.connect(dsn) as con:
        con.execute("create table interviews (cronofy_id text, stage text)")
        for request_id in ids:
            con.execute("insert into interviews values (%s, 'open')", (request_id,))
        con.execute("insert into interviews values (null, 'draft'), ('', 'draft')")
    url = f"postgresql://{postgres.user}:pw-not-to-be-shown@127.0.0.1:{postgres.port}/postgres"
    config = tap_config(
        sim,
        sim.url,
        scheduling_request_ids_url=url,
        scheduling_request_ids_sql="select cronofy_id from interviews order by stage",
    )
    run = run_tap(config, streams=SR)
    assert run.returncode == 0, run.stderr
    assert sorted(run.record_keys("scheduling_requests")) == sorted(ids)
    # the query runs read-only: a statement that writes is refused, and says where
    writes = dict(config, scheduling_request_ids_sql="delete from interviews returning cronofy_id")
    refused = run_tap(writes, streams=["free_busy", *SR])
    assert refused.returncode != 0
    assert refused.records("free_busy"), "the other streams are loaded"
    assert refused.state["bookmarks"]["free_busy"], "and their state saved"
    assert "`scheduling_request_ids_sql` failed on PostgreSQL 127.0.0.1" in refused.stderr
    assert "read-only" in refused.stderr
    assert "pw-not-to-be-shown" not in refused.stderr + run.stderr
    # nor can a COMMIT end the read-only transaction so that a second statement writes
    sneaky = "select 1; commit; delete from interviews; select cronofy_id from interviews"
    refused = run_tap(dict(config, scheduling_request_ids_sql=sneaky), streams=SR)
    assert refused.returncode != 0 and "`scheduling_request_ids_sql` failed" in refused.stderr
    with psycopg.connect(dsn) as con:
        assert con.execute("select count(*) from interviews").fetchone()[0] == 17


def test_scheduling_queries_count_in_the_runs_budget_stalest_first(sim):
    ids = list(sim.scheduling)[:37]
    config = tap_config(sim, sim.url, scheduling_request_ids=ids, max_requests_per_run=3)
    first = run_tap(config, streams=SR)
    assert first.returncode == 0, first.stderr
    asked = [i for batch in queries(sim) for i in batch]
    assert len(queries(sim)) == 2 and asked == ids[:20], "the clock and two batches: 3"
    assert "17 due scheduling request ids wait for the next run" in first.stderr
    sim.requests.clear()
    second = run_tap(config, first.state, streams=SR)
    assert second.returncode == 0, second.stderr
    assert [i for batch in queries(sim) for i in batch][:17] == ids[20:], "never queried first"
    assert set(second.record_keys("scheduling_requests")) == set(ids[20:])
