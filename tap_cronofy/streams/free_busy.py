"""free_busy: each account's periods, read incrementally, its window followed as time passes."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import typing as t
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfoNotFoundError

import pendulum
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_cronofy import zones
from tap_cronofy.changelog import DISCONNECTED, ChangeLog, describe
from tap_cronofy.client import Reply, format_time
from tap_cronofy.errors import (
    AccountError,
    ChangeLogError,
    ExpiredPageError,
    ParameterError,
)
from tap_cronofy.prefetch import OrderedPrefetcher
from tap_cronofy.report import first_sync_warning, plural
from tap_cronofy.schemas import FREE_BUSY
from tap_cronofy.statecodec import ACCOUNTS
from tap_cronofy.streams.base import CronofyStream
from tap_cronofy.window import (
    DAYS_AHEAD,
    DAYS_BACK,
    HORIZON,
    NOTIFIED,
    Read,
    bounds,
    change_due,
    completed,
    earlier_to,
    first_read,
    follow_up,
    needs_full_read,
    needs_today,
    server_date,
    stalest_first,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from singer_sdk.helpers.types import Context

    from tap_cronofy.accounts import AccountCredential

COLLISION_EXAMPLES = 3


@dataclass
class Page:
    records: list[dict]
    extracted_at: dt.datetime  # when the answer arrived


@dataclass
class Outcome:
    """What an account's run ends with: its new state and what was read."""

    state: dict = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)
    done: list[Read] = field(default_factory=list)  # the reads made, as made
    pages: int = 0
    records: int = 0
    deleted: int = 0
    outside: int = 0  # periods outside what the run keeps, emitted marked deleted
    collisions: list[tuple[str, str]] = field(default_factory=list)
    calendar_ids: set[str] = field(default_factory=set)  # of the periods read


class FreeBusyStream(CronofyStream):
    """Free-busy periods of every configured account, stalest account first."""

    name = "free_busy"
    primary_keys: t.ClassVar[list[str]] = ["account_id", "calendar_id", "event_uid"]
    replication_key = "last_modified"
    is_sorted = False
    schema = FREE_BUSY
    # Records are built with exact types; the SDK's per-record conformance is not needed.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._states: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._clamp_warned = False
        self._position: int | None = None  # change-driven mode: the log's, at the run's start
        self._log_id: int | None = None  # ... and the log's identity
        self._since: dict[str, str] = {}  # ... and each account's earliest changes_since
        self._today_lock = threading.Lock()
        self._why: dict[str, str] = {}  # change-driven mode: why each account is queried

    @property
    def partitions(self) -> None:
        """None: one sync over every account, whose states live in one dict by account id
        (found in O(1), where the SDK's partition list is scanned per lookup)."""
        return None

    def account_states(self) -> dict[str, dict]:
        """The stream state's accounts: those no longer configured dropped, and partitions
        left by earlier versions of the tap moved in."""
        state = self.stream_state
        states = state.get(ACCOUNTS)
        if not isinstance(states, dict):
            states = {}
        for partition in state.pop("partitions", None) or ():
            account_id = (partition.get("context") or {}).get("account_id")
            if account_id and account_id not in states:
                states[account_id] = {
                    k: v for k, v in partition.items() if k not in ("context", "replication_key")
                }
        if gone := self.services.accounts().gone(states):
            self.logger.info(
                "Dropping %d account(s) no longer configured from free_busy state.", len(gone)
            )
            for account_id in gone:
                del states[account_id]
        state[ACCOUNTS] = states
        self.state_manager.is_flushed = False
        return states

    # Records, in the main thread

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        ids = self.services.accounts().ids()
        self._states = self.account_states()
        order = stalest_first(ids, self._states)
        new = sum(1 for account_id in ids if account_id not in self._states)
        per_minute = self.settings.requests_per_minute
        if warning := first_sync_warning(new=new, configured=len(ids), per_minute=per_minute):
            self.logger.warning(warning)
        if self.settings.change_log:
            order = self.changed_accounts(order)
        prefetcher = OrderedPrefetcher(
            order, self.account_pages, workers=self.settings.max_parallel_accounts
        )
        for done, account_id in enumerate(order, 1):
            outcome: Outcome | None = None
            try:
                for item in prefetcher.items(account_id):
                    if isinstance(item, Outcome):
                        outcome = item
                    else:
                        self.extracted_at = item.extracted_at
                        yield from item.records
            except Exception as exc:  # of this account's: it alone fails
                # Finish the other accounts; this one's bookmark stays where it was.
                self.account_failed(account_id, exc)
            if outcome is not None:
                self._save(account_id, outcome)
            self.services.checkpoint(done, len(order))

    def changed_accounts(self, order: list[str]) -> list[str]:
        """Change-driven mode: the accounts ``change_due`` says to query, in ``order``; the
        others are left as they are, with no request. The log's position is read before
        any query, so a notification that arrives during the run is served by the next."""
        settings = self.settings
        positions = [s[NOTIFIED] for s in self._states.values() if NOTIFIED in s]
        target = t.cast(str, settings.change_log)
        try:
            log = ChangeLog(target)
            shard = order if settings.shard is not None else None  # only its accounts' rows
            last, pruned, pending = log.snapshot(min(positions, default=0), shard)
            with_channel = set(log.channels().values())
        except Exception as exc:  # sqlite3 or psycopg: either way nothing can be decided
            raise ChangeLogError(
                f"The change log ({describe(target)}) cannot be read: {type(exc).__name__}: "
                f"{exc}. Nothing was requested; check `change_log` and that the receiver's "
                "database is reachable, or unset `change_log` to poll every account."
            ) from exc
        if without := [a for a in order if a not in with_channel]:
            self.logger.warning(
                "%s no notification channel in the change log (e.g. %s): Cronofy cannot "
                "tell the tap of their changes, which are read by their daily sweep only. "
                "Run `tap-cronofy-push channels` (and keep `tap-cronofy-push receive` running).",
                "1 account has" if len(without) == 1 else f"{len(without)} accounts have",
                without[0],
            )
        now = self.client.clock()
        tally = self.services.report.tally(self.name)
        chosen = []
        for account_id in order:
            state = self._states.get(account_id) or {}
            entry = pending.get(account_id)
            kinds = entry.since(state.get(NOTIFIED, 0)) if entry is not None else []
            if DISCONNECTED in kinds:
                self.logger.warning(
                    "Account %s: Cronofy notified that one of its calendar profiles was "
                    "disconnected: its owner must re-authorise it (relink the calendar); "
                    "periods of that calendar stop changing until then.",
                    account_id,
                )
            reason = change_due(state, settings, kinds, pruned, account_id, now, log.log_id)
            if reason is None:
                self.services.unqueried.add(account_id)
                continue
            self._why[account_id] = reason
            if kinds and entry is not None and entry.changes_since:
                self._since[account_id] = entry.changes_since
            tally.queried[reason.split(" (", 1)[0]] += 1
            chosen.append(account_id)
        tally.unqueried = len(order) - len(chosen)
        self._position = last
        self._log_id = log.log_id
        self.logger.info(
            "Change-driven: %s of %d queried (change log %s at position %d); %d unchanged, "
            "with no request.",
            plural(len(chosen), "account"),
            len(order),
            log.describe(),
            last,
            tally.unqueried,
        )
        return chosen

    def _save(self, account_id: str, outcome: Outcome) -> None:
        before = self._states.get(account_id, {}).get("replication_key_value")
        state = self._states[account_id] = outcome.state
        self.services.seen_calendars[account_id] = outcome.calendar_ids
        tally = self.services.report.tally(self.name)
        tally.accounts += 1
        tally.pages += outcome.pages
        tally.records += outcome.records
        tally.deleted += outcome.deleted
        tally.collisions += len(outcome.collisions)
        tally.reads.update(read.split(" ", 1)[0] for read in outcome.reads)
        why = self._why.get(account_id)
        self.logger.info(
            "Account %s: %s; %s, %s (%d deleted, %d left the window: marked deleted); "
            "bookmark %s -> %s, "
            "window read up to %s.",
            account_id if why is None else f"{account_id} ({why})",
            "; ".join(outcome.reads),
            plural(outcome.pages, "page"),
            plural(outcome.records, "period"),
            outcome.deleted,
            outcome.outside,
            before or "none",
            state.get("replication_key_value"),
            state.get(HORIZON),
        )
        if outcome.collisions:
            self.logger.warning(
                "Account %s: %d periods shared a key (calendar_id, event_uid) with another "
                "period of the same query; a merging target keeps only one of each. "
                "Examples: %s",
                account_id,
                len(outcome.collisions),
                ", ".join(f"{c}/{u}" for c, u in outcome.collisions[:COLLISION_EXAMPLES]),
            )

    # Pages, in prefetch workers

    def account_pages(self, account_id: str) -> Iterator[Page | Outcome]:
        """An account's queries (as ``window`` plans them) as pages of records, then its
        ``Outcome``."""
        state = self._states.get(account_id, {})
        budget = self.services.budget()
        if not budget.admit(account_id, state.get("replication_key_value")):
            return  # waits for the next run: nothing is read, its state stays
        try:
            yield from self._account_pages(account_id, state)
        finally:
            budget.finished(account_id)

    def _account_pages(self, account_id: str, state: dict) -> Iterator[Page | Outcome]:
        settings = self.settings
        accounts = self.services.accounts()
        credential = accounts.credential(account_id)
        emitted: set[int] = set()  # keys emitted by this run's earlier queries (they overlap)
        today: pendulum.Date | None = None
        if needs_full_read(state, settings) is not None and needs_today(settings):
            today = self._today(account_id, credential)
            self._warn_if_clamped(today)
        read = first_read(
            state, settings, today, format_time(_utcnow()), self._since.get(account_id)
        )
        if read.kind == "incremental" and today is not None:
            self.logger.warning(
                "Account %s: start_date/end_date leave no days inside Cronofy's window "
                "(42 days back, 201 ahead); nothing will be emitted.",
                account_id,
            )
        outcome = Outcome()
        first_reply = yield from self._query(account_id, credential, read, emitted, outcome)
        today = server_date(first_reply, settings.tzid)
        if (extra := follow_up(state, settings, account_id, today, read)) is not None:
            yield from self._query(account_id, credential, extra, emitted, outcome)
        watermark = format_time(first_reply)
        outcome.state = completed(
            state, settings, outcome.done, today, watermark, self._position, self._log_id
        )
        yield outcome

    def _today(self, account_id: str, credential: AccountCredential) -> pendulum.Date:
        """Today by Cronofy's clock (the far edge of a full read depends on it); asked of
        Cronofy (a due token refresh, else the account's userinfo, which the accounts stream
        reuses) when no answer of this run has told it yet: by one worker, the others waiting
        for its answer rather than each asking."""
        with self._today_lock:
            now = self.client.server_now()
            if now is None:  # a due token refresh answers with Cronofy's Date too
                credential.bearer(self.client)
                now = self.client.server_now()
            if now is None:
                self.services.accounts().userinfo(account_id)
                now = self.client.server_now()
        return server_date(now or _utcnow(), self.settings.tzid)

    def _warn_if_clamped(self, today: pendulum.Date) -> None:
        """Once per run: start_date/end_date beyond what Cronofy serves today."""
        settings = self.settings
        with self._lock:
            if self._clamp_warned:
                return
            self._clamp_warned = True
        earliest, latest = today.subtract(days=DAYS_BACK), today.add(days=DAYS_AHEAD)
        if settings.start_date and settings.start_date < earliest:
            self.logger.warning(
                "start_date %s is further back than Cronofy allows (42 days); using %s.",
                settings.start_date,
                earliest,
            )
        if settings.end_date and settings.end_date > latest:
            self.logger.warning(
                "end_date %s is further ahead than Cronofy allows (201 days); using %s.",
                settings.end_date,
                latest,
            )

    def _query(
        self,
        account_id: str,
        credential: AccountCredential,
        read: Read,
        emitted: set[int],
        outcome: Outcome,
    ) -> t.Generator[Page, None, dt.datetime]:
        """Every page of one query; restarts once if a page token expires, and once a day
        earlier if Cronofy refuses its ``to`` (422). Returns the time (Cronofy's clock) of
        its first answer. Nothing is emitted before the answer's userinfo says the token is
        the account's own; a period outside what the run keeps is emitted marked deleted."""
        settings = self.settings
        zone = settings.tzid
        accounts = self.services.accounts()
        first: dt.datetime | None = None
        restarted = narrowed = False
        calendar_ids = outcome.calendar_ids
        while True:
            # Keys of this query, to notice two periods sharing one. The run's first query
            # uses the run's set itself (nothing precedes it), so one set holds each key.
            seen: set[int] = emitted if not emitted else set()
            url: str | None = self.client.url("/v1/free_busy")
            params: dict | None = read.params
            try:
                while url:
                    reply = self.client.get(url, params=params, credential=credential)
                    if first is None:
                        first = reply.server_time
                        window_ = bounds(settings, server_date(first, zone))
                    if params is not None:  # a first page: it embeds the userinfo
                        userinfo = reply.body.get("userinfo")
                        sub = userinfo.get("sub") if isinstance(userinfo, dict) else None
                        accounts.verify(account_id, sub)
                        accounts.remember_userinfo(account_id, userinfo)
                    watermark = format_time(first)
                    records = []
                    for period in periods(reply, account_id):
                        try:
                            record = make_record(period, account_id, watermark, zone)
                        except (
                            ValueError,
                            TypeError,
                            AttributeError,
                            ZoneInfoNotFoundError,
                        ) as exc:
                            raise unreadable(account_id, period, exc) from exc
                        if record["calendar_id"]:
                            calendar_ids.add(record["calendar_id"])
                        managed = record["event_id"] is not None
                        if not window_.keeps(record["start_time"], record["end_time"], managed):
                            outcome.outside += 1
                            if record["_sdc_deleted_at"] is None:
                                record["_sdc_deleted_at"] = watermark
                        key = hash((record["calendar_id"], record["event_uid"]))
                        if key in seen:
                            outcome.collisions.append((record["calendar_id"], record["event_uid"]))
                        elif key in emitted:
                            continue  # read by an earlier query of this run, or before a restart
                        seen.add(key)
                        records.append(record)
                    outcome.pages += 1
                    outcome.records += len(records)
                    outcome.deleted += sum(1 for r in records if r["deleted"])
                    yield Page(records, _utcnow())
                    url = (reply.body.get("pages") or {}).get("next_page") or None
                    params = None  # next_page is absolute and complete
                outcome.reads.append(read.label)
                outcome.done.append(read)
                return first  # type: ignore[return-value]  # set by the first reply
            except ParameterError as exc:
                earlier = earlier_to(read) if "to" in exc.fields and not narrowed else None
                if earlier is None or params is None:
                    raise
                self.logger.warning(
                    "Account %s: Cronofy refused `to` %s as too far ahead (its clock and the "
                    "tap's disagree on the date); reading to %s instead, once.",
                    account_id,
                    read.params["to"],
                    earlier.params["to"],
                )
                read, narrowed = earlier, True
            except ExpiredPageError as exc:
                if restarted:
                    raise AccountError(
                        account_id,
                        f"{exc} again after restarting the query of account {account_id}; "
                        "its pages expire faster than they are read. Run the tap again.",
                        status=404,
                    ) from exc
                self.logger.warning(
                    "A next_page URL of account %s expired (404); restarting its query once.",
                    account_id,
                )
                restarted = True
            finally:
                if seen is not emitted:  # later queries and a restart skip these keys
                    emitted.update(seen)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@lru_cache(maxsize=8192)
def _to_utc(value: str, zone: str) -> str:
    """A Cronofy Date (midnight in ``zone``) or a Time with an offset, in UTC; ValueError
    (or ZoneInfoNotFoundError) for anything else, so no record carries an unreadable time."""
    if len(value) == 10:
        midnight = dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), zones.zone(zone))
        return format_time(midnight)
    if len(value) < 20 or value[10] != "T":
        raise ValueError(f"{value[:40]!r} is neither a date nor a time")
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{value[:40]!r} has no offset")
    return format_time(moment)


def _utc_time(value: str | None, zone: str) -> str | None:
    """A period boundary as a UTC time string, checked."""
    if not value:
        return None
    return _to_utc(value, zone)


def _text(period: dict, name: str, *, required: bool = False) -> str | None:
    value = period.get(name)
    if isinstance(value, str) and (value or not required):
        return value
    if value is None and not required:
        return None
    raise ValueError(f"`{name}` is {type(value).__name__} {str(value)[:40]!r}, not a string")


def _boundary(value: object, name: str) -> tuple[str | None, str | None]:
    """A period's ``start``/``end``: a Date or Time string, or (``localized_times``) an
    object of ``time`` and ``tzid``."""
    if isinstance(value, dict):
        time, tzid = value.get("time"), value.get("tzid")
        if isinstance(time, str) and (tzid is None or isinstance(tzid, str)):
            return time, tzid
    elif value is None or isinstance(value, str):
        return value, None
    raise ValueError(f"`{name}` is {type(value).__name__} {str(value)[:40]!r}")


# What building a record raises for a value it cannot read (ZoneInfoNotFoundError: a zone
# neither the tzdata package nor the host has).
UNREADABLE = (ValueError, TypeError, AttributeError, KeyError, ZoneInfoNotFoundError)


def periods(reply: Reply, account_id: str) -> list:
    """The answer's periods; an answer without its ``free_busy`` list fails the account
    (an empty list is an account with nothing busy, a missing one an answer not understood)."""
    found = reply.body.get("free_busy")
    if isinstance(found, list):
        return found
    raise AccountError(
        account_id,
        f"Cronofy's free_busy answer for account {account_id} has no `free_busy` list "
        f"(got {type(found).__name__}): nothing of it was loaded and its bookmark is kept.",
    )


def unreadable(account_id: str, period: object, exc: BaseException) -> AccountError:
    cause = f"{type(exc).__name__}: {str(exc)[:200]}"
    return AccountError(
        account_id,
        f"Cronofy's free_busy answer for account {account_id} holds a {period_key(period)} "
        f"the tap cannot read ({cause}): the account's bookmark is kept and it is read again "
        "next run; the other accounts go on.",
    )


def period_key(period: object) -> str:
    """How an error names a period: its calendar and event, as far as they can be read."""
    if not isinstance(period, dict):
        return f"period that is a {type(period).__name__}, not an object"
    parts = [str(period.get(k))[:60] for k in ("calendar_id", "event_uid") if period.get(k)]
    return "period " + ("/".join(parts) if parts else "without calendar_id or event_uid")


def make_record(period: dict, account_id: str, watermark: str, zone: str) -> dict:
    """A free_busy record from a Cronofy period, with the types the schema declares;
    ValueError (or ZoneInfoNotFoundError, TypeError) when a field cannot be read as that."""
    start, start_tzid = _boundary(period.get("start"), "start")
    end, end_tzid = _boundary(period.get("end"), "end")
    deleted = period.get("deleted") or False
    if not isinstance(deleted, bool):
        raise ValueError(f"`deleted` is {type(deleted).__name__}, not a boolean")
    calendar_id = _text(period, "calendar_id", required=True)
    all_day = isinstance(start, str) and len(start) == 10
    event_uid = _text(period, "event_uid")
    if not event_uid:  # only without include_ids; keep the key non-null and stable
        digest = hashlib.sha1(f"{calendar_id}|{start}|{end}".encode(), usedforsecurity=False)
        event_uid = f"period_{digest.hexdigest()[:20]}"
    return {
        "account_id": account_id,
        "calendar_id": calendar_id,
        "event_uid": event_uid,
        "event_id": _text(period, "event_id"),
        "start": start,
        "end": end,
        "start_tzid": start_tzid,
        "end_tzid": end_tzid,
        # One rule, Cronofy's: its window is by the query's tzid, so an all-day date starts
        # at midnight in ``zone`` whatever its own tzid (a time carries its offset).
        "start_time": _utc_time(start, zone),
        "end_time": _utc_time(end, zone),
        "all_day": all_day,
        "start_date": start if all_day else None,  # checked a date by _utc_time above
        "end_date": end if all_day and end and len(end) == 10 else None,
        "free_busy_status": _text(period, "free_busy_status"),
        "deleted": deleted,
        "last_modified": watermark,
        "_sdc_deleted_at": watermark if deleted else None,
    }
