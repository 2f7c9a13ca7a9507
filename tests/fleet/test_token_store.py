"""One token store under the processes users run side by side (two shards, an unsharded run,
`check` and `channels`), Cronofy rotating refresh tokens and access tokens expiring between
rounds: after every round each account holds the one refresh token Cronofy still accepts, and
no process met `invalid_grant`. The accounts file and the PostgreSQL table alike."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.postgres import seed_token_store
from harness.tap import ROOT, run_tap, select_streams, tap_config
from simulator import Simulator, SimulatorServer

ACCOUNTS = 12
ROUNDS = 3


def store_tokens(kind: str, config: dict, path) -> dict[str, tuple[str, str]]:
    if kind == "file":
        entries = json.loads(path.read_text())
        return {e["account_id"]: (e["access_token"], e["refresh_token"]) for e in entries}
    import psycopg

    with psycopg.connect(config["token_store"]) as pg:
        rows = pg.execute("SELECT account_id, access_token, refresh_token FROM cronofy_tokens")
        return {a: (at, rt) for a, at, rt in rows.fetchall()}


def commands(tmp, config: dict) -> list[tuple[str, list[str]]]:
    """Each process of the fleet, as users start it, with its own config file."""
    catalog = tmp / "catalog.json"
    catalog.write_text(json.dumps(select_streams(["free_busy", "calendars", "accounts"])))
    run = ["-m", "tap_cronofy", "--catalog", str(catalog)]
    jobs = [
        ("shard-0-of-2", {"shard": "0/2"}, run),
        ("shard-1-of-2", {"shard": "1/2"}, run),
        ("hourly-run", {}, run),
        ("check", {}, ["-m", "tap_cronofy.check"]),
        ("channels", {}, ["-m", "tap_cronofy.push", "channels"]),
    ]
    made = []
    for name, extra, args in jobs:
        path = tmp / f"config-{name}.json"
        path.write_text(json.dumps({**config, **extra}))
        made.append((name, [sys.executable, *args, "--config", str(path)]))
    return made


@pytest.fixture(params=["file", "postgres"])
def fleet(request, tmp_path):
    sim = Simulator(seed=31, accounts=ACCOUNTS, events_per_account=8, page_size=50)
    sim.rotate_refresh_tokens = True  # the old refresh token is refused once a new one exists
    sim.token_lifetime = 600
    server = SimulatorServer(sim).start()
    config = tap_config(
        sim,
        server.url,
        change_log=str(tmp_path / "changes.db"),
        notification_url="https://receiver.example/cronofy/notifications",
    )
    entries = config.pop("accounts")
    path = tmp_path / "accounts.json"
    if request.param == "file":
        path.write_text(json.dumps(entries, indent=2))
        config["accounts_file"] = str(path)
    else:
        postgres = request.getfixturevalue("postgres")
        config["token_store"] = postgres.url
        seed_token_store(postgres.url, entries)
    yield request.param, sim, config, path
    server.stop()


def test_every_process_side_by_side_keeps_every_account_valid(fleet, tmp_path):
    kind, sim, config, path = fleet
    jobs = commands(tmp_path, config)
    for round_ in range(ROUNDS):
        sim.advance(sim.token_lifetime + 60)  # every access token has expired
        running = [
            (name, subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
            for name, cmd in jobs
        ]
        for name, process in running:
            _, err = process.communicate(timeout=180)
            text = err.decode()
            assert process.returncode == 0, f"round {round_}, {name}: {text[-3000:]}"
            assert "invalid_grant" not in text and "re-authorised" not in text, (round_, name)
        tokens = store_tokens(kind, config, path)
        for account_id, account in sim.accounts.items():
            assert tokens[account_id][1] == account.refresh_token, (round_, account_id)
        refreshes = [r for r in sim.requests if r["path"] == "/oauth/token"]
        # One refresh per account per round: the others reused the token the store had.
        assert len(refreshes) == ACCOUNTS, (round_, len(refreshes))
        sim.requests.clear()


def test_a_product_owned_table_is_read_never_refreshed_and_a_401_reads_it_again(postgres, tmp_path):
    """The product keeps the tokens in its own table (its own column names, no refresh
    token): the tap reads them, never refreshes, and a token the product let go stale fails
    the account with what to check; once the product has refreshed, the next run is served."""
    import psycopg

    sim = Simulator(seed=33, accounts=3, events_per_account=5, page_size=50)
    server = SimulatorServer(sim).start()
    try:
        with psycopg.connect(postgres.url) as pg:
            pg.execute("CREATE TABLE product_tokens (sub TEXT PRIMARY KEY, bearer TEXT)")
            for account in sim.accounts.values():
                pg.execute(
                    "INSERT INTO product_tokens VALUES (%s, %s)",
                    (account.account_id, account.access_token),
                )
        config = tap_config(sim, server.url)
        del config["accounts"]
        config |= {
            "token_store": postgres.url,
            "token_store_table": "product_tokens",
            "token_store_columns": {
                "account_id": "sub",
                "access_token": "bearer",
                "refresh_token": "",
                "expires_at": "",
            },
            "token_owner": "product",
        }
        first = run_tap(config, streams=["free_busy"])
        assert first.returncode == 0, first.stderr[-2000:]
        assert {r["account_id"] for r in first.records()} == set(sim.accounts)
        stale = sorted(sim.accounts)[0]
        sim.expire_access_token(stale)  # the product has not refreshed it yet
        sim.requests.clear()
        second = run_tap(config, first.state, streams=["free_busy"])
        assert second.returncode == 1 and f"FAILED account {stale}" in second.stderr
        assert "kept by your product" in second.stderr
        assert [r for r in sim.requests if r["path"] == "/oauth/token"] == [], "never refreshes"
        fresh = sim.refresh(  # the product refreshes, and updates its table
            {
                "grant_type": "refresh_token",
                "client_id": sim.client_id,
                "client_secret": sim.client_secret,
                "refresh_token": sim.accounts[stale].refresh_token,
            }
        )["access_token"]
        with psycopg.connect(postgres.url) as pg:
            pg.execute("UPDATE product_tokens SET bearer = %s WHERE sub = %s", (fresh, stale))
        third = run_tap(config, second.state, streams=["free_busy"])
        assert third.returncode == 0, third.stderr[-2000:]
        with psycopg.connect(postgres.url) as pg:
            (count,) = pg.execute("SELECT count(*) FROM product_tokens").fetchone()
            tables = pg.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'cronofy_tokens'"
            ).fetchone()
        assert count == 3 and tables == (0,), "the product's table only read, nothing created"
    finally:
        server.stop()
