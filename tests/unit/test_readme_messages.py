"""The README's troubleshooting quotes the tap's own messages: each quoted piece (between
the `...` that stand for names and numbers) is text the code prints."""

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
