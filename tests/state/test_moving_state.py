"""The manual's "Moving state", run as written: a fleet synced with Meltano's SQLite system
database moves to PostgreSQL and then from one process to 4 shards, and no account is read
whole again; a run that is about to read many accounts whole says what it will cost first."""

from __future__ import annotations

import json
import re
import subprocess

from harness import docs
from simulator import Simulator, SimulatorServer
from tap_cronofy.shard import shard_of
from tests.meltano.test_readme_commands import project_env, scratch_project

ACCOUNTS = 100  # the size at which a run without state warns (report.FIRST_SYNC_WARN_AT)


def blocks() -> list[str]:
    text = docs.page("state.md")
    section = text[text.index("### Moving state") : text.index("### What the warehouse holds")]
    return re.findall(r"```bash\n(.*?)```", section, re.S)


def queries(sim: Simulator) -> list[dict]:
    return [r for r in sim.requests if r["path"] == "/v1/free_busy"]


def test_state_moves_to_postgresql_and_to_shards_as_written_reading_nothing_whole(
    tmp_path, postgres
):
    sim = Simulator(seed=5, accounts=ACCOUNTS, events_per_account=2, page_size=50)
    server = SimulatorServer(sim).start()
    try:
        project = scratch_project(tmp_path)
        settings = sim.tap_config(server.url)
        settings.pop("scheduling_request_ids")
        env = {
            **project_env(tmp_path),
            "TAP_CRONOFY_API_URL": server.url,
            "TAP_CRONOFY_REQUESTS_PER_MINUTE": "10000",
            "TAP_CRONOFY_REQUESTS_PER_SECOND": "1000",
            "TAP_CRONOFY_CLIENT_ID": settings["client_id"],
            "TAP_CRONOFY_CLIENT_SECRET": settings["client_secret"],
            "TAP_CRONOFY_ACCOUNTS_FILE": str(tmp_path / "accounts.json"),
        }
        (tmp_path / "accounts.json").write_text(json.dumps(settings["accounts"]))

        def sh(script: str, **extra: str) -> subprocess.CompletedProcess:
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                cwd=project,
                env={**env, **extra},
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, f"{script}\n{done.stderr[-3000:]}"
            return done

        first = sh("meltano run tap-cronofy target-duckdb")
        assert f"{ACCOUNTS:,} of {ACCOUNTS:,} accounts have no state" in first.stderr
        assert "at least 300 requests" in first.stderr, "said before it is spent"

        database = f"postgresql+psycopg://{postgres.user}@127.0.0.1:{postgres.port}/postgres"
        move, split = blocks()
        assert "postgresql+psycopg://meltano@db/meltano" in move
        sh(move.replace("postgresql+psycopg://meltano@db/meltano", database))
        sim.requests.clear()
        moved = sh("meltano run tap-cronofy target-duckdb", MELTANO_DATABASE_URI=database)
        assert "have no state" not in moved.stderr
        assert len(queries(sim)) == ACCOUNTS
        assert all("last_modified" in q["params"] for q in queries(sim)), "all incremental"

        sh(split, MELTANO_DATABASE_URI=database)
        sim.requests.clear()
        served = set()
        for n in range(4):
            shard = sh(
                "meltano run tap-cronofy target-duckdb",
                MELTANO_DATABASE_URI=database,
                TAP_CRONOFY_SHARD=f"{n}/4",
                MELTANO_RUN_STATE_ID_SUFFIX=f"shard-{n}",
            )
            assert "have no state" not in shard.stderr
        served = {q["account_id"] for q in queries(sim)}
        assert served == set(sim.accounts) and len(queries(sim)) == ACCOUNTS
        assert all("last_modified" in q["params"] for q in queries(sim)), "no account whole"
        assert {shard_of(a, 4) for a in served} == {0, 1, 2, 3}
    finally:
        server.stop()
