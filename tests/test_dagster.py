"""The Dagster project (orchestration/): four shards, each a partition run in-process by
Dagster's own test API, each a real `meltano run` against the simulator into DuckDB. The
union equals a one-process sync; a shard killed (-9) mid-run is retried and resumes."""

from __future__ import annotations

import datetime as dt
import importlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import duckdb

from demo.project import meltano, meltano_env
from tests.helpers import ROOT, expected_first_sync

sys.path.insert(0, str(ROOT / "orchestration"))


def definitions(monkeypatch, **env: str):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import cronofy_shards.definitions as module

    return importlib.reload(module)  # it reads CRONOFY_* when imported


def test_the_schedule_starts_every_shard_each_hour_once(monkeypatch):
    module = definitions(monkeypatch, CRONOFY_SHARDS="3")
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 12, 3, 14))
    requests = list(module.hourly(context))
    assert [(r.partition_key, r.run_key) for r in requests] == [
        (str(k), f"2026-12-03T14/{k}") for k in range(3)
    ]
    assert module.cronofy_shard.op.pool == module.POOL
    assert module.cronofy_shard.op.retry_policy.max_retries == 2


def test_a_shards_environment_names_its_shard_state_and_run_directory(tmp_path, monkeypatch):
    module = definitions(monkeypatch)
    (tmp_path / ".meltano" / "extractors").mkdir(parents=True)
    env = module.shard_env(2, 4, tmp_path, {"PATH": "/bin"})
    assert env["TAP_CRONOFY_SHARD"] == "2/4"
    assert env["MELTANO_RUN_STATE_ID_SUFFIX"] == "shard-2"
    assert env["MELTANO_SYS_DIR_ROOT"] == str(tmp_path / ".meltano-shards" / "2")
    assert (tmp_path / ".meltano-shards" / "2" / "extractors").resolve() == (
        tmp_path / ".meltano" / "extractors"
    )
    assert env["MELTANO_DATABASE_URI"] == f"sqlite:///{tmp_path / '.meltano' / 'meltano.db'}"
    shared = {"MELTANO_DATABASE_URI": "postgresql+psycopg://db/meltano"}
    assert module.shard_env(0, 4, tmp_path, shared)["MELTANO_DATABASE_URI"] == (
        "postgresql+psycopg://db/meltano"
    )


def tap_processes(shard: str) -> list[int]:
    """The running tap processes of one shard (Meltano starts them with its environment)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:  # gone, or not ours
            continue
        is_tap = any(a.endswith(b"/tap-cronofy") for a in argv[:2]) and b"--config" in argv
        if is_tap and f"TAP_CRONOFY_SHARD={shard}".encode() in environ:
            found.append(int(proc.name))
    return found


def kill_when_held(sim, shard: str, killed: list[int], timeout: float = 60) -> None:
    """Once the simulator holds the shard's delayed query (its fault taken), kill -9 the
    shard's tap: mid-run, records already sent, no state written since its start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        taken = all(f.times == 0 for f in sim.faults)
        if taken and (pids := tap_processes(shard)):
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            killed.extend(pids)
            return
        time.sleep(0.05)


def test_four_shards_under_dagster_load_what_one_process_does_and_a_killed_one_resumes(
    sim, tmp_path, monkeypatch
):
    warehouse = tmp_path / "warehouse.duckdb"
    settings = dict(sim.tap_config(sim.url), max_parallel_accounts=1)
    settings.pop("scheduling_request_ids")
    env = meltano_env(
        settings,
        MELTANO_DATABASE_URI=f"sqlite:///{tmp_path / 'meltano.db'}",
        TARGET_DUCKDB_FILEPATH=str(warehouse),
    )
    module = definitions(
        monkeypatch,
        **{k: v for k, v in env.items() if k.startswith(("TAP_CRONOFY_", "MELTANO_", "TARGET_"))},
        CRONOFY_SHARDS="2",
        CRONOFY_RETRY_DELAY="0",
    )
    from tap_cronofy.shard import shard_of

    owned = {k: sorted(a for a in sim.accounts if shard_of(a, 2) == k) for k in range(2)}
    killed_shard = next(k for k, ids in owned.items() if len(ids) >= 2)
    # its first attempt is killed while Cronofy answers its last account: the accounts
    # before it were read and sent on, and no STATE has gone out yet
    last = owned[killed_shard][-1]
    sim.add_fault(kind="delay", seconds=30, path="/v1/free_busy", account_id=last, times=1)
    killed: list[int] = []
    instance = dg.DagsterInstance.ephemeral()
    for shard in range(2):
        watcher = threading.Thread(
            target=kill_when_held, args=(sim, f"{shard}/2", killed), daemon=True
        )
        if shard == killed_shard:
            watcher.start()
        result = dg.materialize([module.cronofy_shard], partition_key=str(shard), instance=instance)
        assert result.success, shard
        retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
        assert bool(retried) is (shard == killed_shard), shard
    assert killed, "the shard's tap was killed mid-run"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select account_id, calendar_id, event_uid from cronofy.free_busy "
            "where _sdc_deleted_at is null"
        ).fetchall()
    assert len(rows) == len(set(rows)) and set(rows) == expected_first_sync(sim)
    states = meltano("state", "list", env=env).stdout
    for shard in range(2):
        assert f"dev:tap-cronofy-to-target-duckdb:shard-{shard}" in states
