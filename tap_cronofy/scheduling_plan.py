"""Which tracked scheduling requests a run queries (pure): open ones every run, settled ones
once a cycle at an hour of their own, ones Cronofy no longer finds less and less often."""

from __future__ import annotations

import datetime as dt
import re
import zlib
from dataclasses import dataclass

OPEN, SETTLED, GONE = "o", "s", "g"
MAX_BACKOFF = 5  # a gone id is asked every 1, 2, 4, ... 32 cycles at most
EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Tracked:
    """What the state remembers of one id: the fingerprint of the version last emitted
    ("" when never found), its tier, the hour it was last queried (None: never, or a state
    of an earlier release) and, for a gone id, how many queries in a row did not find it."""

    fingerprint: str = ""
    tier: str = OPEN
    read_at: int | None = None
    misses: int = 0


def hour_of(moment: dt.datetime) -> int:
    """Hours since 2020-01-01 UTC: the planner's clock."""
    return int((moment - EPOCH).total_seconds() // 3600)


def tier_of(request: dict, now: dt.datetime) -> str:
    """Settled: expired, cancelled, or complete with its meeting over; else open (pending,
    pending_rescheduling, complete with the meeting still ahead or its time unreadable)."""
    selection = request.get("slot_selection")
    if selection in ("expired", "cancelled"):
        return SETTLED
    if selection == "complete":
        end = ((request.get("event") or {}).get("end") or {}).get("time")
        try:
            ends = dt.datetime.fromisoformat(str(end).replace("Z", "+00:00"))
        except ValueError:
            return OPEN
        if ends.tzinfo is not None and ends <= now:
            return SETTLED
    return OPEN


def period_hours(tracked: Tracked, cycle_hours: int) -> int:
    """How often the id is queried: every run (0) when open, once a cycle when settled,
    doubling per miss when gone."""
    if tracked.tier == OPEN or tracked.read_at is None:
        return 0
    if tracked.tier == GONE:
        return cycle_hours * 2 ** min(max(tracked.misses - 1, 0), MAX_BACKOFF)
    return cycle_hours


def is_due(request_id: str, tracked: Tracked | None, now_hour: int, cycle_hours: int) -> bool:
    """Due when open, never queried, or when its own hour of the period (an offset taken
    from its id, so settled ids spread evenly over the cycle's runs) has come since it was
    last queried."""
    if tracked is None:
        return True
    period = period_hours(tracked, cycle_hours)
    if period == 0 or tracked.read_at is None:
        return True
    offset = zlib.crc32(request_id.encode()) % period
    return (now_hour - offset) // period > (tracked.read_at - offset) // period


def plan(ids: list[str], tracked: dict[str, Tracked], now_hour: int, cycle_hours: int) -> list[str]:
    """The ids to query this run, stalest first (never queried, then the longest ago; ties
    in the order given)."""
    due = [i for i in ids if is_due(i, tracked.get(i), now_hour, cycle_hours)]

    def staleness(request_id: str) -> int:
        known = tracked.get(request_id)
        return -1 if known is None or known.read_at is None else known.read_at

    return sorted(due, key=staleness)


def after_query(
    tracked: Tracked | None, found: dict | None, fingerprint: str, now: dt.datetime
) -> Tracked:
    """What is remembered once the id was queried (``found`` None: Cronofy did not find
    it). The fingerprint is the caller's to advance only once the record is out."""
    hour = hour_of(now)
    if found is None:
        misses = tracked.misses + 1 if tracked is not None and tracked.tier == GONE else 1
        return Tracked(tracked.fingerprint if tracked else "", GONE, hour, misses)
    return Tracked(fingerprint, tier_of(found, now), hour, 0)


def encode(request_id: str, tracked: Tracked) -> str:
    """``id:fingerprint:tier:hour`` (the tier of a gone id carries its misses: ``g3``)."""
    tier = f"{GONE}{tracked.misses}" if tracked.tier == GONE else tracked.tier
    hour = "" if tracked.read_at is None else _base36(tracked.read_at)
    return f"{request_id}:{tracked.fingerprint}:{tier}:{hour}"


def decode(item: str) -> tuple[str, Tracked]:
    """An entry of the state, or of an earlier release's (``id:fingerprint``: open, its
    last query unknown, so it is queried this run)."""
    parts = item.split(":")
    if len(parts) < 4 or not re.fullmatch(r"[os]|g\d*", parts[-2]):
        request_id, _, fingerprint = item.rpartition(":")
        return request_id, Tracked(fingerprint)
    request_id, fingerprint, tier, hour = ":".join(parts[:-3]), *parts[-3:]
    read_at = int(hour, 36) if hour else None
    if tier.startswith(GONE):
        return request_id, Tracked(fingerprint, GONE, read_at, int(tier[1:] or 1))
    return request_id, Tracked(fingerprint, tier if tier in (OPEN, SETTLED) else OPEN, read_at)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out
