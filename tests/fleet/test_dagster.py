"""The Dagster project (orchestration/): four shards, each a partition run in-process by
Dagster's own test API, each a real `meltano run` against the simulator into DuckDB. The
union equals a one-process sync; a shard killed (-9) mid-run is retried and resumes."""

from __future__ import annotations

import datetime as dt
import importlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import dagster as dg
import duckdb

from harness import docs
from harness.project import free_port, meltano, meltano_env
from harness.tap import ROOT, expected_first_sync

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


def tap_processes(shard: str, marker: str) -> list[int]:
    """This test's running tap processes of one shard (Meltano starts them with its
    environment; ``marker``, a variable only this test sets, keeps other tests' taps out)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:  # gone, or not ours
            continue
        is_tap = any(a.endswith(b"/tap-cronofy") for a in argv[:2]) and b"--config" in argv
        mine = marker.encode() in environ
        if is_tap and mine and f"TAP_CRONOFY_SHARD={shard}".encode() in environ:
            found.append(int(proc.name))
    return found


def kill_when_held(sim, shard: str, marker: str, killed: list[int], timeout: float = 60) -> None:
    """Once the simulator holds the shard's delayed query (its fault taken), kill -9 the
    shard's tap: mid-run, records already sent, no state written since its start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        taken = all(f.times == 0 for f in sim.faults)
        if taken and (pids := tap_processes(shard, marker)):
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
        MELTANO_PROJECT_ROOT=str(scratch_project(tmp_path)),
    )
    marker = f"TARGET_DUCKDB_FILEPATH={warehouse}"
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
            target=kill_when_held, args=(sim, f"{shard}/2", marker, killed), daemon=True
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


def dagster_block() -> list[str]:
    text = docs.page("scaling-out.md")
    section = text[text.index("**With Dagster**") :]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1).splitlines()


def scratch_project(tmp_path: Path) -> Path:
    """A Meltano project that is not this checkout, with the plugins `make test` installed."""
    project = tmp_path / "project"
    (project / ".meltano").mkdir(parents=True)
    shutil.copy(ROOT / "meltano.yml", project / "meltano.yml")
    for kind in ("extractors", "loaders"):
        (project / ".meltano" / kind).symlink_to(ROOT / ".meltano" / kind)
    return project


def test_the_manuals_dagster_block_serves_the_webserver_and_loads_a_partition(
    sim, postgres, tmp_path
):
    """The manual's block as written (its placeholders filled): the shipped dagster.yaml in a
    new DAGSTER_HOME, `dagster dev` on a free port, one partition launched through the
    webserver's GraphQL API, queued and run by the daemon, loading that shard's accounts of
    a project that is not this checkout; then the server stops."""
    from dagster_graphql import DagsterGraphQLClient

    from tap_cronofy.shard import shard_of

    lines = dagster_block()
    assert lines[0].startswith("pip install 'tap-cronofy[dagster,postgres]'")
    project, home, port = scratch_project(tmp_path), tmp_path / "home", free_port()
    database = f"postgresql+psycopg://{postgres.user}@127.0.0.1:{postgres.port}/postgres"
    script = "\n".join(lines[1:])
    for placeholder, value in (
        ("/path/to/your/meltano-project", str(project)),
        ("postgresql+psycopg://meltano@db/meltano", database),
        ("-p 3000", f"-p {port}"),
    ):
        assert placeholder in script, placeholder
        script = script.replace(placeholder, value)
    warehouse = tmp_path / "warehouse.duckdb"
    settings = sim.tap_config(sim.url)
    settings.pop("scheduling_request_ids")
    env = meltano_env(settings, HOME=str(home), TARGET_DUCKDB_FILEPATH=str(warehouse))
    env.pop("DAGSTER_HOME", None)
    shard = next(k for k in range(8) if any(shard_of(a, 8) == k for a in sim.accounts))
    server = subprocess.Popen(
        ["bash", "-ec", script.replace("dagster dev", "exec dagster dev")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stderr.read()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the webserver did not come up"
                time.sleep(1)
        assert (home / "dagster-cronofy" / "dagster.yaml").read_text() == (
            ROOT / "orchestration" / "dagster.yaml"
        ).read_text()
        client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        run_id = client.submit_job_execution(
            "cronofy_shards_job", tags={"dagster/partition": str(shard)}
        )
        deadline = time.monotonic() + 300
        while (status := client.get_run_status(run_id).value) not in ("SUCCESS", "FAILURE"):
            assert time.monotonic() < deadline, f"run {run_id} still {status}"
            time.sleep(2)
        assert status == "SUCCESS"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
            raise AssertionError("dagster dev did not stop on SIGTERM") from None
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select distinct account_id from cronofy.free_busy").fetchall()
    loaded = {row[0] for row in rows}
    assert loaded == {a for a in sim.accounts if shard_of(a, 8) == shard}
    assert (project / ".meltano-shards" / str(shard)).is_dir()
