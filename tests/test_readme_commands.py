"""Every `meltano` command in the README runs as written (placeholders filled from the
simulator) in a scratch copy of this Meltano project, so the docs cannot rot."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import duckdb

from demo.project import BIN
from tests.helpers import ROOT


def readme_meltano_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        lines.extend(line.strip() for line in block.splitlines() if line.startswith("meltano "))
    return lines


def test_readme_uses_meltano_4_spelling():
    lines = readme_meltano_lines()
    assert len(lines) >= 15
    assert not [line for line in lines if re.match(r"meltano config tap-", line)]


def test_every_readme_meltano_command_runs(sim, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "meltano.yml", project / "meltano.yml")
    (project / ".meltano").mkdir()
    for kind in ("extractors", "loaders"):  # the plugins `make test` installed
        (project / ".meltano" / kind).symlink_to(ROOT / ".meltano" / kind)
    account = sim.accounts[sorted(sim.accounts)[0]]
    (project / "accounts.json").write_text(json.dumps(sim.tap_config(sim.url)["accounts"]))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TAP_CRONOFY_")},
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
        "TARGET_DUCKDB_FILEPATH": str(tmp_path / "warehouse.duckdb"),
        "TAP_CRONOFY_API_URL": sim.url,  # the simulator stands in for data_center us
        "CRONOFY_ACCESS_TOKEN": account.access_token,
        "CRONOFY_REFRESH_TOKEN": account.refresh_token,
        "CRONOFY_CLIENT_ID": sim.client_id,
        "CRONOFY_CLIENT_SECRET": sim.client_secret,
        "CRONOFY_SCHEDULER_SECRET": sim.client_secret,
    }
    for line in readme_meltano_lines():
        result = subprocess.run(
            ["bash", "-c", line], cwd=project, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, f"{line}\n{result.stderr[-3000:]}"
        if line.startswith("meltano config list"):
            assert "access_token" in result.stdout
            assert account.access_token not in result.stdout, "sensitive values are hidden"
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        accounts = {
            r[0] for r in con.execute("select account_id from cronofy.free_busy").fetchall()
        }
    assert accounts == set(sim.accounts), "the single account, then every account of the file"
