"""The plugin definition Meltano users install from (`meltano add extractor tap-cronofy
--from-ref`): generated from meltano.yml, and installable into a brand-new project."""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import shutil
import subprocess
import threading
import types

import duckdb
import yaml

from harness import docs
from harness.project import BIN
from harness.tap import ROOT, tap_config


def generator() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("generate", ROOT / "meltano-hub" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_definition_is_fresh_and_equals_meltano_yml():
    module = generator()
    shipped = (ROOT / "meltano-hub" / "tap-cronofy.yml").read_text()
    assert shipped == module.render(), "run `python meltano-hub/generate.py`"
    for name in module.LOADERS:
        assert module.path_of(name).read_text() == module.render(name), name
    definition = yaml.safe_load(shipped)
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    block = next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-cronofy")
    for key in ("namespace", "executable", "capabilities", "settings_group_validation", "settings"):
        assert definition[key] == block[key], key
    assert definition["pip_url"] == "git+https://github.com/tap-cronofy/tap-cronofy.git"


README_REF = "https://raw.githubusercontent.com/tap-cronofy/tap-cronofy/main/"


def readme_add_lines() -> list[str]:
    return docs.bash_lines("meltano add ")


def test_the_readmes_meltano_add_lines_install_into_a_new_project_that_runs(sim, tmp_path):
    """In a fresh `meltano init` project: the README's `meltano add` line (the raw URL served
    from 127.0.0.1, as GitHub cannot be reached here, and `pip_url` pointed at this checkout
    for the same reason), then the simulator's settings and a `meltano run`."""
    lines = readme_add_lines()
    assert lines and all(README_REF in line for line in lines), lines
    served = tmp_path / "served" / "meltano-hub"
    shutil.copytree(ROOT / "meltano-hub" / "loaders", served / "loaders")
    definition = yaml.safe_load((ROOT / "meltano-hub" / "tap-cronofy.yml").read_text())
    definition["pip_url"] = str(ROOT)
    (served / "tap-cronofy.yml").write_text(yaml.safe_dump(definition, sort_keys=False))
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "served")
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TAP_CRONOFY_", "MELTANO_"))},
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    try:

        def meltano(line: str, cwd=tmp_path / "project") -> subprocess.CompletedProcess:
            result = subprocess.run(
                ["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True
            )
            assert result.returncode == 0, (
                f"{line}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
            )
            return result

        meltano("meltano init project --no-usage-stats", cwd=tmp_path)
        local = f"http://127.0.0.1:{server.server_address[1]}/"
        for line in lines:
            meltano(line.replace(README_REF, local))
        # Meltano 4 reads a positional `extractor` as a plugin name: exactly one tap-cronofy,
        # an extractor, and nothing else added
        project = yaml.safe_load((tmp_path / "project" / "meltano.yml").read_text())
        added = [
            (kind, p["name"])
            for kind, plugins in (project.get("plugins") or {}).items()
            for p in plugins
        ]
        # the loader from this repository's definition (Meltano Hub is not reachable here),
        # installed from PyPI by `meltano add`
        assert added == [
            ("extractors", "tap-cronofy"),
            ("loaders", "target-duckdb"),
            ("loaders", "target-jsonl"),
        ], added
        config = tap_config(sim, sim.url)
        (tmp_path / "project" / "accounts.json").write_text(json.dumps(config["accounts"]))
        for name, value in (
            ("api_url", sim.url),
            ("client_id", config["client_id"]),
            ("client_secret", config["client_secret"]),
            ("accounts_file", "accounts.json"),
        ):
            meltano(f"meltano config set tap-cronofy {name} '{value}'")
        meltano("meltano config set target-jsonl destination_path out")
        meltano("meltano config set target-jsonl do_timestamp_file false")
        (tmp_path / "project" / "out").mkdir()
        meltano("meltano config test tap-cronofy")
        meltano("meltano run tap-cronofy target-jsonl")
        # then the README's loader settings and hourly job, as written, in this new project
        readme = docs.page("README.md")
        for heading in ("Point the loader at a file", "## Run it hourly"):
            section = readme[readme.index(heading) :]
            block = section[section.index("```bash\n") + 8 : section.index("```\n", 10)]
            for line in block.splitlines():
                meltano(line)
                if line.startswith("meltano schedule add"):
                    listed = meltano("meltano schedule list").stdout
                    assert "cronofy-hourly" in listed and "@hourly" in listed, listed
    finally:
        server.shutdown()
    rows = (tmp_path / "project" / "out" / "free_busy.jsonl").read_text().splitlines()
    assert {json.loads(row)["account_id"] for row in rows} == set(sim.accounts)
    added = yaml.safe_load((tmp_path / "project" / "meltano.yml").read_text())
    extractor = added["plugins"]["extractors"][0]
    assert added["jobs"] == [{"name": "cronofy-hourly", "tasks": ["tap-cronofy target-duckdb"]}]
    with duckdb.connect(str(tmp_path / "project" / "warehouse.duckdb"), read_only=True) as con:
        loaded = con.execute("select distinct account_id from cronofy.free_busy").fetchall()
    assert {row[0] for row in loaded} == set(sim.accounts), "the job loaded every account"
    assert extractor["name"] == "tap-cronofy" and extractor["settings_group_validation"]
