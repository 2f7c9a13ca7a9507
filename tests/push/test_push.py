"""Change-driven sync end to end: the simulator posts signed notifications to the real
receiver (waitress on 127.0.0.1), `tap-cronofy-push channels` opens the channels, and the
tap, run as a process, queries only what changed. Requests are counted at the simulator."""

from __future__ import annotations

import collections
import datetime as dt
import json
import math
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import waitress

from harness.tap import (
    ROOT,
    account_states,
    costs,
    own_meltano_dir,
    request_owner,
    run_tap,
    start_receiver,
    tap_config,
)
from simulator import Simulator, SimulatorServer
from tap_cronofy.changelog import ChangeLog
from tap_cronofy.push.receiver import make_app, serve
from tap_cronofy.push.signature import HEADER, sign

STREAMS = ["free_busy", "accounts"]


class Push:
    """A simulator, a receiver writing a SQLite change log, and the tap's config for both."""

    def __init__(
        self, tmp: Path, accounts: int = 4, log_target: str | None = None, **sim: int
    ) -> None:
        options = {"seed": 5, "events_per_account": 20, "page_size": 50, **sim}
        self.sim = Simulator(accounts=accounts, **options)
        self.api = SimulatorServer(self.sim).start()
        self.tmp = tmp
        self.log_target = log_target or str(tmp / "changes.db")
        self.log = ChangeLog(self.log_target)
        app, self.received = make_app(self.log, [self.sim.client_secret])
        self.receiver = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
        threading.Thread(target=serve, args=(self.receiver,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.receiver.effective_port}/cronofy/notifications"
        self.config = tap_config(
            self.sim, self.api.url, change_log=self.log_target, notification_url=self.url
        )
        self.ids = sorted(self.sim.accounts)

    def stop(self) -> None:
        self.receiver.close()
        self.api.stop()

    def channels(self) -> subprocess.CompletedProcess:
        path = self.tmp / "push-config.json"
        path.write_text(json.dumps(self.config))
        return subprocess.run(
            [sys.executable, "-m", "tap_cronofy.push", "channels", "--config", str(path)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            check=False,
        )

    def flush(self) -> None:
        assert self.sim.notifier.flush(timeout=60), "notifications still waiting"

    def costs(self) -> dict[str | None, collections.Counter]:
        """Requests since the last call, by account and path (pages count as free_busy)."""
        return costs(self.sim)

    def change(self, account_id: str, status: str = "tentative") -> str:
        """Modify one of the account's own (not managed) events inside the window."""
        now = self.sim.now_dt()
        event = next(
            e
            for e in sorted(self.sim.events_of(account_id), key=lambda e: e.event_uid)
            if not e.managed
            and not e.deleted
            and now - dt.timedelta(days=30) < e.bounds(dt.timezone.utc)[0]
            and e.bounds(dt.timezone.utc)[1] < now + dt.timedelta(days=150)
        )
        self.sim.advance(30)
        self.sim.modify_event(account_id, event.event_uid, status=status)
        return event.event_uid


@pytest.fixture
def push(tmp_path):
    setup = Push(tmp_path)
    yield setup
    setup.stop()


def first_sync(push: Push) -> dict:
    provisioned = push.channels()
    assert provisioned.returncode == 0, provisioned.stderr[-2000:]
    push.flush()
    first = run_tap(push.config, streams=STREAMS)
    assert first.returncode == 0, first.stderr[-3000:]
    push.costs()
    return first.state


def queried(run) -> list[str]:
    return re.findall(r"Account (\S+) \(([^)]*\)?)\): ", run.stderr)


def test_channels_are_one_per_account_and_provisioning_is_idempotent(push):
    sim, url = push.sim, push.url
    made = push.channels()
    assert made.returncode == 0, made.stderr[-2000:]
    assert "Channels: 0 kept, 4 created, 0 recreated" in made.stderr
    for account_id in push.ids:
        (channel,) = sim.accounts[account_id].channels.values()
        assert channel["callback_url"] == url
        assert push.log.account_of(channel["channel_id"]) == account_id
    costs = push.costs()
    # token, whose token it is (userinfo), list, create: per account, nothing shared
    for account_id in push.ids:
        assert costs[account_id] == {
            "/oauth/token": 1,
            "/v1/userinfo": 1,
            "/v1/channels": 2,
        }, account_id
    push.flush()
    assert push.received.counts.get("verification") == 4

    again = push.channels()
    assert "Channels: 4 kept, 0 created, 0 recreated (closed since), 0 moved" in again.stderr
    assert all(len(sim.accounts[a].channels) == 1 for a in push.ids)

    # A duplicate to our URL, the product's own channel, and a channel closed since.
    a, b, c = push.ids[:3]
    token_a, token_b = sim.accounts[a].access_token, sim.accounts[b].access_token
    sim.create_channel(token_a, {"callback_url": url})
    sim.create_channel(token_a, {"callback_url": "https://product.example/hooks"})
    sim.close_channel(token_b, next(iter(sim.accounts[b].channels)))
    third = push.channels()
    assert third.returncode == 0
    assert (
        "Channels: 3 kept, 0 created, 1 recreated (closed since), 0 moved from an earlier "
        "notification_url (the old one closed), 1 duplicate(s) closed, 1 channel to other "
        "URLs left alone, 0 failed accounts."
    ) in third.stderr
    urls = sorted(ch["callback_url"] for ch in sim.accounts[a].channels.values())
    assert urls == sorted(["https://product.example/hooks", url])
    assert len(sim.accounts[b].channels) == 1 and len(sim.accounts[c].channels) == 1
    channels = push.log.channels()
    assert sorted(channels.values()) == push.ids  # one filed channel per account
    for channel_id, account_id in channels.items():
        assert channel_id in sim.accounts[account_id].channels


def test_channels_re_pointed_to_a_new_url_move_and_close_the_old_ones(push):
    """notification_url changed: each account's channel to the old URL (filed in the log,
    so ours) is closed and one opened to the new; the product's own channels stay."""
    sim = push.sim
    assert push.channels().returncode == 0
    product = sim.create_channel(
        sim.accounts[push.ids[0]].access_token, {"callback_url": "https://product.example/h"}
    )
    old = push.url
    push.config["notification_url"] = push.url = old.replace("/notifications", "/v2")
    # the new channel cannot be opened: the old ones stay open and filed, none is lost
    sim.add_fault(status=500, times=40, path="/v1/channels", method="POST")
    failed = push.channels()
    assert failed.returncode != 0
    for account_id in push.ids:
        urls = [c["callback_url"] for c in sim.accounts[account_id].channels.values()]
        assert old in urls, account_id
    assert sorted(push.log.channels().values()) == push.ids
    sim.faults.clear()
    moved = push.channels()
    assert moved.returncode == 0, moved.stderr[-2000:]
    assert (
        "Channels: 0 kept, 0 created, 0 recreated (closed since), 4 moved from an earlier "
        "notification_url (the old one closed), 0 duplicate(s) closed, 1 channel to other "
        "URLs left alone, 0 failed accounts."
    ) in moved.stderr
    for account_id in push.ids:
        urls = sorted(c["callback_url"] for c in sim.accounts[account_id].channels.values())
        expected = [push.url] + (["https://product.example/h"] if account_id == push.ids[0] else [])
        assert urls == sorted(expected), account_id
    assert product["channel"]["channel_id"] in sim.accounts[push.ids[0]].channels
    filed = push.log.channels()
    assert sorted(filed.values()) == push.ids
    assert all(sim.accounts[a].channels[c]["callback_url"] == push.url for c, a in filed.items())


def test_the_simulator_never_posts_beyond_this_machine(push, monkeypatch):
    import urllib.request as request_module

    opened: list[str] = []
    monkeypatch.setattr(request_module, "urlopen", lambda r, **kw: opened.append(r.full_url))
    account = push.sim.accounts[push.ids[0]]
    push.sim.create_channel(account.access_token, {"callback_url": "https://hooks.example.com/x"})
    push.flush()
    assert opened == []
    assert (push.sim.notifier.stats.sent, push.sim.notifier.stats.given_up) == (0, 1)


def test_a_token_of_another_account_gets_no_channel(push):
    sim = push.sim
    a, b = push.ids[:2]
    entries = {e["account_id"]: e for e in push.config["accounts"]}
    entries[a]["access_token"], entries[b]["access_token"] = (
        entries[b]["access_token"],
        entries[a]["access_token"],
    )
    entries[a]["refresh_token"], entries[b]["refresh_token"] = (
        entries[b]["refresh_token"],
        entries[a]["refresh_token"],
    )
    made = push.channels()
    assert made.returncode == 1
    assert "2 failed accounts" in made.stderr and f"belongs to {b}" in made.stderr
    assert not sim.accounts[a].channels and not sim.accounts[b].channels
    assert sorted(push.log.channels().values()) == push.ids[2:]


def test_provisioning_runs_accounts_in_parallel_workers(push):
    """While one account's identity lookup is held up, the other accounts go on (with
    max_parallel_accounts 1 they would wait behind it)."""
    slow = push.ids[0]
    push.sim.add_fault(kind="delay", seconds=2, path="/v1/userinfo", account_id=slow)
    made = push.channels()
    assert made.returncode == 0, made.stderr[-2000:]
    owners = [request_owner(push.sim, r) for r in push.sim.requests]
    held = owners.index(slow, owners.index(slow) + 1)  # after its token: the userinfo
    after = owners.index(slow, held + 1)  # its next request, once the userinfo answered
    assert set(owners[held + 1 : after]) - {slow}, "no other account went on meanwhile"


def test_provisioning_keeps_to_the_request_budget_and_the_next_run_finishes(push):
    push.config["max_requests_per_run"] = 9  # two accounts' 4 requests, not a third's
    cut = push.channels()
    assert cut.returncode == 0, cut.stderr[-2000:]
    summary = re.search(r"Channels: .*", cut.stderr)[0]  # type: ignore[index]
    assert "0 kept, 2 created" in summary
    assert "2 accounts left for the next run by max_requests_per_run" in summary
    assert sum(bool(a.channels) for a in push.sim.accounts.values()) == 2
    assert sum(push.costs().get(a, collections.Counter()).total() for a in push.ids) <= 9
    del push.config["max_requests_per_run"]
    rest = push.channels()
    assert "Channels: 2 kept, 2 created" in rest.stderr
    assert all(len(a.channels) == 1 for a in push.sim.accounts.values())


def test_unchanged_accounts_cost_nothing_and_a_change_costs_its_query(push):
    state = first_sync(push)
    quiet = run_tap(push.config, state, streams=STREAMS)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert push.costs() == {None: {"/": 1}}  # Cronofy's clock, read once per run
    assert quiet.records() == []
    assert "Change-driven: 0 accounts of 4 queried" in quiet.stderr

    a, b = push.ids[:2]
    changed = push.change(b)
    managed = next(e for e in push.sim.events_of(a) if e.managed and not e.deleted)
    push.sim.modify_event(a, managed.event_uid, status="free")  # the application's own
    push.flush()
    run = run_tap(push.config, quiet.state, streams=STREAMS)
    assert run.returncode == 0, run.stderr[-2000:]
    assert push.costs() == {None: {"/": 1}, b: {"/oauth/token": 1, "/v1/free_busy": 1}}
    assert queried(run) == [(b, "notified (change)")]
    records = run.records("free_busy")
    assert [(r["account_id"], r["event_uid"]) for r in records if r["event_uid"] == changed] == [
        (b, changed)
    ]
    assert {r["account_id"] for r in run.records("accounts")} == {b}
    assert "change-driven: 1 account queried (1 notified), 3 unchanged with no request" in (
        run.stderr
    )
    positions = {a_: s["notified"] for a_, s in account_states(run.state).items()}
    assert positions[b] == push.log.position() and positions[a] < positions[b]


def test_a_thousand_duplicate_notifications_cost_one_query(push):
    state = first_sync(push)
    b = push.ids[1]
    push.sim.notifier.knobs.duplicates = 999
    push.change(b)
    push.flush()
    # one recorded; the 999 duplicates (same body) acknowledged and recorded no more
    assert push.received.counts["change"] == 1 and push.received.counts["duplicate"] >= 999
    run = run_tap(push.config, state, streams=STREAMS)
    assert run.returncode == 0
    assert push.costs() == {None: {"/": 1}, b: {"/oauth/token": 1, "/v1/free_busy": 1}}
    again = run_tap(push.config, run.state, streams=STREAMS)
    assert push.costs() == {None: {"/": 1}}  # all thousand consumed
    assert again.records() == []


def test_late_reordered_duplicated_and_failed_deliveries_lose_nothing(push):
    state = first_sync(push)
    knobs = push.sim.notifier.knobs
    knobs.delay, knobs.reorder, knobs.duplicates, knobs.fail_first = 0.2, True, 1, 2
    changed = {account_id: push.change(account_id) for account_id in push.ids}
    push.flush()
    stats = push.sim.notifier.stats
    assert stats.failed >= 2 * 2 * 4 and stats.given_up == 0
    run = run_tap(push.config, state, streams=STREAMS)
    assert run.returncode == 0
    emitted = {(r["account_id"], r["event_uid"]) for r in run.records("free_busy")}
    assert set(changed.items()) <= emitted
    assert sorted(a for a, _ in queried(run)) == push.ids


def test_a_notification_arriving_mid_run_is_served_by_the_next_run(push):
    state = first_sync(push)
    a, b = push.ids[:2]
    push.change(a)
    push.flush()
    # a's query is slow; while it runs, b changes and its notification is recorded
    push.sim.add_fault(kind="delay", seconds=1.5, path="/v1/free_busy", account_id=a)
    config = {**push.config, "max_parallel_accounts": 1}
    result: dict = {}
    thread = threading.Thread(
        target=lambda: result.update(run=run_tap(config, state, streams=STREAMS))
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not any(r["path"] == "/v1/free_busy" and r["account_id"] == a for r in push.sim.requests):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    changed = push.change(b, status="free")
    push.flush()
    thread.join(timeout=60)
    first = result["run"]
    assert first.returncode == 0
    assert [x for x, _ in queried(first)] == [a]
    push.costs()
    second = run_tap(push.config, first.state, streams=STREAMS)
    assert queried(second) == [(b, "notified (change)")]
    assert (b, changed) in {(r["account_id"], r["event_uid"]) for r in second.records("free_busy")}


def test_a_killed_tap_or_a_failed_target_loses_no_notification(push, tmp_path):
    state = first_sync(push)
    a, b = push.ids[:2]
    changed = {a: push.change(a), b: push.change(b)}
    push.flush()
    # killed while b's query is under way: what it wrote is never committed
    push.sim.add_fault(kind="delay", seconds=5, path="/v1/free_busy", account_id=b)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**push.config, "max_parallel_accounts": 1}))
    state_path = tmp_path / "state.json"
    state_path.write_text(json.dumps(state))
    tap = subprocess.Popen(
        [sys.executable, "-m", "tap_cronofy", "--config", str(path), "--state", str(state_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not any(r["path"] == "/v1/free_busy" and r["account_id"] == b for r in push.sim.requests):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    tap.send_signal(signal.SIGKILL)
    tap.wait(timeout=10)
    push.sim.faults.clear()
    # The target failed on the next try: Meltano saves no state either way.
    target = ROOT / ".meltano/loaders/target-duckdb/venv/bin/target-duckdb"
    (tmp_path / "target.json").write_text(json.dumps({"filepath": str(tmp_path / "no/such/x.db")}))
    tap_out = run_tap(push.config, state, streams=STREAMS)
    failed = subprocess.run(
        [str(target), "--config", str(tmp_path / "target.json")],
        input=tap_out.stdout,
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode != 0
    # The run after both starts from the last committed state: both changes arrive.
    rerun = run_tap(push.config, state, streams=STREAMS)
    assert sorted(x for x, _ in queried(rerun)) == [a, b]
    emitted = {(r["account_id"], r["event_uid"]) for r in rerun.records("free_busy")}
    assert set(changed.items()) <= emitted


def test_a_disconnected_profile_is_reported_by_the_next_run(push):
    state = first_sync(push)
    c = push.ids[2]
    push.sim.notify(c, "profile_disconnected")
    push.flush()
    run = run_tap(push.config, state, streams=STREAMS)
    assert run.returncode == 0
    warning = next(line for line in run.stderr.splitlines() if "disconnected" in line)
    assert c in warning and "re-authorise" in warning
    assert queried(run) == [(c, "notified (profile_disconnected)")]


@pytest.mark.parametrize("kind", ["profile_initial_sync_completed", "change"])
def test_the_same_notification_bytes_after_a_run_are_served_again(push, kind):
    """Lifecycle notifications carry only their type and channel (tests/fixtures/push/),
    and two changes may share a second: the second one, byte-identical to one a run
    already served, is a new notification, and what changed is loaded by the next run."""
    state = first_sync(push)
    c = push.ids[1]
    positions = []
    second = 0
    for round_ in range(2):
        if kind == "change":
            # Both changes notified within one second S (push.change moves 30 s on first).
            now = push.sim.now()
            push.sim.advance((second + 0.4 if round_ else math.floor(now) + 1.1) - 30 - now)
            uid = push.change(c, status="free" if round_ else "tentative")  # notifies
            second = math.floor(push.sim.now())
        else:
            push.sim.notifier.knobs.enabled = False  # the calendar's events, synced anew
            push.sim.advance(2 * 86400 if round_ else 60)
            uid = push.sim.create_event(c).event_uid
            push.sim.notifier.knobs.enabled = True
            push.sim.notify(c, kind)
        push.flush()
        positions.append(push.log.position())
        run = run_tap(push.config, state, streams=STREAMS)
        assert run.returncode == 0, run.stderr[-2000:]
        assert dict(queried(run))[c] == f"notified ({kind})", (round_, queried(run))
        assert uid in {r["event_uid"] for r in run.records("free_busy")}, round_
        state = run.state
    assert positions[1] == positions[0] + 1, "recorded as new, not dropped as a replay"


def test_accounts_without_a_channel_are_named(push):
    run = run_tap(push.config, streams=STREAMS)  # no `tap-cronofy-push channels` yet
    assert run.returncode == 0
    warning = next(line for line in run.stderr.splitlines() if "no notification channel" in line)
    assert f"4 accounts have no notification channel in the change log (e.g. {push.ids[0]})" in (
        warning
    )
    assert "tap-cronofy-push channels" in warning
    made = push.channels()
    assert made.returncode == 0
    again = run_tap(push.config, run.state, streams=STREAMS)
    assert "no notification channel" not in again.stderr


def test_an_unreadable_change_log_fails_before_any_request(push, tmp_path):
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(b"this is not a database" * 100)
    run = run_tap({**push.config, "change_log": str(bad)}, streams=STREAMS)
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert "change log" in last and "`change_log`" in last
    assert push.sim.requests == []


def test_the_receiver_command_verifies_signatures_over_http(tmp_path):
    """Configured as the manual says a receiver may be: only the client secret and the
    change log, from the environment."""
    log_path = tmp_path / "changes.db"
    receiver, host, port = start_receiver("rx-secret-123", log_path)
    try:
        base = f"http://{host}:{port}"
        ChangeLog(str(log_path)).add_channel("chn_1", "acc_1", base, 0)
        body = json.dumps(
            {"notification": {"type": "change"}, "channel": {"channel_id": "chn_1"}}
        ).encode()

        def send(signature: str | None) -> int:
            headers = {HEADER: signature} if signature else {}
            request = urllib.request.Request(base + "/hook", data=body, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    return answer.status
            except urllib.error.HTTPError as error:
                return error.code

        assert send(None) == 401
        assert send(sign(body, "wrong")) == 401
        assert ChangeLog(str(log_path)).position() == 0
        assert send(f"{sign(body, 'old')},{sign(body, 'rx-secret-123')}") == 200
        assert ChangeLog(str(log_path)).position() == 1
        with urllib.request.urlopen(base + "/healthz", timeout=10) as answer:
            assert json.loads(answer.read()) == {"ok": True, "position": 1}
    finally:
        receiver.send_signal(signal.SIGTERM)
        _, err = receiver.communicate(timeout=20)
    assert receiver.returncode == 0
    assert "rx-secret-123" not in err and "Receiver stopped." in err


# The change log shared by hosts: PostgreSQL


@pytest.fixture(params=["sqlite", "postgresql"])
def any_log(request, tmp_path):
    if request.param == "sqlite":
        yield str(tmp_path / "changes.db")
        return
    server = request.getfixturevalue("postgres")
    yield f"postgresql://{server.user}@127.0.0.1:{server.port}/postgres"


def test_numbers_follow_commit_order_under_concurrent_writers(any_log):
    """Writers on many connections at once, a reader polling meanwhile: every position the
    reader sees has every notification numbered up to it already committed."""
    log = ChangeLog(any_log)
    for n in range(4):
        log.add_channel(f"chn_{n}", f"acc_{n}", "https://hooks.example/x", 0)
    gaps: list[tuple[int, int]] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            last, _, pending = log.snapshot(0)
            total = sum(p.count for p in pending.values())
            if total != last:
                gaps.append((last, total))

    def write(n: int) -> None:
        for _ in range(40):
            assert log.record(f"chn_{n}", "change", None, time.time()) is not None

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    reader.join()
    assert gaps == []
    last, _, pending = log.snapshot(0)
    assert last == 160 and {a: p.count for a, p in pending.items()} == {
        f"acc_{n}": 40 for n in range(4)
    }


def test_a_postgres_change_log_serves_receiver_and_tap(postgres, tmp_path):
    target = f"postgresql://{postgres.user}:not-checked-pw@127.0.0.1:{postgres.port}/postgres"
    setup = Push(tmp_path, accounts=3, log_target=target)
    try:
        state = first_sync(setup)
        b = setup.ids[1]
        changed = setup.change(b)
        setup.flush()
        run = run_tap(setup.config, state, streams=STREAMS)
        assert run.returncode == 0, run.stderr[-2000:]
        assert queried(run) == [(b, "notified (change)")]
        assert (b, changed) in {(r["account_id"], r["event_uid"]) for r in run.records("free_busy")}
        assert f"PostgreSQL 127.0.0.1:{postgres.port}/postgres" in run.stderr
        assert "not-checked-pw" not in run.stderr
    finally:
        setup.stop()


# The whole path through Meltano


def test_meltano_receiver_channels_and_runs_into_duckdb(sim, tmp_path):

    import duckdb

    from harness.project import free_port, meltano, meltano_env, meltano_receiver, stop_receiver

    port = free_port()
    settings = tap_config(
        sim,
        sim.url,
        change_log=str(tmp_path / "changes.db"),
        notification_url=f"http://127.0.0.1:{port}/cronofy/notifications",
    )
    warehouse = tmp_path / "warehouse.duckdb"
    env = meltano_env(
        settings,
        MELTANO_DATABASE_URI=f"sqlite:///{tmp_path / 'meltano.db'}",
        TARGET_DUCKDB_FILEPATH=str(warehouse),
        **own_meltano_dir(tmp_path),
    )
    receiver = meltano_receiver(env, port)
    try:
        meltano("invoke", "tap-cronofy:channels", env=env)
        assert all(len(a.channels) == 1 for a in sim.accounts.values())
        meltano("run", "tap-cronofy", "target-duckdb", env=env)
        account_id = sorted(sim.accounts)[2]
        created = sim.create_event(account_id, status="tentative")
        assert sim.notifier.flush(timeout=60)
        second = meltano("run", "tap-cronofy", "target-duckdb", env=env)
        assert "Change-driven: 1 account of 3 queried" in second.stderr
        assert f"Account {account_id} (notified (change))" in second.stderr
        with duckdb.connect(str(warehouse), read_only=True) as con:
            status = con.execute(
                "select free_busy_status from cronofy.free_busy where event_uid = ?",
                [created.event_uid],
            ).fetchall()
        assert status == [("tentative",)]
        pruned = meltano("invoke", "tap-cronofy:prune", env=env)
        assert "Pruned 0 notification(s)." in pruned.stderr  # all within the retention
    finally:
        said = stop_receiver(receiver)
    assert "Traceback" not in said, said[-3000:]  # stopped as a service manager stops it
    again = meltano_receiver(env, port)
    said = stop_receiver(again, signal.SIGINT)  # and as Ctrl-C stops it
    assert "Traceback" not in said and "KeyboardInterrupt" not in said, said[-3000:]


def test_a_replaced_change_log_queries_every_account_once_and_changes_since_is_used(push):
    """SQLite to PostgreSQL, or a lost file: the new log numbers from 1 again, so positions
    kept in state mean nothing in it. Every account is queried once; then a notification's
    changes_since older than the bookmark bounds the account's query."""
    state = first_sync(push)
    replaced = ChangeLog(str(push.tmp / "replaced.db"))
    for channel_id, account_id in push.log.channels().items():
        replaced.add_channel(channel_id, account_id, push.url, 0.0)
    config = {**push.config, "change_log": replaced.target}
    run = run_tap(config, state, streams=STREAMS)
    assert run.returncode == 0, run.stderr[-2000:]
    reason = "the change log is not the one its position counts in (replaced or recreated)"
    assert sorted(queried(run)) == [(a, reason) for a in push.ids]
    quiet = run_tap(config, run.state, streams=STREAMS)
    assert queried(quiet) == [], "once"
    b = push.ids[1]
    bookmark = account_states(quiet.state)[b]["replication_key_value"]
    since = (
        dt.datetime.fromisoformat(bookmark.replace("Z", "+00:00")) - dt.timedelta(hours=3)
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    channel = next(c for c, a in replaced.channels().items() if a == b)
    replaced.record(channel, "change", since, push.sim.now())
    push.costs()
    later = run_tap(config, quiet.state, streams=STREAMS)
    assert queried(later) == [(b, "notified (change)")]
    query = next(r for r in push.sim.requests if r["path"] == "/v1/free_busy")
    assert query["params"]["last_modified"] == [since], "from the notification's changes_since"


def test_a_shard_reads_only_its_accounts_rows_of_the_log(any_log):
    log = ChangeLog(any_log)
    for n in range(4):
        log.add_channel(f"chn_{n}", f"acc_{n}", "https://x", 0.0)
    for n in range(8):
        log.record(f"chn_{n % 4}", "change", f"2026-12-01T10:00:0{n}Z", float(n))
    last, _, pending = log.snapshot(0, ["acc_1", "acc_3"])
    assert last == 8 and set(pending) == {"acc_1", "acc_3"}
    assert pending["acc_1"].last == {"change": 6} and pending["acc_1"].count == 2
    assert pending["acc_3"].changes_since == "2026-12-01T10:00:03Z"
    assert set(log.snapshot(0)[2]) == {"acc_0", "acc_1", "acc_2", "acc_3"}
    assert log.snapshot(0, [])[2] == {}
