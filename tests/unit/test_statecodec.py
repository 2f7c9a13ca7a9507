"""statecodec: the state as written says shared values once, and loads back unchanged."""

from __future__ import annotations

import copy
import json

from hypothesis import given
from hypothesis import strategies as st

from tap_cronofy.statecodec import SHARED, compact, expand

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from(["2026-12-01T10:00:00Z", "2027-06-20", "a", ""]),
)
values = st.one_of(scalars, st.dictionaries(st.sampled_from(["cal_1", "cal_2"]), scalars))
entries = st.dictionaries(
    st.sampled_from(["replication_key_value", "scope", "horizon", "full_read", "notified"]),
    values,
    max_size=5,
)
stream_states = st.fixed_dictionaries(
    {"accounts": st.dictionaries(st.sampled_from([f"acc_{n}" for n in range(6)]), entries)},
    optional={"last_run": scalars},
)
states = st.fixed_dictionaries(
    {"bookmarks": st.dictionaries(st.sampled_from(["free_busy", "calendars"]), stream_states)},
    optional={"currently_syncing": scalars},
)


@given(states)
def test_a_compacted_state_loads_back_equal_and_the_original_is_untouched(state):
    before = copy.deepcopy(state)
    written = json.loads(json.dumps(compact(state)))  # as a STATE line carries it
    assert state == before, "the live state is not changed by writing it"
    assert expand(copy.deepcopy(written)) == state
    assert compact(expand(copy.deepcopy(written))) == written, "the same on every write"
    assert compact(written) == written, "compacting twice changes nothing"


@given(states)
def test_a_state_without_shared_values_loads_as_it_is(state):
    for value in state["bookmarks"].values():
        value.pop(SHARED, None)
    assert expand(copy.deepcopy(state)) == state


def test_an_hourly_state_says_what_its_accounts_share_once():
    entry = {
        "replication_key_value": "2026-12-03T15:46:00Z",
        "scope": "calendar_ids=4f53cd,include_managed=b5bea4,localized_times=fcbcf1,"
        "start_date=74234e,end_date=74234e,tzid=b1260a",
        "horizon": "2027-06-22",
        "full_read": "2026-12-03",
    }
    accounts = {f"acc_{n:014x}": dict(entry) for n in range(1000)}
    accounts["acc_late"] = {**entry, "replication_key_value": "2026-12-03T14:46:00Z"}
    del accounts["acc_late"]["full_read"]
    state = {"bookmarks": {"free_busy": {"accounts": accounts}}}
    written = compact(state)["bookmarks"]["free_busy"]
    assert written[SHARED] == entry
    assert written["accounts"]["acc_00000000000000"] == {}
    assert written["accounts"]["acc_late"] == {
        "replication_key_value": "2026-12-03T14:46:00Z",
        "full_read": None,
    }
    size = len(json.dumps(compact(state), separators=(",", ":")))
    assert size / len(accounts) < 25  # the account id, and nothing else, per account
    assert expand(json.loads(json.dumps(compact(state)))) == state


def test_a_value_held_by_one_entry_only_is_not_shared():
    state = {"bookmarks": {"free_busy": {"accounts": {"acc_1": {"horizon": "2027-06-22"}}}}}
    assert compact(state) == state
