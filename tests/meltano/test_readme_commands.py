"""Every `meltano` command in the README runs as written (placeholders filled from the
simulator) in a scratch copy of this Meltano project, so the docs cannot rot."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from harness import docs
from harness.project import BIN, free_port
from harness.tap import ROOT, tap_config


def readme_meltano_lines() -> list[str]:
    lines = docs.bash_lines("meltano ")
    # `meltano add` lines install into a new project: tests/meltano/test_plugin_definition.py
    return [line for line in lines if not line.startswith("meltano add ")]


def test_readme_uses_meltano_4_spelling():
    lines = readme_meltano_lines()
    assert len(lines) >= 15
    assert not [line for line in lines if re.match(r"meltano config tap-", line)]


def scratch_project(tmp_path) -> Path:
    """A copy of this Meltano project, with the plugins `make test` installed."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "meltano.yml", project / "meltano.yml")
    (project / ".meltano").mkdir()
    for kind in ("extractors", "loaders"):
        (project / ".meltano" / kind).symlink_to(ROOT / ".meltano" / kind)
    return project


def project_env(tmp_path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("TAP_CRONOFY_")},
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
        "TARGET_DUCKDB_FILEPATH": str(tmp_path / "warehouse.duckdb"),
    }


def test_every_readme_meltano_command_runs(sim, tmp_path, postgres):
    project = scratch_project(tmp_path)
    account = sim.accounts[sorted(sim.accounts)[0]]
    (project / "accounts.json").write_text(json.dumps(sim.tap_config(sim.url)["accounts"]))
    env = {
        **project_env(tmp_path),
        "TAP_CRONOFY_API_URL": sim.url,  # the simulator stands in for data_center us
        "CRONOFY_ACCESS_TOKEN": account.access_token,
        "CRONOFY_REFRESH_TOKEN": account.refresh_token,
        "CRONOFY_CLIENT_ID": sim.client_id,
        "CRONOFY_CLIENT_SECRET": sim.client_secret,
        "CRONOFY_SCHEDULER_SECRET": sim.client_secret,
        "PGHOST": "127.0.0.1",  # the target-postgres lines' server
        "PGPORT": str(postgres.port),
        "PGUSER": postgres.user,
        "PGPASSWORD": "any-value-with-trust",
        "PGDATABASE": "postgres",
        "PRODUCT_DATABASE_URL": f"postgresql://{postgres.user}@127.0.0.1:{postgres.port}/postgres",
    }
    import psycopg

    tracked = sim.tap_config(sim.url)["scheduling_request_ids"][:7]
    with psycopg.connect(env["PRODUCT_DATABASE_URL"]) as con:  # the product's own table
        con.execute("create table interviews (cronofy_id text)")
        for request_id in tracked:
            con.execute("insert into interviews values (%s)", (request_id,))
    for line in readme_meltano_lines():
        result = subprocess.run(
            ["bash", "-c", line], cwd=project, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, f"{line}\n{result.stderr[-3000:]}"
        if line.startswith("meltano invoke tap-cronofy:check"):
            assert result.stdout.splitlines()[-1] == "1 account checked: all ok.", result.stdout
        if line.startswith("meltano config list"):
            assert "access_token" in result.stdout
            assert account.access_token not in result.stdout, "sensitive values are hidden"
    # From a subdirectory, a relative accounts_file (set above, or from the environment) is
    # still the project's: Meltano tells the tap where the project is.
    (project / "extract").mkdir()
    for extra in ({}, {"TAP_CRONOFY_ACCOUNTS_FILE": "accounts.json"}):
        result = subprocess.run(
            ["bash", "-c", "meltano run tap-cronofy target-duckdb"],
            cwd=project / "extract",
            env={**env, **extra},
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        accounts = {
            r[0] for r in con.execute("select account_id from cronofy.free_busy").fetchall()
        }
    assert accounts == set(sim.accounts), "the single account, then every account of the file"
    dsn = f"host=127.0.0.1 port={postgres.port} user={postgres.user} dbname=postgres"
    with psycopg.connect(dsn) as con:
        loaded = {r[0] for r in con.execute("select account_id from cronofy.free_busy")}
    assert loaded, "the target-postgres lines loaded into that server's cronofy schema"


def test_the_simulators_printed_lines_set_up_a_project(tmp_path):
    """`make simulator` prints the lines that point a Meltano project at it: they run as
    printed, and the project then loads the simulator's data."""
    project = scratch_project(tmp_path)
    port = free_port()
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator",
            "--port",
            str(port),
            "--write-accounts",
            str(tmp_path / "sim-accounts.json"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        assert simulator.stdout is not None
        for line in simulator.stdout:
            if line.startswith("meltano "):
                lines.append(line.strip())
            if line.startswith("meltano config test"):
                break
        assert any(f"api_url http://127.0.0.1:{port}" in line for line in lines), lines
        env = project_env(tmp_path)
        for line in [*lines, "meltano run tap-cronofy target-duckdb"]:
            result = subprocess.run(
                ["bash", "-c", line], cwd=project, env=env, capture_output=True, text=True
            )
            assert result.returncode == 0, f"{line}\n{result.stderr[-3000:]}"
    finally:
        simulator.terminate()
        simulator.wait(10)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert (
            con.execute("select count(distinct account_id) from cronofy.free_busy").fetchone()[0]
            == 3
        )
        assert con.execute("select count(*) from cronofy.scheduling_requests").fetchone()[0] == 5


def test_the_plain_cli_section_runs_as_written(sim, tmp_path):
    """The README's plain-CLI block, the install lines aside (the tap from this venv, the
    target from `make test`'s Meltano plugins), with the simulator's settings."""
    text = docs.page("getting-started.md")
    section = text.split("## Without Meltano (plain CLI)", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    script = block[1]
    installs = [line for line in script.splitlines() if "pip install" in line]
    assert len(installs) == 2, installs
    for line in installs:
        script = script.replace(line + "\n", "")
    config = json.dumps({**tap_config(sim, sim.url), "tzid": "Etc/UTC"})
    script = re.sub(r"<<'JSON'\n.*?\nJSON\n", f"<<'JSON'\n{config}\nJSON\n", script, flags=re.S)
    (tmp_path / ".venv").symlink_to(BIN.parent)
    target = ROOT / ".meltano" / "loaders" / "target-jsonl" / "venv"
    (tmp_path / ".target").symlink_to(target)
    sim.advance(60)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("TAP_CRONOFY_")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    first = [json.loads(line) for line in (tmp_path / "first.jsonl").read_text().splitlines()]
    assert any(m["type"] == "RECORD" for m in first)
    assert json.loads((tmp_path / "state.json").read_text())["bookmarks"]["free_busy"]
    written = {path.name.split("-")[0] for path in tmp_path.glob("*-*.jsonl")}
    assert "accounts" in written, "the incremental run reached the target"
    catalog = json.loads((tmp_path / "my-catalog.json").read_text())
    assert {s["tap_stream_id"] for s in catalog["streams"]} >= {"free_busy", "calendars"}


def test_a_reader_that_closes_early_gets_one_line_not_a_traceback(tmp_path):
    from simulator import Simulator, SimulatorServer

    # 1,500 periods: well over a pipe's 64 KiB, so the tap is still writing when head exits
    sim = Simulator(seed=2, accounts=3, events_per_account=500, page_size=500)
    server = SimulatorServer(sim).start()
    (tmp_path / "config.json").write_text(json.dumps(tap_config(sim, server.url)))
    try:
        result = subprocess.run(
            [
                "bash",
                "-c",
                f"{BIN}/tap-cronofy --config config.json | head -n 1 > /dev/null; "
                "echo ${PIPESTATUS[0]} >&2",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
    finally:
        server.stop()
    assert "Traceback" not in result.stderr and "unhandled error" not in result.stderr
    assert "closed it early (broken pipe)" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "1"
