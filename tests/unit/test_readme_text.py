"""The docs' own text: the troubleshooting page quotes the tap's messages (each quoted piece,
between the `...` that stand for names and numbers, is text the code prints), every link
between the README, the manual and the repository resolves, and the README stays short."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from harness import docs

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
    text = docs.page("operating.md")
    section = text[text.index("## Troubleshooting\n") :]
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


def headings_of(path: Path) -> set[str]:
    body = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {anchor(title) for title in re.findall(r"^#{1,4} (.+)$", body, re.M)}


def test_every_relative_link_of_the_readme_and_the_manual_resolves():
    """Each link to a file of the repository names one that exists, and its #anchor a
    heading there (mkdocs build --strict checks the pages among themselves; this also
    covers the README, which the site does not build)."""
    broken = []
    for path in docs.pages():
        body = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", body):
            if re.match(r"[a-z]+:", target):
                continue
            name, _, fragment = target.partition("#")
            linked = (path.parent / name).resolve() if name else path
            if not linked.exists() or (
                fragment and linked.suffix == ".md" and fragment not in headings_of(linked)
            ):
                broken.append((path.name, target))
    assert not broken, broken


def test_the_readme_lists_every_page_of_the_manual_and_the_nav_every_file():
    listed = set(re.findall(r"\]\(docs/([\w-]+\.md)\)", docs.page("README.md")))
    nav = {path.name for path in docs.pages()[1:]}
    assert nav - {"index.md"} <= listed, nav - listed
    assert {path.name for path in (ROOT / "docs").glob("*.md")} == nav


def test_the_readme_stays_a_first_hour_read():
    assert len(docs.page("README.md").splitlines()) <= 300


def test_the_example_state_is_as_the_tap_writes_it():
    """Spelled out and written again, the README's example state comes back unchanged, and
    its scope is the default settings' fingerprint."""
    import copy
    import json

    from tap_cronofy.settings import Settings
    from tap_cronofy.statecodec import compact, expand
    from tap_cronofy.window import scope_fingerprint

    text = docs.page("state.md")
    after = text[text.index("**As written, values most accounts share are said once.**") :]
    example = json.loads(re.search(r"```json\n(.*?)```", after, re.S).group(1))
    full = expand(copy.deepcopy(example))
    second = full["bookmarks"]["free_busy"]["accounts"]["acc_64b17d868090ea21640c914c"]
    assert "full_read" not in second and second["horizon"] == "2027-06-09"
    assert compact(full) == example
    settings = Settings.from_config({"access_token": "t"})
    assert second["scope"] == scope_fingerprint(settings)
