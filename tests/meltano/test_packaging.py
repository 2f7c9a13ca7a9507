"""The wheel is what users install: it must hold the whole package and run outside the repo."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from harness.tap import ROOT


def test_wheel_installs_and_runs_about_outside_the_repository(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("tap_cronofy-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "tap-cronofy = tap_cronofy.tap:TapCronofy.cli" in archive.read(entry_points).decode()
    assert "tap_cronofy/streams/free_busy.py" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert not any(n.startswith(("simulator/", "tests/")) for n in names), "tap only"
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import tap_cronofy; print(tap_cronofy.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(site)), "the installed wheel, not the working tree"
    about = subprocess.run(
        [sys.executable, "-m", "tap_cronofy", "--about"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert about.returncode == 0, about.stderr
    assert "free_busy" in about.stdout or "scheduler_client_secret" in about.stdout


def test_secrets_and_outputs_beside_the_project_are_ignored_by_git():
    """Where Meltano and the README's commands put secrets and outputs: one `git add -A`
    must not publish them. The example file and the repository's catalog stay tracked."""
    ignored = [
        ".env",
        ".env.local",
        "config.json",
        "state.json",
        "accounts.json",
        "accounts.yaml",
        "out.jsonl",
        "extract/first.jsonl",
        "dist/x.whl",
    ]
    kept = [".env.example", "catalog.json", "meltano.yml"]
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "-v", *ignored, *kept],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    matched = {  # -v also lists the paths a "!pattern" re-includes
        path
        for pattern, path in (line.split("\t", 1) for line in result.stdout.splitlines())
        if not pattern.split(":", 2)[2].startswith("!")
    }
    assert matched == set(ignored), result.stdout
    assert (ROOT / ".env.example").read_text().count("TAP_CRONOFY_") >= 5


def test_pre_commit_runs_the_checks_make_test_runs():
    import yaml

    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    entries = {hook["entry"] for repo in config["repos"] for hook in repo["hooks"]}
    makefile = (ROOT / "Makefile").read_text()
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    for command in ("ruff check", "ruff format --check", "mypy"):
        assert f"$(BIN)/{command}" in test_recipe
        assert f".venv/bin/{command}" in entries, command


def test_the_package_declares_the_pythons_it_supports():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.10"' in text
    for minor in (10, 11, 12, 13):
        assert f'"Programming Language :: Python :: 3.{minor}"' in text
    assert "requires_meltano:" in (ROOT / "meltano.yml").read_text()


def test_make_demo_installs_only_the_plugins_the_demo_runs():
    import re

    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\n$(DEMO_PLUGINS):", 1)[1].split("\n\n", 1)[0]
    installed = set(recipe.split("meltano install", 1)[1].split("\n", 1)[0].split())
    demo = (ROOT / "demo" / "run_demo.py").read_text()
    used = set()
    for args in re.findall(r'meltano\("(?:run|invoke)", ([^)]*)\)', demo):
        used |= {name.split(":")[0] for name in re.findall(r'"([a-z][\w-]+(?::\w+)?)"', args)}
    assert installed == used == {"tap-cronofy", "target-duckdb", "dbt-duckdb"}
    assert re.search(r"^demo: \$\(READY\) \$\(DEMO_PLUGINS\)$", makefile, re.M)


def test_the_version_comes_from_git():
    """setuptools-scm: a tag vX.Y.Z is version X.Y.Z; other commits are X.Y.devN+g<commit>."""
    import importlib.metadata
    import re

    text = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in text and "setuptools-scm" in text
    assert not re.search(r'^version = "', text, re.M), "no static version beside it"
    version = importlib.metadata.version("tap-cronofy")
    commit = subprocess.run(
        ["git", "rev-parse", "--short=7", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    tagged = (
        subprocess.run(
            ["git", "describe", "--tags", "--exact-match"], cwd=ROOT, capture_output=True
        ).returncode
        == 0
    )
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+\+g[0-9a-f]+(\.d\d{8})?)?", version), version
    assert tagged or commit[:7] in version or ".dev" in version, (version, commit)


def test_the_receiver_without_the_push_extra_names_it_and_the_rest_runs(tmp_path):
    """falcon and waitress are the `push` extra's: without them, `receive` says so in one
    line, and the tap and `channels` do not need them."""
    import json
    import subprocess
    import sys

    from harness.tap import ROOT

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"client_secret": "cs-1", "change_log": str(tmp_path / "c.db")}))
    blocked = "import sys; sys.modules['falcon'] = None; sys.modules['waitress'] = None; "
    receive = subprocess.run(
        [
            sys.executable,
            "-c",
            blocked + "from tap_cronofy.push.cli import main; sys.argv = ['tap-cronofy-push', "
            f"'receive', '--port', '0', '--config', {str(config)!r}]; main()",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert receive.returncode == 1
    assert "needs the `push` extra" in receive.stderr
    assert "pip install 'tap-cronofy[push]'" in receive.stderr
    assert "Traceback" not in receive.stderr
    core = subprocess.run(
        [sys.executable, "-c", blocked + "import tap_cronofy.tap, tap_cronofy.push.channels"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert core.returncode == 0, core.stderr
