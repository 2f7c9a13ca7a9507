"""A broken accounts_file (JSON or YAML) is refused naming the file, the line and what is
wrong, and nothing said about it quotes a token or a piece of one."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from tap_cronofy.settings import check
from tap_cronofy.tokenstore import FileTokenStore, TokenStoreError

ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
TOKENS = st.text(ALPHABET, min_size=16, max_size=40)
PIECE = 8  # no run of this many characters of a token may appear in any output


def render(entries: list[dict], as_yaml: bool) -> str:
    if as_yaml:
        return yaml.safe_dump({"accounts": entries}, sort_keys=False)
    return json.dumps(entries, indent=2)


@st.composite
def corrupted(draw) -> tuple[str, bool, list[str]]:
    tokens = draw(st.lists(TOKENS, min_size=2, max_size=4, unique=True))
    entries = [
        {"account_id": f"acc_{n}", "access_token": tokens[n], "refresh_token": tokens[n + 1]}
        for n in range(len(tokens) - 1)
    ]
    as_yaml = draw(st.booleans())
    lines = render(entries, as_yaml).splitlines()
    for _ in range(draw(st.integers(1, 3))):
        n = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["indent", "insert", "cut", "quote", "tab", "colon"]))
        line = lines[n]
        at = draw(st.integers(0, len(line)))
        lines[n] = {
            "indent": " " * draw(st.integers(1, 3)) + line,
            "insert": line[:at] + draw(st.sampled_from(list("{}[],:'\"#&*!|>%@`"))) + line[at:],
            "cut": line[:at],
            "quote": line[:at] + '"' + line[at:],
            "tab": "\t" + line,
            "colon": line[:at] + ": " + line[at:],
        }[how]
    return "\n".join(lines) + "\n", as_yaml, tokens


def leaks(text: str, tokens: list[str]) -> list[str]:
    return [
        token[i : i + PIECE]
        for token in tokens
        for i in range(len(token) - PIECE + 1)
        if token[i : i + PIECE] in text
    ]


@given(corrupted())
def test_no_output_about_a_broken_file_holds_a_piece_of_a_token(case):
    text, as_yaml, tokens = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("accounts.yaml" if as_yaml else "accounts.json")
        path.write_text(text)
        config = {"accounts_file": str(path), "client_id": "cid", "client_secret": "cs-1"}
        said = list(check(config))
        try:
            FileTokenStore(path).entries()
        except TokenStoreError as exc:
            said.append(str(exc))
        assert not leaks("\n".join(said), tokens), said


def test_an_over_indented_yaml_line_is_named_by_its_line(tmp_path):
    path = tmp_path / "accounts.yaml"
    path.write_text(
        "accounts:\n  - account_id: acc_a\n    access_token: at-secret-value-1234\n"
        "     refresh_token: rt-secret-value-5678\n"
    )
    (said,) = check({"accounts_file": str(path), "client_id": "c", "client_secret": "s"})
    assert said.startswith(f"`accounts_file` {str(path)!r} cannot be read")
    assert "line 4, column 19: mapping values are not allowed here" in said
    assert "secret-value" not in said


def test_a_value_of_the_wrong_kind_is_named_by_entry_and_field_not_by_value(tmp_path):
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps([{"account_id": "acc_a", "access_token": " at-bad-1234567"}]))
    (said,) = check({"accounts_file": str(path)})
    assert said == (
        "`accounts_file`: entry 0: `access_token` has spaces where a token or id cannot (an "
        "empty value, a space at either end)."
    )
