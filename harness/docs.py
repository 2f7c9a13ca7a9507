"""The user's documentation as tests read it: README.md and the manual's pages (docs/, in the
order of mkdocs.yml's nav). Tests that run the docs' commands or check their text read them
here, whichever page holds the passage."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def pages() -> list[Path]:
    """README.md, then every page of the site's nav."""
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    names = [next(iter(entry.values())) for entry in nav]
    return [ROOT / "README.md", *(ROOT / "docs" / name for name in names)]


def page(name: str) -> str:
    """One page's text: "README.md" or a page of docs/ ("state.md")."""
    path = ROOT / name if name == "README.md" else ROOT / "docs" / name
    return path.read_text()


def text() -> str:
    """Every page, one after another (each heading is unique across them)."""
    return "\n\n".join(path.read_text() for path in pages())


def bash_lines(prefix: str) -> list[str]:
    """Each line of a ```bash block that starts with ``prefix``, first occurrence only (the
    README repeats a few of the manual's commands), in page order."""
    seen: dict[str, None] = {}
    for block in re.findall(r"```bash\n(.*?)```", text(), re.S):
        for line in block.splitlines():
            if line.startswith(prefix):
                seen.setdefault(line.strip(), None)
    return list(seen)
