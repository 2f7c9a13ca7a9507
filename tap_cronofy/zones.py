"""Time zones from the tzdata package, so the host's image never decides which zones exist."""

from __future__ import annotations

import functools
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@functools.lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The zone ``name`` as the tzdata package has it (the host's database only for a zone
    that package lacks); ``ZoneInfoNotFoundError`` when neither has it."""
    parts = name.split("/")
    if name and all(p and p not in (".", "..") and "\\" not in p for p in parts):
        try:
            with resources.files("tzdata.zoneinfo").joinpath(*parts).open("rb") as data:
                return ZoneInfo.from_file(data, key=name)
        except (OSError, ValueError):
            pass  # not in the package (or not a zone file): the host's, below
    try:
        return ZoneInfo(name)
    except (ValueError, OSError) as exc:
        raise ZoneInfoNotFoundError(f"No time zone found with key {name}") from exc


@functools.lru_cache(maxsize=1)
def names() -> frozenset[str]:
    """Every zone the tzdata package lists."""
    listed = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in listed.splitlines() if line.strip())
