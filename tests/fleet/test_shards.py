"""Shards end to end: processes side by side against the simulator, one shared quota,
re-sharding 4 to 8 and 8 to 3 without reading any account whole again."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from harness import docs
from harness.postgres import seed_token_store
from harness.project import BIN
from harness.tap import (
    ROOT,
    TapRun,
    account_states,
    expected_first_sync,
    run_tap,
    tap_config,
)
from simulator import Simulator, SimulatorServer
from tap_cronofy.shard import shard_of
from tests.meltano.test_readme_commands import project_env, scratch_project

FB = ["free_busy"]


def shard_runs(config: dict, count: int, states: list | None = None) -> list[TapRun]:
    """``count`` shard processes at once, each with its own state."""
    with ThreadPoolExecutor(count) as pool:
        return list(
            pool.map(
                lambda n: run_tap(
                    {**config, "shard": f"{n}/{count}"},
                    states[n] if states else None,
                    streams=FB,
                    timeout=300,
                ),
                range(count),
            )
        )


def keys(runs: list[TapRun]) -> list[tuple]:
    return [k for run in runs for k in run.live_keys()]


def test_shards_side_by_side_share_one_quota_and_together_load_what_one_process_does(postgres):
    sim = Simulator(seed=4, accounts=12, events_per_account=8, page_size=100)
    server = SimulatorServer(sim).start()
    limit = 16
    sim.rate_limits = [(limit, 60.0)]  # Cronofy's per-application quota, here per minute
    try:
        quota = f"postgresql://{postgres.user}@127.0.0.1:{postgres.port}/postgres"
        config = tap_config(sim, server.url, requests_per_minute=limit, shared_quota=quota)
        runs = shard_runs(config, 3)
        assert all(run.returncode == 0 for run in runs), [r.stderr[-1500:] for r in runs]
        assert sim.rate_limited_count == 0, "no 429: the shards kept to one window together"
        arrivals = sorted(r["at"] for r in sim.requests)
        peak = max(sum(1 for t in arrivals if s <= t < s + 60) for s in arrivals)
        assert peak <= limit
        assert len(arrivals) > limit, "the run needed more than one window"
        loaded = keys(runs)
        assert len(loaded) == len(set(loaded)) and set(loaded) == expected_first_sync(sim)
        owners = [set(account_states(run.state)) for run in runs]
        assert sorted(a for o in owners for a in o) == sorted(sim.accounts), "each account once"
    finally:
        server.stop()


def test_without_the_shared_quota_shards_together_would_be_refused(sim):
    """The control: the same shards, each within its own limit, overrun the application's."""
    sim.rate_limits = [(8, 60.0)]
    config = tap_config(sim, sim.url, requests_per_minute=8, max_retries=0)
    runs = shard_runs(config, 3)
    assert sim.rate_limited_count > 0 or any(r.returncode for r in runs)


def reshard(states: list[dict], count: int, out) -> list[dict]:
    inputs = []
    for n, state in enumerate(states):
        path = out / f"in-{len(states)}-{n}.json"
        path.write_text(json.dumps(state))
        inputs.append(str(path))
    target = out / f"to-{count}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tap_cronofy.shards.cli",
            "reshard",
            *inputs,
            "--to",
            str(count),
            "--out-dir",
            str(target),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert f"{len(states)} states -> {count} shards" in done.stdout
    return [
        json.loads((target / f"shard-{n}.json").read_text())["singer_state"] for n in range(count)
    ]


def test_resharding_4_to_8_and_8_to_3_loses_no_bookmark_and_reads_no_account_whole(tmp_path):
    sim = Simulator(seed=6, accounts=16, events_per_account=5, page_size=100)
    server = SimulatorServer(sim).start()
    try:
        config = tap_config(sim, server.url)
        first = shard_runs(config, 4)
        assert all(run.returncode == 0 for run in first)
        states = [run.state for run in first]
        for count in (8, 3):
            states = reshard(states, count, tmp_path)
            sim.advance(120)
            sim.requests.clear()
            runs = shard_runs(config, count, states)
            assert all(run.returncode == 0 for run in runs), [r.stderr[-1500:] for r in runs]
            queries = [r["params"] for r in sim.requests if r["path"] == "/v1/free_busy"]
            assert len(queries) == len(sim.accounts), "one query per account"
            assert all("last_modified" in q for q in queries), "incremental: none read whole"
            states = [run.state for run in runs]
            held = [a for s in states for a in account_states(s)]
            assert sorted(held) == sorted(sim.accounts), "every bookmark kept, each once"
    finally:
        server.stop()


def test_two_shards_of_one_meltano_project_run_side_by_side_each_with_its_own(
    sim, tmp_path, postgres
):
    """Each shard with its own MELTANO_SYS_DIR_ROOT (as the Dagster project gives it) and
    state id suffix, one shared state backend: run at once, neither reads the other's
    config, catalog or state."""
    sys.path.insert(0, str(ROOT / "orchestration"))
    from cronofy_shards.definitions import shard_env

    from harness.project import meltano, meltano_env

    settings = sim.tap_config(sim.url)
    settings.pop("scheduling_request_ids")
    base = meltano_env(
        settings,
        MELTANO_DATABASE_URI=(
            f"postgresql+psycopg://{postgres.user}@127.0.0.1:{postgres.port}/postgres"
        ),
        TARGET_JSONL_DESTINATION_PATH=str(tmp_path),
    )
    project = scratch_project(tmp_path)  # its own .meltano-shards/, not the checkout's
    envs = [shard_env(n, 2, project, base) for n in range(2)]
    meltano("upgrade", "database", env=envs[0], cwd=project)  # once, before shards start
    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(
                lambda env: meltano("run", "tap-cronofy", "target-jsonl", env=env, cwd=project),
                envs,
            )
        )
    assert all(r.returncode == 0 for r in results)
    listed = meltano("state", "list", env=envs[0]).stdout
    for n in range(2):
        state_id = f"dev:tap-cronofy-to-target-jsonl:shard-{n}"
        assert state_id in listed
        state = json.loads(meltano("state", "get", state_id, env=envs[0]).stdout)
        held = set(account_states(state["singer_state"]))
        assert held == {a for a in sim.accounts if shard_of(a, 2) == n}, n
        run_dir = project / ".meltano-shards" / str(n) / "run" / "tap-cronofy"
        assert (run_dir / "tap.properties.json").exists(), "its catalog, in its own directory"


def readme_resharding_block() -> str:
    """The README's re-sharding commands, as written (the bash block under its heading)."""
    text = docs.page("scaling-out.md")
    after = text[text.index("**Re-sharding**") :]
    return re.search(r"```bash\n(.*?)```", after, re.S).group(1)


def test_the_readmes_resharding_loop_runs_as_written(tmp_path):
    """`meltano state get` of 4 shards, `tap-cronofy-shards reshard --to 8`, `meltano
    state set` of 8: the next run of each of the 8 shards reads every account incrementally,
    each account's bookmark in exactly one of them."""
    sim = Simulator(seed=8, accounts=12, events_per_account=5, page_size=100)
    server = SimulatorServer(sim).start()
    project = scratch_project(tmp_path)
    env = project_env(tmp_path)
    try:
        config = tap_config(sim, server.url)
        first = shard_runs(config, 4)
        assert all(run.returncode == 0 for run in first)
        for n, run in enumerate(first):
            state_id = f"dev:tap-cronofy-to-target-postgres:shard-{n}"
            value = json.dumps({"singer_state": run.state})
            meltano = [str(BIN / "meltano"), "state", "set", "--force", state_id, value]
            subprocess.run(meltano, cwd=project, env=env, check=True, capture_output=True)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", readme_resharding_block()],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert "4 states -> 8 shards" in done.stdout
        states = []
        for n in range(8):
            state_id = f"dev:tap-cronofy-to-target-postgres:shard-{n}"
            got = subprocess.run(
                [str(BIN / "meltano"), "state", "get", state_id],
                cwd=project,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            states.append(json.loads(got.stdout)["singer_state"])
        sim.advance(120)
        sim.requests.clear()
        runs = shard_runs(config, 8, states)
        assert all(run.returncode == 0 for run in runs), [r.stderr[-1500:] for r in runs]
        queries = [r["params"] for r in sim.requests if r["path"] == "/v1/free_busy"]
        assert len(queries) == len(sim.accounts), "one query per account"
        assert all("last_modified" in q for q in queries), "incremental: none read whole"
        held = [a for run in runs for a in account_states(run.state)]
        assert sorted(held) == sorted(sim.accounts), "every bookmark kept, each once"
    finally:
        server.stop()


def test_the_readmes_shard_line_runs_as_written_holding_only_its_shard(tmp_path, postgres):
    """`TAP_CRONOFY_SHARD=3/16 meltano run --state-id-suffix shard-3 tap-cronofy
    target-postgres`, as the README has it: loads and keeps only shard 3's accounts."""
    sim = Simulator(seed=9, accounts=48, events_per_account=2, page_size=100)
    server = SimulatorServer(sim).start()
    text = docs.page("scaling-out.md")
    after = text[text.index("Each shard is the same configuration plus two settings") :]
    line = re.search(r"```bash\n(.*?)```", after, re.S).group(1)
    assert "TAP_CRONOFY_SHARD=3/16" in line
    project = scratch_project(tmp_path)
    try:
        settings = tap_config(sim, server.url)
        settings.pop("scheduling_request_ids", None)
        env = project_env(tmp_path)
        for name, value in settings.items():
            text_value = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
            env[f"TAP_CRONOFY_{name.upper()}"] = text_value
        env.update(
            TARGET_POSTGRES_HOST="127.0.0.1",
            TARGET_POSTGRES_PORT=str(postgres.port),
            TARGET_POSTGRES_USER=postgres.user,
            TARGET_POSTGRES_PASSWORD="unused",
            TARGET_POSTGRES_DATABASE="postgres",
        )
        done = subprocess.run(
            ["bash", "-c", line], cwd=project, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
        got = subprocess.run(
            [str(BIN / "meltano"), "state", "get", "dev:tap-cronofy-to-target-postgres:shard-3"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        held = set(account_states(json.loads(got.stdout)["singer_state"]))
        mine = {a for a in sim.accounts if shard_of(a, 16) == 3}
        assert mine and held == mine
        import psycopg

        dsn = f"host=127.0.0.1 port={postgres.port} user={postgres.user} dbname=postgres"
        with psycopg.connect(dsn) as con:
            loaded = {r[0] for r in con.execute("select account_id from cronofy.free_busy")}
        assert loaded == mine
    finally:
        server.stop()


def test_reshard_is_a_plugin_command_of_the_meltano_project(tmp_path):
    """`meltano invoke tap-cronofy:reshard`, as the README writes it, in this project."""
    states = []
    for n, ids in enumerate([["acc_a", "acc_b"], ["acc_c"]]):
        path = tmp_path / f"shard-{n}.json"
        entry = {"replication_key_value": "2026-12-01T10:00:00Z"}
        path.write_text(
            json.dumps({"bookmarks": {"free_busy": {"accounts": dict.fromkeys(ids, entry)}}})
        )
        states.append(str(path))
    out = tmp_path / "resharded"
    done = subprocess.run(
        [
            str(BIN / "meltano"),
            "invoke",
            "tap-cronofy:reshard",
            *states,
            "--to",
            "3",
            "--out-dir",
            str(out),
        ],
        cwd=ROOT,
        env={**os.environ, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    written = sorted(p.name for p in out.iterdir())
    assert written == ["shard-0.json", "shard-1.json", "shard-2.json"]
    held = [
        a for p in out.iterdir() for a in account_states(json.loads(p.read_text())["singer_state"])
    ]
    assert sorted(held) == ["acc_a", "acc_b", "acc_c"]


def test_without_the_postgres_extra_shared_quota_and_token_store_stop_before_any_request(
    sim, tmp_path
):
    """As the manual says: psycopg missing (a plugin installed without `[postgres]`), a run
    that sets `shared_quota` or `token_store` stops before any request, naming the extra."""
    blocked = tmp_path / "no-psycopg" / "psycopg"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('No module named psycopg')\n")
    env = {**os.environ, "PYTHONPATH": f"{blocked.parent}{os.pathsep}{ROOT}"}
    url = "postgresql://nobody@127.0.0.1:1/none"
    for setting in ("shared_quota", "token_store"):
        config = tap_config(sim, sim.url, **{setting: url})
        if setting == "token_store":
            config.pop("accounts")
        sim.requests.clear()
        run = run_tap(config, streams=["free_busy"], env=env)
        assert run.returncode != 0, setting
        assert "pip install 'tap-cronofy[postgres]'" in run.stderr, (setting, run.stderr[-1500:])
        assert f"`{setting}`" in run.stderr or setting in run.stderr
        assert "Traceback" not in run.stderr, setting
        assert sim.requests == [], f"{setting}: refused before any request"


def test_a_run_on_postgresql_leaves_no_connection_open(sim, postgres):
    """With the shared quota (a connection per worker thread) and the token store, the run
    closes what it opened: no ResourceWarning for an unclosed psycopg connection."""
    url = f"postgresql://{postgres.user}@127.0.0.1:{postgres.port}/postgres"
    config = tap_config(sim, sim.url, shared_quota=url, token_store=url, max_parallel_accounts=4)
    seed_token_store(url, config.pop("accounts"))
    env = {**os.environ, "PYTHONWARNINGS": "always::ResourceWarning", "PYTHONTRACEMALLOC": "1"}
    run = run_tap(config, streams=["free_busy"], env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert {r["account_id"] for r in run.records("free_busy")} == set(sim.accounts)
    assert "ResourceWarning" not in run.stderr, run.stderr[-2000:]
