"""statecodec: the state as written says shared values once, loads back unchanged, and
survives Meltano's merge of a failed run's partial state onto the last complete one."""

from __future__ import annotations

import copy
import json

from hypothesis import example, given
from hypothesis import strategies as st
from meltano.core.utils import merge as meltano_merge

from tap_cronofy.statecodec import SHARED, compact, expand

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.sampled_from(["2026-12-01T10:00:00Z", "2027-06-20", "a", ""]),
)
values = st.one_of(scalars, st.dictionaries(st.sampled_from(["cal_1", "cal_2"]), scalars))
entries = st.one_of(
    st.dictionaries(
        st.sampled_from(["replication_key_value", "scope", "horizon", "full_read", "notified"]),
        values,
        max_size=5,
    ),
    st.sampled_from(["not an object", 3]),  # never written by the tap: carried as they are
)
account_ids = st.sampled_from([f"acc_{n}" for n in range(6)])
stream_states = st.fixed_dictionaries(
    {"accounts": st.dictionaries(account_ids, entries)},
    optional={"last_run": scalars},
)
states = st.fixed_dictionaries(
    {"bookmarks": st.dictionaries(st.sampled_from(["free_busy", "calendars"]), stream_states)},
    optional={"currently_syncing": scalars},
)


def written(state: dict) -> dict:
    return json.loads(json.dumps(compact(state)))  # as a STATE line carries it


@given(states)
def test_a_compacted_state_loads_back_equal_and_the_original_is_untouched(state):
    before = copy.deepcopy(state)
    line = written(state)
    assert state == before, "the live state is not changed by writing it"
    assert expand(copy.deepcopy(line)) == state
    assert compact(expand(copy.deepcopy(line))) == line, "the same on every write"
    assert compact(line) == line, "compacting twice changes nothing"


@given(states)
def test_a_state_spelled_out_as_before_loads_as_it_is(state):
    for value in state["bookmarks"].values():
        value.pop(SHARED, None)
        value["accounts"] = {a: e for a, e in value["accounts"].items() if not isinstance(e, list)}
    assert expand(copy.deepcopy(state)) == state


JAN = {"replication_key_value": "2026-01-01T00:00:00Z", "horizon": "2026-07-21"}
MAR = {"replication_key_value": "2026-03-01T00:00:00Z", "horizon": "2026-09-17"}


@example(  # an earlier release's complete state, its first account not in the partial one
    complete={"bookmarks": {"free_busy": {"accounts": {a: dict(JAN) for a in "cab"}}}},
    partial={"bookmarks": {"free_busy": {"accounts": {a: dict(MAR) for a in "ab"}}}},
    old_complete=True,
)
@example(  # a --full-refresh run stopped after two of four accounts
    complete={"bookmarks": {"free_busy": {"accounts": {a: dict(JAN) for a in "abcd"}}}},
    partial={"bookmarks": {"free_busy": {"accounts": {a: dict(MAR) for a in "ab"}}}},
    old_complete=False,
)
@given(complete=states, partial=states, old_complete=st.booleans())
def test_meltanos_merge_of_a_partial_state_keeps_each_accounts_own_entry(
    complete, partial, old_complete
):
    """Meltano merges a failed run's partial state onto the last complete one, recursing
    into objects: each account must then read back as the state that last wrote it has it
    (a partial state may hold only some accounts: a --full-refresh run stopped early)."""
    for state in (complete, partial):  # the tap writes objects only
        for value in state["bookmarks"].values():
            value["accounts"] = {a: e for a, e in value["accounts"].items() if isinstance(e, dict)}
    base = copy.deepcopy(complete) if old_complete else written(complete)  # old or new format
    merged = expand(meltano_merge(written(partial), base))
    for stream in set(complete["bookmarks"]) | set(partial["bookmarks"]):
        old = complete["bookmarks"].get(stream, {}).get("accounts", {})
        new = partial["bookmarks"].get(stream, {}).get("accounts", {})
        assert merged["bookmarks"][stream]["accounts"] == {**old, **new}, stream


def test_an_hourly_state_says_what_its_accounts_share_once():
    entry = {
        "replication_key_value": "2026-12-03T15:46:00Z",
        "scope": "calendar_ids=4f53cda1,include_managed=b5bea41b,localized_times=fcbcf165,"
        "start_date=74234e98,end_date=74234e98,tzid=b1260a15",
        "horizon": "2027-06-22",
        "full_read": "2026-12-03",
    }
    accounts = {f"acc_{n:014x}": dict(entry) for n in range(1000)}
    accounts["acc_late"] = {**entry, "replication_key_value": "2026-12-03T14:46:00Z"}
    del accounts["acc_late"]["full_read"]
    state = {"bookmarks": {"free_busy": {"accounts": accounts}}}
    line = compact(state)["bookmarks"]["free_busy"]
    ((digest, shared),) = line[SHARED].items()
    assert shared == entry
    assert line["accounts"]["acc_00000000000000"] == [digest]
    assert line["accounts"]["acc_late"] == [
        digest,
        {"replication_key_value": "2026-12-03T14:46:00Z", "full_read": None},
    ]
    size = len(json.dumps(compact(state), separators=(",", ":")))
    assert size / len(accounts) < 40  # the account id and the digest, and nothing else
    assert expand(json.loads(json.dumps(compact(state)))) == state


def test_values_are_shared_by_type_and_only_when_two_entries_hold_them():
    state = {"bookmarks": {"free_busy": {"accounts": {"acc_1": {"horizon": "2027-06-22"}}}}}
    line = compact(state)["bookmarks"]["free_busy"]
    ((digest, shared),) = line[SHARED].items()
    assert shared == {} and line["accounts"] == {"acc_1": [digest, {"horizon": "2027-06-22"}]}
    flags = {"acc_1": {"n": 1}, "acc_2": {"n": True}, "acc_3": {"n": True}}
    line = compact({"bookmarks": {"s": {"accounts": flags}}})["bookmarks"]["s"]
    ((shared),) = line[SHARED].values()
    assert shared["n"] is True, "True is not 1 (though Python finds them equal)"
    back = expand({"bookmarks": {"s": line}})["bookmarks"]["s"]["accounts"]
    assert json.dumps(back) == json.dumps(flags)
    odd = {"acc_0": "not an object", "acc_1": {"n": 2}, "acc_2": {"n": 2}}
    line = compact({"bookmarks": {"s": {"accounts": odd}}})["bookmarks"]["s"]
    assert list(line[SHARED].values()) == [{"n": 2}], "an odd entry stops nothing"


def test_an_entry_whose_shared_values_are_lost_is_read_whole_again():
    line = {"bookmarks": {"free_busy": {SHARED: [1], "accounts": {"acc_1": ["0123abcd4567"]}}}}
    assert expand(line)["bookmarks"]["free_busy"]["accounts"] == {"acc_1": {}}
