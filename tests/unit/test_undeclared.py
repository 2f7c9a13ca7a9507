"""undeclared.py: which fields of an answer no schema declares, and each said once."""

from __future__ import annotations

import logging

from hypothesis import given
from hypothesis import strategies as st

from tap_cronofy.streams.directory import CALENDARS_ANSWER, USERINFO_ANSWER
from tap_cronofy.undeclared import Undeclared, leaves, unknown_paths

SHAPE = {"a": None, "b": {"c": None, "d": [leaves(("e", "f"))]}}


def test_paths_name_where_an_unknown_key_sits():
    value = {"a": {"x": 1}, "z": 2, "b": {"c": 1, "q": 1, "d": [{"e": 1}, {"g": 2}, 5]}}
    assert unknown_paths(value, SHAPE) == ["b.d[].g", "b.q", "z"]


def test_a_value_of_another_type_than_its_shape_is_not_looked_into():
    assert unknown_paths({"b": [1, {"zz": 1}]}, SHAPE) == []
    assert unknown_paths({"b": {"d": {"zz": 1}}}, SHAPE) == []
    assert unknown_paths("text", SHAPE) == []


def test_each_path_is_said_once_per_run(caplog):
    undeclared = Undeclared(logging.getLogger("t"), "userinfo", USERINFO_ANSWER)
    with caplog.at_level(logging.WARNING):
        assert undeclared.check({"sub": "acc_1", "new": 1, "cronofy.data": {"x": 1}}) == [
            "cronofy.data.x",
            "new",
        ]
        assert undeclared.check({"sub": "acc_2", "new": 2}) == []
        assert undeclared.check({"sub": "acc_3", "newer": 2}) == ["newer"]
    assert [r.getMessage() for r in caplog.records] == [
        "Cronofy sent userinfo fields the schema does not declare, not loaded: "
        "cronofy.data.x, new. Please report them so they can be added.",
        "Cronofy sent userinfo fields the schema does not declare, not loaded: newer. "
        "Please report them so they can be added.",
    ]


def conforming(shape: object) -> st.SearchStrategy:
    """Values that use only what ``shape`` knows (any subset of keys, lists of any length)."""
    if isinstance(shape, dict):
        return st.fixed_dictionaries(
            {}, optional={key: conforming(sub) for key, sub in shape.items()}
        )
    if isinstance(shape, list):
        return st.lists(conforming(shape[0]), max_size=3)
    return st.one_of(st.none(), st.integers(), st.text(max_size=3), st.booleans())


def objects(value: object, shape: object, path: str = "") -> list[tuple[dict, str]]:
    """Every object the shape looks into, with its path (the brute-force side)."""
    found = []
    if isinstance(shape, dict) and isinstance(value, dict):
        found.append((value, path))
        for key, item in value.items():
            found.extend(objects(item, shape[key], f"{path}.{key}" if path else key))
    elif isinstance(shape, list) and isinstance(value, list):
        for item in value:
            found.extend(objects(item, shape[0], f"{path}[]"))
    return found


@given(st.data(), st.sampled_from([USERINFO_ANSWER, CALENDARS_ANSWER, SHAPE]))
def test_a_conforming_answer_names_nothing_and_one_extra_key_names_exactly_it(data, shape):
    value = data.draw(conforming(shape))
    assert unknown_paths(value, shape) == []
    target, path = data.draw(st.sampled_from(objects(value, shape)))
    target["zz_undocumented"] = data.draw(conforming(None))
    assert unknown_paths(value, shape) == [f"{path}.zz_undocumented" if path else "zz_undocumented"]
