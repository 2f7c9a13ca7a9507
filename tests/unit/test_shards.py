"""Shards: membership by a stable hash, the settings, and re-sharding states N to M."""

from __future__ import annotations

import copy
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tap_cronofy.settings import Settings, check
from tap_cronofy.shard import Shard, shard_of
from tap_cronofy.shards.reshard import reshard, unwrap
from tap_cronofy.statecodec import expand
from tests.unit.test_accounts import CronofyAPIError, make

ids = st.text(alphabet="abcdef0123456789_", min_size=4, max_size=24).map(lambda s: f"acc_{s}")


@pytest.mark.parametrize(
    ("text", "shard"), [("0/1", Shard(0, 1)), ("3/16", Shard(3, 16)), (" 15/16 ", Shard(15, 16))]
)
def test_a_shard_is_parsed_from_index_slash_count(text, shard):
    assert Shard.parse(text) == shard and str(shard) == text.strip()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("16/16", "the shard must be 0 to 15 of 16"),
        ("0/0", "the shard must be 0 to 0 of 0"),
        ("3", "must look like 3/16"),
        ("-1/4", "must look like 3/16"),
        ("a/b", "must look like 3/16"),
    ],
)
def test_a_wrong_shard_is_refused_naming_the_setting(text, says):
    with pytest.raises(ValueError, match="`shard`") as error:
        Shard.parse(text)
    assert says in str(error.value)
    assert any(says in e for e in check({"access_token": "t" * 8, "shard": text}))


def test_membership_is_crc32_of_the_account_id_and_stable_across_releases():
    """Changing the hash would move accounts between shards' states: keep it."""
    assert (
        shard_of("acc_5ba21743f408617d1269ea1e", 16)
        == zlib.crc32(b"acc_5ba21743f408617d1269ea1e") % 16
    )
    assert [shard_of(f"acc_{n}", 4) for n in range(8)] == [
        zlib.crc32(f"acc_{n}".encode()) % 4 for n in range(8)
    ]
    assert [shard_of(f"acc_{n}", 4) for n in range(8)] == [3, 1, 3, 1, 2, 0, 2, 0]


@given(account_ids=st.lists(ids, unique=True, max_size=40), count=st.integers(1, 20))
def test_every_account_is_in_exactly_one_shard(account_ids, count):
    for account_id in account_ids:
        holders = [i for i in range(count) if Shard(i, count).holds(account_id)]
        assert holders == [shard_of(account_id, count)]


def test_settings_carry_the_shard_and_who_reads_scheduling_requests():
    base = {"access_token": "token-1234"}
    assert Settings.from_config(base).shard is None
    assert Settings.from_config(base).reads_scheduling_requests
    two = Settings.from_config({**base, "shard": "1/4", "scheduling_requests_shard": 1})
    assert two.shard == Shard(1, 4) and two.reads_scheduling_requests
    assert not Settings.from_config({**base, "shard": "2/4"}).reads_scheduling_requests
    assert check({**base, "shard": "1/4", "scheduling_requests_shard": 4}) == [
        "`scheduling_requests_shard` 4 is not one of the 4 shards (0 to 3)."
    ]


ENTRIES = [{"account_id": f"acc_{n}", "access_token": f"token-{n}"} for n in range(8)]


def test_a_shard_reads_its_accounts_and_drops_no_other_shards_state():
    accounts, client, _ = make({"accounts": ENTRIES, "shard": "1/4"}, {})
    assert accounts.ids() == ["acc_1", "acc_3"]  # crc32 % 4 == 1
    known = ["acc_0", "acc_2", "acc_gone"]
    assert accounts.gone(known) == ["acc_gone"], "another shard's account stays"
    assert client.sent == []


def test_a_lone_token_that_cannot_be_identified_drops_no_state():
    accounts, _, _ = make(
        {"access_token": "token-1234"},
        {"/v1/userinfo": [CronofyAPIError("503 Service Unavailable", status=503)]},
    )
    assert accounts.ids() == []
    assert accounts.gone(["acc_known"]) == []


@st.composite
def shard_states(draw):
    """The states of ``count`` shards as the tap leaves them."""
    count = draw(st.integers(1, 9))
    account_ids = draw(st.lists(ids, unique=True, max_size=30))
    states = [
        {"bookmarks": {"free_busy": {"accounts": {}}, "calendars": {"accounts": {}}}}
        for _ in range(count)
    ]
    for n, account_id in enumerate(account_ids):
        home = states[shard_of(account_id, count)]["bookmarks"]
        home["free_busy"]["accounts"][account_id] = {
            "replication_key_value": f"2026-12-01T10:{n % 60:02d}:00Z",
            "horizon": "2027-06-20",
        }
        home["calendars"]["accounts"][account_id] = {"read_on": "2026-12-01", "calendars": {}}
    for number, state in enumerate(states):
        state["bookmarks"]["calendars"]["last_run"] = f"2026-12-01T0{number}:00:00Z"
    scheduling = draw(st.integers(0, count - 1))
    states[scheduling]["bookmarks"]["scheduling_requests"] = {"seen": ["srq_1:abc"]}
    wrap = draw(st.booleans())
    return [{"singer_state": s} if wrap else s for s in states], account_ids


def entries(state: dict, stream: str) -> dict:
    """A stream's per-account entries, spelled out (as written, shared values are once)."""
    return expand(copy.deepcopy(unwrap(state)))["bookmarks"][stream]["accounts"]


@given(before=shard_states(), count=st.integers(1, 9), data=st.data())
def test_resharding_keeps_every_entry_once_in_its_new_shard(before, count, data):
    states, account_ids = before
    scheduling = data.draw(st.integers(0, count - 1))
    after = reshard(states, count, scheduling)
    assert len(after) == count
    for stream in ("free_busy", "calendars"):
        placed = [(i, a) for i, s in enumerate(after) for a in entries(s, stream)]
        assert sorted(a for _, a in placed) == sorted(account_ids), "each account once"
        assert all(shard_of(a, count) == i for i, a in placed), "in the shard it falls in"
        for account_id in account_ids:
            old = next(
                entries(s, stream)[account_id] for s in states if account_id in entries(s, stream)
            )
            new = entries(after[shard_of(account_id, count)], stream)[account_id]
            assert new == old, "no bookmark changed: nothing is read again"
    assert [("scheduling_requests" in s["bookmarks"]) for s in after] == [
        i == scheduling for i in range(count)
    ]
    assert {s["bookmarks"]["calendars"]["last_run"] for s in after} == {"2026-12-01T00:00:00Z"}
    back = reshard(after, len(states))
    for stream in ("free_busy", "calendars"):
        assert [entries(s, stream) for s in back] == [entries(s, stream) for s in states], (
            "4 -> 8 -> 4 gives the same states back"
        )


def test_of_two_entries_for_one_account_the_freshest_is_kept():
    old = {
        "bookmarks": {
            "free_busy": {"accounts": {"acc_1": {"replication_key_value": "2026-12-01T09:00:00Z"}}}
        }
    }
    new = {
        "bookmarks": {
            "free_busy": {"accounts": {"acc_1": {"replication_key_value": "2026-12-01T10:00:00Z"}}}
        }
    }
    for order in ([old, new], [new, old]):
        (only,) = reshard(order, 1)
        assert entries(only, "free_busy")["acc_1"]["replication_key_value"] == (
            "2026-12-01T10:00:00Z"
        )


def test_impossible_shard_counts_are_refused():
    with pytest.raises(ValueError, match="not possible"):
        reshard([], 0)
    with pytest.raises(ValueError, match="not possible"):
        reshard([], 2, scheduling_shard=2)


def test_a_config_written_by_another_shards_run_is_refused():
    """Two shards of one Meltano project sharing .meltano/run/tap-cronofy/: the config the
    tap reads may be the other shard's. The shard Meltano was told is in the environment."""
    base = {"access_token": "token-1234", "shard": "0/2"}
    assert check(base, {"TAP_CRONOFY_SHARD": "0/2"}) == []
    assert check(base, {}) == []
    (error,) = check(base, {"TAP_CRONOFY_SHARD": "1/2"})
    assert error.startswith("`shard` is '0/2' in the config but TAP_CRONOFY_SHARD is '1/2'")
    assert "MELTANO_SYS_DIR_ROOT" in error
    assert check({"access_token": "token-1234"}, {"TAP_CRONOFY_SHARD": "1/2"})
