"""Re-sharding: N shard states merged and split into M, no bookmark lost, none re-read."""

from __future__ import annotations

import copy
import typing as t

from tap_cronofy.shard import shard_of
from tap_cronofy.statecodec import ACCOUNTS, compact, expand

BOOKMARKS = "bookmarks"
SINGER_STATE = "singer_state"  # how `meltano state get` wraps a Singer state


def unwrap(state: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """A Singer state, from itself or from Meltano's ``{"singer_state": ...}``."""
    inner = state.get(SINGER_STATE, state)
    return dict(inner) if isinstance(inner, t.Mapping) else {}


def reshard(
    states: t.Iterable[t.Mapping[str, t.Any]], count: int, scheduling_shard: int = 0
) -> list[dict[str, t.Any]]:
    """The states of ``count`` shards holding everything ``states`` held: each account's
    entry in the shard its id falls in (the freshest entry when two states hold one), the
    streams kept as a whole (scheduling_requests) in ``scheduling_shard``, and the other
    values of a stream (calendars' last_run) in every shard, the oldest when they differ
    (a shard then reads sooner, never later)."""
    if count < 1 or not 0 <= scheduling_shard < count:
        msg = f"{count} shards, scheduling_requests in shard {scheduling_shard}: not possible"
        raise ValueError(msg)
    merged: dict[str, dict[str, t.Any]] = {}
    for state in states:
        full = expand(copy.deepcopy(unwrap(state)))  # entries spelled out (statecodec)
        for stream, value in (full.get(BOOKMARKS) or {}).items():
            if not isinstance(value, t.Mapping):
                continue
            into = merged.setdefault(stream, {})
            for name, item in value.items():
                if name == ACCOUNTS and isinstance(item, t.Mapping):
                    entries = into.setdefault(ACCOUNTS, {})
                    for account_id, entry in item.items():
                        entries[account_id] = fresher(entries.get(account_id), entry)
                elif name not in into:
                    into[name] = item
                elif isinstance(item, str) and isinstance(into[name], str):
                    into[name] = min(into[name], item)
    shards: list[dict[str, t.Any]] = [{BOOKMARKS: {}} for _ in range(count)]
    for stream, value in merged.items():
        if ACCOUNTS not in value:  # a whole-stream state: one shard reads that stream
            shards[scheduling_shard][BOOKMARKS][stream] = value
            continue
        rest = {k: v for k, v in value.items() if k != ACCOUNTS}
        for shard in shards:
            shard[BOOKMARKS][stream] = {**rest, ACCOUNTS: {}}
        for account_id, entry in value[ACCOUNTS].items():
            shards[shard_of(account_id, count)][BOOKMARKS][stream][ACCOUNTS][account_id] = entry
    return [compact(shard) for shard in shards]


def fresher(old: t.Any, new: t.Any) -> t.Any:
    """Of two entries for one account, the one read last (bookmark, else calendars' day)."""
    if old is None:
        return new

    def moment(entry: t.Any) -> str:
        if not isinstance(entry, t.Mapping):
            return ""
        return str(entry.get("replication_key_value") or entry.get("read_on") or "")

    return new if moment(new) > moment(old) else old
