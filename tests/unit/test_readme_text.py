"""The README's own text: its troubleshooting quotes the tap's messages (each quoted piece,
between the `...` that stand for names and numbers, is text the code prints), and its
table of contents lists every section and links only to headings that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def printed_texts() -> list[str]:
    """Every string literal of the package; an f-string's placeholders become NUL."""
    texts = []
    for path in (ROOT / "tap_cronofy").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.JoinedStr):
                texts.append(
                    "".join(v.value if isinstance(v, ast.Constant) else "\0" for v in node.values)
                )
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                texts.append(node.value)
    return texts


def quoted() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Troubleshooting\n") : text.index("## Performance\n")]
    return [" ".join(q.split()) for q in re.findall(r"\*\*`(.+?)`\*\*", section, re.S)]


def test_every_quoted_message_is_one_the_tap_prints():
    texts = [" ".join(t.split()) for t in printed_texts()]
    quotes = quoted()
    assert len(quotes) >= 15
    missing = []
    for quote in quotes:
        for piece in (p.strip(" .") for p in quote.split("...")):
            if len(piece) >= 5 and not any(piece in t for t in texts):
                missing.append((quote, piece))
    assert not missing, missing


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_the_table_of_contents_lists_every_section_and_only_real_headings():
    text = (ROOT / "README.md").read_text()
    body = re.sub(r"```.*?```", "", text, flags=re.S)
    headings = re.findall(r"^(#{2,3}) (.+)$", body, re.M)
    anchors = {anchor(title) for _, title in headings}
    contents = text[
        text.index("## Contents\n") : text.index("\n## ", text.index("## Contents\n") + 1)
    ]
    links = re.findall(r"\[(.+?)\]\(#([^)]+)\)", contents)
    assert links and all(target in anchors for _, target in links), [
        t for _, t in links if t not in anchors
    ]
    listed = {target for _, target in links}
    sections = [anchor(title) for level, title in headings if level == "##"]
    assert [s for s in sections if s not in listed and s != "contents"] == []
    # every in-page link of the README goes to a heading that exists
    for target in re.findall(r"\]\(#([^)]+)\)", body):
        assert target in anchors, target


def test_the_example_state_is_as_the_tap_writes_it():
    """Spelled out and written again, the README's example state comes back unchanged, and
    its scope is the default settings' fingerprint."""
    import copy
    import json

    from tap_cronofy.settings import Settings
    from tap_cronofy.statecodec import compact, expand
    from tap_cronofy.window import scope_fingerprint

    text = (ROOT / "README.md").read_text()
    after = text[text.index("**As written, values most accounts share are said once.**") :]
    example = json.loads(re.search(r"```json\n(.*?)```", after, re.S).group(1))
    full = expand(copy.deepcopy(example))
    second = full["bookmarks"]["free_busy"]["accounts"]["acc_64b17d868090ea21640c914c"]
    assert "full_read" not in second and second["horizon"] == "2027-06-09"
    assert compact(full) == example
    settings = Settings.from_config({"access_token": "t"})
    assert second["scope"] == scope_fingerprint(settings)
