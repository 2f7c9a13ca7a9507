"""The state as written: values most accounts' entries share, said once per stream.

An hourly run leaves nearly every account of a stream with the same bookmark, scope,
horizon and day of last full read, so a STATE line spelled out per account repeats them
100,000 times. ``compact`` writes such values once, in the stream's ``shared`` object under
a digest of their content (``{"3fa9c1e07b2d": {...}}``), and each account's entry as a list:
the digest of the values it shares, then (when any) an object of what differs from them, a
different value or ``null`` where the entry has no such key. Every object entry is written
so, even when nothing is shared. ``expand`` undoes it, in place,
when a state is loaded; an entry written before (an object) reads as it is.

Why lists and digests: Meltano merges a failed run's partial state onto the last complete
one key by key, recursing into objects. A list is replaced whole, and a digest names the
very values an entry was written against, so a merged state still expands to each
account's own entry, whichever run wrote it.
"""

from __future__ import annotations

import collections
import hashlib
import json
import typing as t

# The state's format, written into every STATE: 1, entries spelled out (0.2); 2, shared
# values as one object (6ffc80f..9a4b93d); 3, entries as lists naming a digest (9af9575 on;
# the number written from 2d4c081's successor); 4, scheduling_requests' entries with a tier
# and the hour of their last query. A reader meeting a newer one says so.
FORMAT = 4
FORMAT_KEY = "tap_cronofy_state_format"
ACCOUNTS = "accounts"  # a stream state's per-account entries (free_busy, calendars)
SHARED = "shared"  # a stream state's shared values, by the digest of their content
BOOKMARKS = "bookmarks"


def compact(state: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """A copy of a Singer ``state`` with its per-account entries compacted (the input, live
    during a run, is left as it is)."""
    out = dict(state)
    bookmarks = state.get(BOOKMARKS)
    if isinstance(bookmarks, t.Mapping):
        out[FORMAT_KEY] = FORMAT
        out[BOOKMARKS] = {
            stream: compact_stream(value) if _has_accounts(value) else value
            for stream, value in bookmarks.items()
        }
    return out


def expand(state: dict[str, t.Any]) -> dict[str, t.Any]:
    """``state`` with every stream's entries spelled out again, in place (and returned)."""
    state.pop(FORMAT_KEY, None)  # said again on every write
    bookmarks = state.get(BOOKMARKS)
    if isinstance(bookmarks, dict):
        for value in bookmarks.values():
            if _has_accounts(value):
                value[ACCOUNTS] = _expanded_entries(value)
                value.pop(SHARED, None)
    return state


def newer_format(state: t.Mapping[str, t.Any]) -> str | None:
    """What to say when ``state`` was written in a format newer than this release reads."""
    written = state.get(FORMAT_KEY)
    if isinstance(written, int) and not isinstance(written, bool) and written > FORMAT:
        return (
            f"The state was written by a newer tap-cronofy (state format {written}; this "
            f"release reads up to {FORMAT}): upgrade tap-cronofy (nothing was requested, the "
            "state is untouched)."
        )
    return None


def compact_stream(value: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    entries = _expanded_entries(value)
    shared = _shared(entries.values())
    out = {k: v for k, v in value.items() if k not in (ACCOUNTS, SHARED)}
    digest = _digest(shared)  # even of nothing: every entry a list, as Meltano's merge needs
    out[SHARED] = {digest: shared}
    out[ACCOUNTS] = {
        account_id: _written(entry, digest, shared) for account_id, entry in entries.items()
    }
    return out


def _has_accounts(value: t.Any) -> bool:
    return isinstance(value, t.Mapping) and isinstance(value.get(ACCOUNTS), t.Mapping)


def _digest(values: t.Mapping[str, t.Any]) -> str:
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _written(entry: t.Any, digest: str, shared: t.Mapping[str, t.Any]) -> t.Any:
    """An entry as written: ``[digest]`` or ``[digest, differences]``; a non-object as is."""
    if not isinstance(entry, t.Mapping):
        return entry
    differs = {k: v for k, v in entry.items() if not (k in shared and _same(v, shared[k]))}
    differs.update((k, None) for k in shared if k not in entry)
    return [digest, differs] if differs else [digest]


def _expanded_entries(value: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    shared = value.get(SHARED)
    bases = shared if isinstance(shared, t.Mapping) else {}
    if bases and not any(isinstance(v, t.Mapping) for v in bases.values()):
        # Format 2 (6ffc80f..9a4b93d): one object of shared values, entries objects of
        # what differs from it.
        return {
            account_id: _merged(bases, entry) if isinstance(entry, t.Mapping) else entry
            for account_id, entry in value[ACCOUNTS].items()
        }
    out = {}
    for account_id, entry in value[ACCOUNTS].items():
        if not _is_written(entry):
            out[account_id] = entry  # an object as spelled out before, or not ours
            continue
        base = bases.get(entry[0])
        if not isinstance(base, t.Mapping):  # its values are lost: read it whole again
            out[account_id] = {}
            continue
        out[account_id] = _merged(base, entry[1] if len(entry) > 1 else {})
    return out


def _merged(base: t.Mapping[str, t.Any], differs: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """An entry spelled out: the shared values, then what differs (``null``: no such key)."""
    full = {k: v for k, v in base.items() if k not in differs}
    full.update((k, v) for k, v in differs.items() if not (k in base and v is None))
    return full


def _is_written(entry: t.Any) -> bool:
    return (
        isinstance(entry, list)
        and len(entry) in (1, 2)
        and isinstance(entry[0], str)
        and (len(entry) == 1 or isinstance(entry[1], t.Mapping))
    )


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


def _same(a: t.Any, b: t.Any) -> bool:
    return type(a) is type(b) and a == b
