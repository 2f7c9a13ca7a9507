"""The manual's "Rehearse with the simulator" block, run as written against a simulator: each
curl line changes what the simulator holds as its comment says."""

from __future__ import annotations

import json
import re
import subprocess

from harness import docs


def rehearsal_block() -> str:
    text = docs.page("getting-started.md")
    section = text[text.index("## Rehearse with the simulator") :]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def test_the_rehearsal_commands_change_the_simulator_as_written(sim):
    account_id = sorted(sim.accounts)[0]
    account = sim.accounts[account_id]
    events, calendars, now = len(account.events), list(account.calendars), sim.now()
    script = rehearsal_block().replace("http://127.0.0.1:8765", sim.url)
    script = script.replace("<an account id>", account_id)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    listed, _ = json.JSONDecoder().raw_decode(result.stdout)  # the first answer, the accounts
    assert {entry["account_id"] for entry in listed} == set(sim.accounts)
    assert len(account.events) == events + 20
    assert sim.now() - now >= 86400
    added = [c for c in account.calendars if c not in calendars]
    assert [account.calendar_names.get(c) for c in added] == ["Travel"], added
