"""The state as written: values most accounts' entries share, said once per stream.

An hourly run leaves nearly every account of a stream with the same bookmark, scope,
horizon and day of last full read, so a STATE line spelled out per account repeats them
100,000 times. ``compact`` moves each such value into the stream's ``shared`` entry (the
value most entries hold, when at least two do) and keeps in an entry only what differs:
a different value, or ``null`` where the entry has no such key. ``expand`` undoes it, in
place, when a state is loaded. A state written before (no ``shared``) expands to itself.
"""

from __future__ import annotations

import collections
import typing as t

ACCOUNTS = "accounts"  # a stream state's per-account entries (free_busy, calendars)
SHARED = "shared"  # a stream state's values shared by most of its entries
BOOKMARKS = "bookmarks"


def compact(state: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """A copy of a Singer ``state`` with its per-account entries compacted (the input, live
    during a run, is left as it is)."""
    out = dict(state)
    bookmarks = state.get(BOOKMARKS)
    if isinstance(bookmarks, t.Mapping):
        out[BOOKMARKS] = {
            stream: compact_stream(value) if _has_accounts(value) else value
            for stream, value in bookmarks.items()
        }
    return out


def expand(state: dict[str, t.Any]) -> dict[str, t.Any]:
    """``state`` with every stream's entries spelled out again, in place (and returned)."""
    bookmarks = state.get(BOOKMARKS)
    if isinstance(bookmarks, dict):
        for value in bookmarks.values():
            if _has_accounts(value):
                expand_stream(value)
    return state


def compact_stream(value: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    entries = _expanded_entries(value)
    shared = _shared(entries.values())
    out = {k: v for k, v in value.items() if k not in (ACCOUNTS, SHARED)}
    if shared:
        out[SHARED] = shared
    out[ACCOUNTS] = {account_id: _difference(e, shared) for account_id, e in entries.items()}
    return out


def expand_stream(value: dict[str, t.Any]) -> None:
    value[ACCOUNTS] = _expanded_entries(value)
    value.pop(SHARED, None)


def _has_accounts(value: t.Any) -> bool:
    return isinstance(value, t.Mapping) and isinstance(value.get(ACCOUNTS), t.Mapping)


def _expanded_entries(value: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    shared = value.get(SHARED)
    entries = value[ACCOUNTS]
    if not isinstance(shared, t.Mapping) or not shared:
        return dict(entries)
    out = {}
    for account_id, entry in entries.items():
        if not isinstance(entry, t.Mapping):
            out[account_id] = entry
            continue
        full = {k: v for k, v in shared.items() if k not in entry}
        full.update((k, v) for k, v in entry.items() if not (k in shared and v is None))
        out[account_id] = full
    return out


def _shared(entries: t.Iterable[t.Any]) -> dict[str, t.Any]:
    """Each key's most common scalar value, where at least two entries hold it and no
    entry holds ``null`` there (``null`` marks an entry without the key)."""
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    with_null: set[str] = set()
    for entry in entries:
        if not isinstance(entry, t.Mapping):
            continue
        for key, v in entry.items():
            if v is None:
                with_null.add(key)
            elif isinstance(v, (str, int, float)):  # bool is an int: kept apart by type
                counts[key][(type(v).__name__, v)] += 1
    shared = {}
    for key, counter in counts.items():
        (_, value), seen = counter.most_common(1)[0]
        if seen >= 2 and key not in with_null:
            shared[key] = value
    return shared


def _difference(entry: t.Any, shared: t.Mapping[str, t.Any]) -> t.Any:
    if not isinstance(entry, t.Mapping):
        return entry
    out = {k: v for k, v in entry.items() if not (k in shared and _same(v, shared[k]))}
    out.update((k, None) for k in shared if k not in entry)
    return out


def _same(a: t.Any, b: t.Any) -> bool:
    return type(a) is type(b) and a == b
