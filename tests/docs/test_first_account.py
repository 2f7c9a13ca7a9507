"""The manual's "Your first real account, end to end", run as written against the
simulator (its authorization page and code exchange stand in for Cronofy's): authorise,
exchange the code with the manual's curl, configure, check, run."""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
import urllib.error
import urllib.parse
import urllib.request

import pytest

from harness import docs
from tests.meltano.test_readme_commands import project_env, scratch_project


def section() -> str:
    text = docs.page("getting-started.md")
    start = text.index("## Your first real account, end to end")
    return text[start : text.index("\n## ", start + 1)]


def block(kind: str, containing: str) -> str:
    found = [
        textwrap.dedent(b)
        for b in re.findall(rf"```{kind}\n(.*?)```", section(), re.S)
        if containing in b
    ]
    assert len(found) == 1, (kind, containing)
    return found[0].strip()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # the browser would follow it: we read it
        return None


def authorise(sim) -> str:
    """The manual's authorization URL, opened as the account's owner would (the simulator
    consents at once): the code it redirects with."""
    url = block("text", "/oauth/authorize").replace("https://app.cronofy.com", sim.url)
    url = url.replace("CLIENT_ID", sim.client_id)
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirected:
        opener.open(url)
    assert redirected.value.code == 302
    location = urllib.parse.urlsplit(redirected.value.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://your.app/callback"
    query = urllib.parse.parse_qs(location.query)
    assert query["state"] == ["anything"]
    return query["code"][0]


def test_the_first_real_account_end_to_end_as_the_readme_says(sim, tmp_path):
    code = authorise(sim)
    curl = block("bash", "grant_type")
    for placeholder, value in (
        ("https://api.cronofy.com", sim.url),
        ("CLIENT_ID", sim.client_id),
        ("CLIENT_SECRET", sim.client_secret),
        ("CODE", code),
    ):
        curl = curl.replace(placeholder, value)
    exchanged = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, check=True)
    tokens = json.loads(exchanged.stdout)
    account_id = tokens["account_id"]
    assert tokens["sub"] == account_id and account_id in sim.accounts
    assert tokens["scope"] == "read_free_busy"
    # the code is spent: a second exchange is refused
    again = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, check=True)
    assert json.loads(again.stdout) == {"error": "invalid_grant"}

    project = scratch_project(tmp_path)
    env = project_env(tmp_path)

    def meltano(line: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            ["bash", "-c", line], cwd=project, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return done

    for name, value in (
        ("api_url", sim.url),  # the simulator stands in for data_center us
        ("access_token", tokens["access_token"]),
        ("refresh_token", tokens["refresh_token"]),
        ("client_id", sim.client_id),
        ("client_secret", sim.client_secret),
    ):
        meltano(f"meltano config set tap-cronofy {name} '{value}'")
    sim.requests.clear()
    checked = meltano(block("bash", "tap-cronofy:check"))
    assert checked.stdout.splitlines()[-1] == "1 account checked: all ok."
    assert re.search(rf"^{account_id}\s+yes\s+ok: token refreshed$", checked.stdout, re.M)
    paths = [r["path"] for r in sim.requests]
    assert sorted(paths) == ["/oauth/token", "/v1/userinfo"], "a lone token: its userinfo too"
    meltano("meltano run tap-cronofy target-duckdb")
    import duckdb

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        loaded = con.execute("select distinct account_id from cronofy.free_busy").fetchall()
    assert loaded == [(account_id,)]
