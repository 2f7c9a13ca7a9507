"""The simulated Cronofy: accounts, events, tokens and scheduling requests, with the
behaviour of the two API documents in ``../shared/cronofy-docs`` (free-busy and the
scheduling request query) and the facts of ``cronofy-api-notes.md``.

Everything is deterministic for a given seed. All methods are thread safe.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import random
import secrets
import threading
import time
import typing as t
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from simulator.push import MAX_CHANNELS, Notifier, new_channel

UTC = dt.timezone.utc
DAYS_BACK = 42
DAYS_AHEAD = 201
STATUSES = ("busy", "tentative", "free", "unknown")
SLOT_SELECTIONS = ("pending", "pending_rescheduling", "complete", "expired", "cancelled")
_ZONES = set(available_timezones()) | {"Etc/UTC", "UTC"}


class RawJSON(bytes):
    """A JSON body already rendered (pages are rendered once and served as bytes)."""


class APIError(Exception):
    """An HTTP error answer: status, JSON body and extra headers."""

    def __init__(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body if body is not None else {}
        self.headers = headers or {}


def field_error(name: str, key: str, description: str) -> APIError:
    return APIError(422, {"errors": {name: [{"key": key, "description": description}]}})


def fmt_time(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# Fields of a calendar that real lists may leave out (tests/fixtures/sdk/calendars-*.json).
OPTIONAL_CALENDAR_FIELDS = (
    "profile_id",
    "calendar_primary",
    "permission_level",
    "calendar_color",
    "calendar_integrated_conferencing_available",
    "calendar_attachments_available",
)


@dataclass
class Event:
    calendar_id: str
    event_uid: str
    start: str  # a Date (all day) or a UTC Time, as Cronofy stores it
    end: str
    status: str
    last_modified: float  # simulator clock, epoch seconds
    managed: bool = False
    event_id: str | None = None
    deleted: bool = False
    tzid: str | None = None  # the event's own zone (localized_times); None = the query's

    @property
    def all_day(self) -> bool:
        return len(self.start) == 10

    def bounds(self, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        """Start and end as aware datetimes; all-day dates are midnights in ``zone``."""
        if self.all_day:
            return (
                dt.datetime.combine(dt.date.fromisoformat(self.start), dt.time(), zone),
                dt.datetime.combine(dt.date.fromisoformat(self.end), dt.time(), zone),
            )
        return parse_time(self.start), parse_time(self.end)


@dataclass
class Series:
    """A recurring event: one occurrence every ``every_days`` from ``first`` (a UTC Time),
    forever unless ``count`` is set. Each occurrence is its own period with its own
    event_uid (``<uid>_<yyyymmdd>``); editing the series modifies every occurrence."""

    calendar_id: str
    uid: str
    first: str
    minutes: int
    every_days: int
    status: str
    last_modified: float
    count: int | None = None
    deleted: bool = False
    tzid: str | None = None

    def occurrences(self, lower: dt.datetime, upper: dt.datetime) -> list[Event]:
        """Occurrences overlapping [lower, upper)."""
        start = parse_time(self.first)
        step = dt.timedelta(days=self.every_days)
        length = dt.timedelta(minutes=self.minutes)
        skip = max(0, int((lower - length - start) / step))
        made = []
        number = skip
        while self.count is None or number < self.count:
            begin = start + number * step
            if begin >= upper:
                break
            if begin + length >= lower:
                made.append(
                    Event(
                        calendar_id=self.calendar_id,
                        event_uid=f"{self.uid}_{begin:%Y%m%d}",
                        start=fmt_time(begin),
                        end=fmt_time(begin + length),
                        status=self.status,
                        last_modified=self.last_modified,
                        deleted=self.deleted,
                        tzid=self.tzid,
                    )
                )
            number += 1
        return made


@dataclass
class Account:
    account_id: str
    email: str
    name: str
    access_token: str
    refresh_token: str
    calendars: list[str]
    events: dict[tuple[str, str], Event] = field(default_factory=dict)
    scopes: set[str] = field(default_factory=lambda: {"read_free_busy"})
    locked: bool = False
    revoked: bool = False
    zoneinfo: str = "Europe/London"
    token_issued: float = 0.0  # simulator clock; the access token expires token_lifetime later
    series: dict[str, Series] = field(default_factory=dict)
    calendar_names: dict[str, str] = field(default_factory=dict)  # renamed calendars
    channels: dict[str, dict] = field(default_factory=dict)  # push notification channels


@dataclass
class Fault:
    """One injected failure. ``kind``: status, drop, truncate, garbage, delay, redirect."""

    kind: str = "status"
    status: int = 500
    times: int = 1
    path: str = "/"  # applies to request paths starting with this
    retry_after: str | None = None
    seconds: float = 0.0  # for delay
    location: str | None = None  # for redirect
    account_id: str | None = None  # only requests carrying this account's token
    body: dict | None = None  # JSON body of a status fault
    after: int = 0  # let this many matching requests through first
    method: str | None = None  # only requests of this method (GET, POST, ...)


def empty_next_page(account_id: str) -> bool:
    """Whether an account's last pages say ``"next_page": ""`` rather than omitting it
    (both occur in Cronofy's SDK fixtures): fixed per account, about half of them."""
    return hashlib.sha256(account_id.encode()).digest()[0] % 2 == 1


@dataclass
class Query:
    account_id: str
    pages: list[list[dict]]
    userinfo: dict | None


class Simulator:
    """State and behaviour of the simulated API."""

    def __init__(
        self,
        seed: int = 7,
        accounts: int = 3,
        events_per_account: int = 60,
        page_size: int = 25,
        scheduling_requests: int = 40,
    ) -> None:
        self.lock = threading.RLock()
        self.client_id = "sim-client-id"
        self.client_secret = "sim-client-secret-9f8e7d"
        self.scheduler_plan = True
        self.scheduler_secret: str | None = None  # an Internal Application's; else client_secret
        self.rotate_refresh_tokens = False  # Cronofy returns the same refresh token (its docs)
        self.token_lifetime = 3600
        self.sync_lag = 0.0  # a change is stamped last_modified this many seconds in the past
        self.clock_offset = 0.0
        self.latency = 0.0
        self.page_size = page_size
        self.rate_limits: list[tuple[int, float]] = []
        self.next_page_host: str | None = None
        self.faults: list[Fault] = []
        # Per account: a function that rewrites each free_busy answer (page) it is served,
        # as a malformed Cronofy answer would be (in-process tests only).
        self.corruptions: dict[str, t.Callable[[dict], object]] = {}
        self.send_retry_after = True  # on a 429 of rate_limits
        self.product_requests = 0  # the customer's product on the same quota
        self.product_refused = 0
        self.requests: list[dict] = []
        self.log_bodies = True
        self._token_index: dict[str, dict[str, Account]] = {}
        self._codes: dict[str, tuple[str, str]] = {}  # authorization code -> account, redirect
        # Answers that do not say whose they are (the tap must then look the account up):
        self.embed_userinfo = True  # free_busy honours include_userinfo
        self.calendars_sub = True  # /v1/calendars carries the account's sub
        # False: calendar lists without the optional fields real lists omit (cronofy-ruby's
        # '#list_calendars' stub: no profile_id, calendar_primary, permission_level, ...)
        self.calendars_optional = True
        self._served: list[float] = []
        self.rate_limited_count = 0
        self._queries: dict[str, Query] = {}
        self._query_cache: dict[tuple, str] = {}
        self._rendered: dict[tuple, tuple[RawJSON, str | None]] = {}
        self.version = 0  # bumped by every data change; cached query results depend on it
        self._pages: dict[str, tuple[str, int]] = {}
        self.accounts: dict[str, Account] = {}
        self.scheduling: dict[str, dict] = {}
        self._created: dict[str, float] = {}
        self.notifier = Notifier(self.client_secret)
        self.reset(
            seed=seed,
            accounts=accounts,
            events_per_account=events_per_account,
            scheduling_requests=scheduling_requests,
        )

    # Clock

    def now(self) -> float:
        return time.time() + self.clock_offset

    def now_dt(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now(), UTC)

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.clock_offset += seconds

    # Seed data

    def reset(
        self,
        *,
        seed: int = 7,
        accounts: int = 3,
        events_per_account: int = 60,
        scheduling_requests: int = 40,
    ) -> None:
        with self.lock:
            self.version += 1
            rng = random.Random(seed)
            self.accounts = {}
            self._queries.clear()
            self._pages.clear()
            self._codes.clear()
            for index in range(accounts):
                self.add_account(rng, index, events_per_account)
            self.scheduling = {}
            self._created = {}
            for index in range(scheduling_requests):
                self._seed_scheduling_request(rng, index)

    def add_account(self, rng: random.Random, index: int, events: int) -> Account:
        account_id = f"acc_{index:04d}{rng.getrandbits(40):010x}"
        calendars = [f"cal_{account_id[4:]}_{n}@sim" for n in range(1 + index % 3)]
        account = Account(
            account_id=account_id,
            email=f"user{index}@example.com",
            name=["Zoë Ångström", "José Núñez", "李小龙", "Ada Lovelace"][index % 4],
            zoneinfo=["Europe/London", "America/Chicago", "Asia/Tokyo", "Europe/Paris"][index % 4],
            access_token=f"sim-at-{index}-{rng.getrandbits(64):016x}",
            refresh_token=f"sim-rt-{index}-{rng.getrandbits(64):016x}",
            calendars=calendars,
            token_issued=self.now(),
        )
        self.accounts[account_id] = account
        self.add_events(account_id, events, rng)
        return account

    def add_bulk_events(self, account_id: str, count: int) -> None:
        """``count`` plain timed events inside the default window (for benchmarks)."""
        with self.lock:
            self.version += 1
            account = self.accounts[account_id]
            start = self.now_dt().replace(hour=0, minute=0, second=0, microsecond=0)
            stamp = self.now() - 86400
            for number in range(count):
                begin = start + dt.timedelta(minutes=15 * (number % 12000))
                uid = f"evt_bulk_{number:08d}"
                calendar = account.calendars[number % len(account.calendars)]
                account.events[(calendar, uid)] = Event(
                    calendar_id=calendar,
                    event_uid=uid,
                    start=fmt_time(begin),
                    end=fmt_time(begin + dt.timedelta(minutes=30)),
                    status=STATUSES[number % 2],
                    last_modified=stamp,
                )

    def add_events(
        self,
        account_id: str,
        count: int,
        rng: random.Random | None = None,
        *,
        days: tuple[int, int] = (-60, 230),
    ) -> list[Event]:
        """Seed ``count`` events: timed and all-day, every status, managed, deleted, unicode
        event ids, some outside Cronofy's default window."""
        rng = rng or random.Random(count)
        with self.lock:
            self.version += 1
            account = self.accounts[account_id]
            today = self.now_dt().replace(hour=0, minute=0, second=0, microsecond=0)
            made = []
            base = len(account.events)
            for n in range(count):
                number = base + n
                calendar = account.calendars[number % len(account.calendars)]
                day = today + dt.timedelta(days=rng.randint(*days))
                if number % 7 == 3:
                    start, end = (
                        day.date().isoformat(),
                        (day + dt.timedelta(days=1 + number % 2)).date().isoformat(),
                    )
                else:
                    begin = day + dt.timedelta(
                        hours=rng.randint(6, 20), minutes=rng.choice((0, 15, 30))
                    )
                    start, end = (
                        fmt_time(begin),
                        fmt_time(begin + dt.timedelta(minutes=rng.choice((15, 30, 60, 90)))),
                    )
                managed = number % 5 == 1
                event = Event(
                    calendar_id=calendar,
                    event_uid=f"evt_{account_id[4:12]}_{number:06d}",
                    start=start,
                    end=end,
                    status=STATUSES[number % len(STATUSES)],
                    last_modified=self.now() - rng.randint(3600, 30 * 86400),
                    managed=managed,
                    event_id=(f"réunion-{number}-日程" if number % 2 else f"app-{number}")
                    if managed
                    else None,
                    deleted=number % 11 == 5,
                )
                account.events[(calendar, event.event_uid)] = event
                made.append(event)
            self.changed(account_id)
            return made

    def _seed_scheduling_request(self, rng: random.Random, index: int) -> None:
        request_id = f"srq_{rng.getrandbits(96):024x}"
        selection = SLOT_SELECTIONS[index % len(SLOT_SELECTIONS)]
        short = request_id[4:12]
        request: dict = {
            "scheduling_request_id": request_id,
            "slot_selection": selection,
            "primary_select_url": f"https://app.cronofy.com/rts/{short}",
            "dashboard_url": f"https://app.cronofy.com/scheduler/requests/{request_id[4:]}",
            "summary": f"Interview {index} – café ☕",
            "recipient_operations": {"view_url": f"https://app.cronofy.com/rts/{short}"},
            "recipients": [
                {
                    "email": f"candidate{index}@example.com",
                    "display_name": f"Candidate {index}",
                    "slot_selector": True,
                    "select_url": f"https://app.cronofy.com/rts/{short}",
                }
            ],
            "event": {"summary": f"Interview {index} – café ☕"},
            "duration": {"minutes": 30 + 15 * (index % 3)},  # the docs' query example
        }
        if index % 3 != 0:
            request["recipient_operations"]["decline_url"] = (
                f"https://app.cronofy.com/rts/{short}?decline=true"
            )
            request["recipient_operations"]["reschedule_url"] = (
                f"https://app.cronofy.com/rts/{short}?reschedule=true"
            )
        if index % 4 == 2:
            del request["recipients"][0]["select_url"]
        if index % 2 == 0:
            request["collaborator_groups"] = [
                {
                    "name": "Interviewers",
                    "members": [{"sub": f"acc_{rng.getrandbits(48):012x}"} for _ in range(3)],
                    "required": "all" if index % 4 == 0 else 1 + index % 3,
                }
            ]
        if index % 5 == 1:
            request["buffer"] = {"before": {"minutes": 15}, "after": {"minutes": 5 * (index % 4)}}
        if index % 6 == 4:
            request["event"]["metadata"] = {"external_id": f"ext-{index}"}
        if selection == "complete":
            self._choose_slot(request, index)
        self.scheduling[request_id] = request
        self._created[request_id] = self.now() - 86400 * 30 + index * 60

    def _choose_slot(self, request: dict, index: int) -> None:
        begin = self.now_dt().replace(minute=0, second=0, microsecond=0) + dt.timedelta(
            days=2 + index
        )
        request["event"]["start"] = {"time": fmt_time(begin), "tzid": "Europe/London"}
        request["event"]["end"] = {
            "time": fmt_time(begin + dt.timedelta(minutes=30)),
            "tzid": "Europe/London",
        }

    # Changes between runs

    def modify_event(self, account_id: str, event_uid: str, **changes: object) -> Event:
        with self.lock:
            self.version += 1
            event = self._find(account_id, event_uid)
            for name, value in changes.items():
                setattr(event, name, value)
            event.last_modified = self.now() - self.sync_lag
            self.changed(account_id, managed=event.managed)
            return event

    def delete_event(self, account_id: str, event_uid: str) -> Event:
        return self.modify_event(account_id, event_uid, deleted=True)

    def create_event(self, account_id: str, **values: t.Any) -> Event:  # values: JSON
        with self.lock:
            self.version += 1
            account = self.accounts[account_id]
            values.setdefault("calendar_id", account.calendars[0])
            values.setdefault("status", "busy")
            values.setdefault("event_uid", f"evt_new_{secrets.token_hex(6)}")
            if "start" not in values:
                begin = self.now_dt().replace(minute=0, second=0, microsecond=0) + dt.timedelta(
                    days=1
                )
                values["start"] = fmt_time(begin)
                values["end"] = fmt_time(begin + dt.timedelta(hours=1))
            event = Event(last_modified=self.now() - self.sync_lag, **values)
            account.events[(event.calendar_id, event.event_uid)] = event
            self.changed(account_id, managed=event.managed)
            return event

    def add_calendar(self, account_id: str, name: str = "Projects") -> str:
        """A new calendar on the account (as when its owner creates one); its id."""
        with self.lock:
            account = self.accounts[account_id]
            number = len(account.calendars)
            while any(
                f"cal_{account_id[4:]}_{number}@sim" in known
                for known in (account.calendars, account.calendar_names)
            ):
                number += 1  # a removed calendar's id is never handed out again
            calendar_id = f"cal_{account_id[4:]}_{number}@sim"
            account.calendars.append(calendar_id)
            account.calendar_names[calendar_id] = name
            return calendar_id

    def remove_calendar(self, account_id: str, calendar_id: str) -> None:
        """The owner deletes a calendar: /v1/calendars stops listing it, and its events are
        deleted (as a provider's sync reports them)."""
        with self.lock:
            self.version += 1
            account = self.accounts[account_id]
            account.calendars.remove(calendar_id)
            account.calendar_names.setdefault(calendar_id, "(removed)")
            for event in account.events.values():
                if event.calendar_id == calendar_id and not event.deleted:
                    event.deleted = True
                    event.last_modified = self.now() - self.sync_lag
            self.changed(account_id)

    def rename_calendar(self, account_id: str, calendar_id: str, name: str) -> None:
        with self.lock:
            account = self.accounts[account_id]
            assert calendar_id in account.calendars, calendar_id
            account.calendar_names[calendar_id] = name

    def create_series(self, account_id: str, **values: t.Any) -> Series:  # values: JSON
        with self.lock:
            self.version += 1
            account = self.accounts[account_id]
            values.setdefault("calendar_id", account.calendars[0])
            values.setdefault("status", "busy")
            values.setdefault("uid", f"evt_series_{secrets.token_hex(5)}")
            values.setdefault("minutes", 60)
            values.setdefault("every_days", 7)
            series = Series(last_modified=self.now() - self.sync_lag, **values)
            account.series[series.uid] = series
            self.changed(account_id)
            return series

    def modify_series(self, account_id: str, uid: str, **changes: object) -> Series:
        with self.lock:
            self.version += 1
            series = self.accounts[account_id].series[uid]
            for name, value in changes.items():
                setattr(series, name, value)
            series.last_modified = self.now() - self.sync_lag
            self.changed(account_id)
            return series

    # Push notifications

    def changed(self, account_id: str, *, managed: bool = False) -> None:
        """A change notification to each of the account's channels; none for a managed
        event (Cronofy does not notify an application of its own changes)."""
        if not managed:
            self.notify(account_id, "change")

    def notify(self, account_id: str, kind: str) -> int:
        """A notification of ``kind`` to each channel of the account; how many."""
        with self.lock:
            channels = list(self.accounts[account_id].channels.values())
            since = fmt_time(self.now_dt())
        for channel in channels:
            notification = {"type": kind}
            if kind == "change":
                notification["changes_since"] = since
            self.notifier.send(channel, account_id, notification)
        return len(channels)

    def create_channel(self, token: str | None, body: dict) -> dict:
        account = self.authorize(token)
        url = body.get("callback_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise field_error("callback_url", "errors.required", "callback_url is required")
        with self.lock:
            if len(account.channels) >= MAX_CHANNELS:
                raise field_error("callback_url", "errors.too_many_channels", "at most 128")
            channel = new_channel(url, body.get("filters"))
            account.channels[channel["channel_id"]] = channel
        self.notifier.send(channel, account.account_id, {"type": "verification"})
        return {"channel": channel}

    def list_channels(self, token: str | None) -> dict:
        account = self.authorize(token)
        with self.lock:
            return {"channels": [dict(c) for c in account.channels.values()]}

    def close_channel(self, token: str | None, channel_id: str) -> dict:
        account = self.authorize(token)
        with self.lock:
            if account.channels.pop(channel_id, None) is None:
                raise APIError(404, {"error": "not_found"})
        return {}

    def periods_of(self, account: Account, lower: dt.datetime, upper: dt.datetime) -> list[Event]:
        """Single events and the occurrences of series between lower and upper."""
        periods = list(account.events.values())
        for series in account.series.values():
            periods.extend(series.occurrences(lower, upper))
        return periods

    def _find(self, account_id: str, event_uid: str) -> Event:
        for event in self.accounts[account_id].events.values():
            if event.event_uid == event_uid:
                return event
        raise KeyError(event_uid)

    def set_slot_selection(self, request_id: str, selection: str) -> dict:
        with self.lock:
            request = self.scheduling[request_id]
            request["slot_selection"] = selection
            if selection == "complete" and "start" not in request["event"]:
                self._choose_slot(request, 3)
            return request

    def expire_access_token(self, account_id: str) -> None:
        with self.lock:
            self.accounts[account_id].access_token = f"expired-{secrets.token_hex(8)}"

    # Faults

    def add_fault(self, **spec: t.Any) -> None:  # spec: JSON
        with self.lock:
            self.faults.append(Fault(**spec))

    def take_fault(
        self, path: str, account_id: str | None, method: str | None = None
    ) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if (
                    fault.times > 0
                    and path.startswith(fault.path)
                    and (fault.account_id is None or fault.account_id == account_id)
                    and (fault.method is None or fault.method == method)
                ):
                    if fault.after > 0:
                        fault.after -= 1
                        return None
                    fault.times -= 1
                    return fault
            return None

    def product_request(self) -> bool:
        """A request of the customer's own product on the application's quota (which the
        tap shares): True when served, False when refused with a 429 (counted)."""
        refused = self.rate_limited(product=True) is not None
        with self.lock:
            self.product_requests += 1
            self.product_refused += refused
        return not refused

    def rate_limited(self, *, product: bool = False) -> APIError | None:
        """A 429 when serving now would exceed a configured per-application limit (Cronofy
        documents no Retry-After: sent only with ``send_retry_after``)."""
        with self.lock:
            now = time.monotonic()
            longest = max((window for _, window in self.rate_limits), default=0)
            self._served = [t for t in self._served if t > now - longest]
            for limit, window in self.rate_limits:
                recent = [t for t in self._served if t > now - window]
                if len(recent) >= limit:
                    wait = max(1, int(recent[0] + window - now + 0.999))
                    if not product:
                        self.rate_limited_count += 1
                    headers = {"Retry-After": str(wait)} if self.send_retry_after else {}
                    return APIError(429, {"error": "rate_limited"}, headers)
            self._served.append(now)
            return None

    # Auth

    def account_for_token(self, token: str | None) -> Account | None:
        if not token:
            return None
        with self.lock:
            account = self._token_owner(token, "access_token")
            return account if account is not None and not account.revoked else None

    def _token_owner(self, token: str, kind: str) -> Account | None:
        """The account holding ``token`` as its ``kind``: an index (fleets of 10,000 accounts),
        rebuilt whenever it is stale (tokens refresh, tests set them directly)."""
        index = self._token_index.setdefault(kind, {})
        account = index.get(token)
        if account is not None and getattr(account, kind) == token:
            return account
        index.clear()
        index.update((getattr(a, kind), a) for a in self.accounts.values())
        return index.get(token)

    def authorize_url(self, query: dict[str, str]) -> str:
        """``GET /oauth/authorize`` (Cronofy's app host): the user consents at once, which
        connects a new calendar account with the scopes asked for; the answer is where the
        browser goes next, the redirect URI with ``code`` and ``state``."""
        from urllib.parse import urlencode

        with self.lock:
            if query.get("response_type") != "code" or query.get("client_id") != self.client_id:
                raise APIError(400, {"error": "invalid_request"})
            redirect = query.get("redirect_uri") or ""
            if not redirect.startswith(("http://", "https://")):
                raise APIError(400, {"error": "invalid_request"})
            index = len(self.accounts)
            account = self.add_account(random.Random(index), index, 5)
            account.scopes = set((query.get("scope") or "").split())
            code = f"sim-code-{secrets.token_hex(12)}"
            self._codes[code] = (account.account_id, redirect)
            joiner = "&" if "?" in redirect else "?"
            return redirect + joiner + urlencode({"code": code, "state": query.get("state", "")})

    def exchange_code(self, body: dict) -> dict:
        """``grant_type=authorization_code``: a code (once, with the same redirect URI) for
        the account's tokens, its id (``account_id`` and ``sub``) and linking profile."""
        with self.lock:
            if body.get("client_id") != self.client_id or (
                body.get("client_secret") != self.client_secret
            ):
                raise APIError(400, {"error": "invalid_client"})
            account_id, redirect = self._codes.pop(str(body.get("code")), ("", ""))
            if not account_id or body.get("redirect_uri") != redirect:
                raise APIError(400, {"error": "invalid_grant"})
            account = self.accounts[account_id]
            account.token_issued = self.now()
            return {
                **self.token_answer(account),
                "account_id": account.account_id,
                "sub": account.account_id,
                "linking_profile": {
                    "provider_name": "google",
                    "profile_id": f"pro_{account.account_id[4:]}",
                    "profile_name": account.email,
                },
            }

    def token_answer(self, account: Account) -> dict:
        """What ``/oauth/token`` answers for an account's tokens."""
        return {
            "token_type": "bearer",
            "access_token": account.access_token,
            "expires_in": self.token_lifetime,
            "refresh_token": account.refresh_token,
            "scope": " ".join(sorted(account.scopes)),
        }

    def refresh(self, body: dict) -> dict:
        with self.lock:
            if body.get("grant_type") == "authorization_code":
                return self.exchange_code(body)
            if body.get("grant_type") != "refresh_token":
                raise APIError(400, {"error": "unsupported_grant_type"})
            if (
                body.get("client_id") != self.client_id
                or body.get("client_secret") != self.client_secret
            ):
                raise APIError(400, {"error": "invalid_client"})
            owner = self._token_owner(str(body.get("refresh_token")), "refresh_token")
            for account in [owner] if owner is not None else []:
                if account.refresh_token == body.get("refresh_token") and not account.revoked:
                    account.access_token = f"sim-at-r-{secrets.token_hex(12)}"
                    account.token_issued = self.now()
                    if self.rotate_refresh_tokens:
                        account.refresh_token = f"sim-rt-r-{secrets.token_hex(12)}"
                    for kind in ("access_token", "refresh_token"):  # no index rebuild per token
                        self._token_index.setdefault(kind, {})[getattr(account, kind)] = account
                    return self.token_answer(account)
            raise APIError(400, {"error": "invalid_grant"})

    def authorize(self, token: str | None) -> Account:
        # Cronofy documents the statuses, not their bodies: these follow OAuth 2.0 Bearer
        # usage (RFC 6750), so that a client which echoes a body is noticed.
        account = self.account_for_token(token)
        if account is None or self.now() > account.token_issued + self.token_lifetime:
            raise APIError(
                401,
                {"error": "invalid_token"},
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if account.locked:
            raise APIError(423, {"error": "account_locked"})
        if not ({"read_free_busy", "read_events"} & account.scopes):
            raise APIError(
                403,
                {"error": "insufficient_scope"},
                {"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
            )
        return account

    # Free-busy

    def free_busy(self, token: str | None, params: dict[str, list[str]], base_url: str) -> RawJSON:
        account = self.authorize(token)
        flag = {
            name: (params.get(name) or ["false"])[-1].lower() == "true"  # True, as Ruby sends
            for name in (
                "include_managed",
                "include_free",
                "include_deleted",
                "include_ids",
                "include_userinfo",
                "localized_times",
            )
        }
        tzid = (params.get("tzid") or [""])[-1]
        if not tzid:
            raise field_error("tzid", "errors.required", "required")
        if tzid not in _ZONES:
            raise field_error("tzid", "errors.invalid_tzid", "must be a known time zone identifier")
        try:
            zone = ZoneInfo(tzid)
        except ZoneInfoNotFoundError as exc:
            raise field_error(
                "tzid", "errors.invalid_tzid", "must be a known time zone identifier"
            ) from exc
        today = self.now_dt().astimezone(zone).date()
        dates = {}
        for name in ("from", "to"):
            if params.get(name):
                try:
                    dates[name] = dt.date.fromisoformat(params[name][-1])
                except ValueError as exc:
                    raise field_error(
                        name, "errors.invalid_date", "must be a Date (YYYY-MM-DD)"
                    ) from exc
        if "from" in dates and dates["from"] < today - dt.timedelta(days=DAYS_BACK):
            raise field_error(
                "from", "errors.too_far_in_past", f"must be no earlier than {DAYS_BACK} days ago"
            )
        if "to" in dates and dates["to"] > today + dt.timedelta(days=DAYS_AHEAD):
            raise field_error(
                "to", "errors.too_far_in_future", f"must be no later than {DAYS_AHEAD} days ahead"
            )
        window_from = dates.get("from", today - dt.timedelta(days=DAYS_BACK))
        window_to = dates.get("to", today + dt.timedelta(days=DAYS_AHEAD))
        if window_from >= window_to:
            raise field_error("to", "errors.invalid_range", "must be after from")
        lower = dt.datetime.combine(window_from, dt.time(), zone)
        upper = dt.datetime.combine(window_to, dt.time(), zone)
        unbounded_managed = not dates
        since = None
        if params.get("last_modified"):
            try:
                since = parse_time(params["last_modified"][-1]).timestamp()
            except ValueError as exc:
                raise field_error("last_modified", "errors.invalid_time", "must be a Time") from exc
        calendars = set(params.get("calendar_ids[]") or [])

        cache_key = (
            account.account_id,
            tuple(sorted((k, tuple(v)) for k, v in params.items())),
            self.version,
            self.page_size,
            today,
        )
        with self.lock:
            if (query_id := self._query_cache.get(cache_key)) is not None:
                return self._page(query_id, 1, base_url)
            selected = []
            for event in self.periods_of(account, lower, upper):
                if event.managed and not flag["include_managed"]:
                    continue
                if event.status == "free" and not flag["include_free"]:
                    continue
                if event.deleted and not flag["include_deleted"]:
                    continue
                if since is not None and event.last_modified < since:
                    continue
                if calendars and event.calendar_id not in calendars:
                    continue
                start, end = event.bounds(zone)
                if not (event.managed and unbounded_managed) and not (
                    start < upper and end >= lower
                ):
                    continue
                selected.append(
                    (
                        start,
                        event.calendar_id,
                        event.event_uid,
                        self._period(event, zone, tzid, flag),
                    )
                )
            selected.sort(key=lambda item: item[:3])
            periods = [item[3] for item in selected]
            userinfo = (
                self.userinfo(account) if flag["include_userinfo"] and self.embed_userinfo else None
            )
            size = max(1, self.page_size)
            pages = [periods[i : i + size] for i in range(0, len(periods), size)] or [[]]
            query_id = secrets.token_hex(8)
            self._queries[query_id] = Query(account.account_id, pages, userinfo)
            self._query_cache[cache_key] = query_id
            return self._page(query_id, 1, base_url)

    @staticmethod
    def _period(event: Event, zone: ZoneInfo, tzid: str, flag: dict[str, bool]) -> dict:
        if flag["localized_times"]:
            # Each period in its own zone when the event has one, else the query's.
            own = ZoneInfo(event.tzid) if event.tzid else zone
            own_name = event.tzid or tzid

            def local(value: str) -> dict:
                text = value if len(value) == 10 else parse_time(value).astimezone(own).isoformat()
                return {"time": text, "tzid": own_name}

            period: dict = {
                "calendar_id": event.calendar_id,
                "start": local(event.start),
                "end": local(event.end),
            }
        else:
            period = {"calendar_id": event.calendar_id, "start": event.start, "end": event.end}
        period["free_busy_status"] = event.status
        if flag["include_ids"]:
            period["event_uid"] = event.event_uid
            if event.managed and event.event_id:
                period["event_id"] = event.event_id
        if flag["include_deleted"]:
            period["deleted"] = event.deleted
        return period

    def _page(self, query_id: str, number: int, base_url: str) -> RawJSON:
        """Page ``number`` of a query, rendered once; its next_page token stays valid."""
        host = f"http://{self.next_page_host}" if self.next_page_host else base_url
        key = (query_id, number, host)
        if key in self._rendered:
            body, token = self._rendered[key]
            if token:
                self._pages.setdefault(token, (query_id, number + 1))
            return body
        query = self._queries[query_id]
        page: dict = {"pages": {"current": number, "total": len(query.pages)}}
        token = None
        if number < len(query.pages):
            token = hashlib.sha256(f"{query_id}:{number + 1}".encode()).hexdigest()[:24]
            self._pages[token] = (query_id, number + 1)
            page["pages"]["next_page"] = f"{host}/v1/free_busy/pages/{token}"
        elif empty_next_page(query.account_id):
            page["pages"]["next_page"] = ""  # as some of Cronofy's answers end (pycronofy)
        if query.userinfo is not None:
            page["userinfo"] = query.userinfo
        page["free_busy"] = query.pages[number - 1]
        body = RawJSON(json.dumps(page, ensure_ascii=False).encode())
        self._rendered[key] = (body, token)
        return body

    def next_page(self, token: str | None, page_token: str, base_url: str) -> RawJSON:
        account = self.authorize(token)
        with self.lock:
            found = self._pages.get(page_token)
            if found is None:
                raise APIError(404, {"error": "not_found"})
            query_id, number = found
            if self._queries[query_id].account_id != account.account_id:
                raise APIError(404, {"error": "not_found"})
            return self._page(query_id, number, base_url)

    def expire_page_tokens(self) -> None:
        with self.lock:
            self._pages.clear()

    def userinfo(self, account: Account) -> dict:
        """GET /v1/userinfo, as Cronofy's docs and its SDKs' fixtures show it: one Google
        profile with the account's calendars, a Zoom conferencing profile."""
        return {
            "sub": account.account_id,
            "email": account.email,
            "name": account.name,
            "zoneinfo": account.zoneinfo,
            "cronofy.type": "account",
            "cronofy.data": {
                "authorization": {
                    "scope": " ".join(sorted(account.scopes)),
                    "status": "active",
                },
                "profiles": [
                    {
                        "provider_name": "google",
                        "provider_service": "gsuite",
                        "profile_id": f"pro_{account.account_id[4:]}",
                        "profile_name": account.email,
                        "profile_connected": True,
                        "profile_initial_sync_required": False,
                        "profile_calendars": [
                            {
                                k: v
                                for k, v in c.items()
                                if not k.startswith(("provider", "profile"))
                            }
                            for c in self._calendar_list(account)
                        ],
                    }
                ],
                "conferencing_profiles": [
                    {
                        "provider_name": "zoom",
                        "profile_id": f"pro_zoom_{account.account_id[4:12]}",
                        "profile_name": account.email,
                        "profile_connected": False,
                        "profile_relink_url": "https://app.cronofy.com/v2/relink/zoom?email="
                        + account.email.replace("@", "%40"),
                    }
                ],
            },
        }

    def calendars(self, account: Account) -> dict:
        """GET /v1/calendars: the account's calendars, one profile (Google), and the
        account's `sub` beside them."""
        listed = {"calendars": self._calendar_list(account)}
        if not self.calendars_optional:
            listed["calendars"] = [
                {k: v for k, v in c.items() if k not in OPTIONAL_CALENDAR_FIELDS}
                for c in listed["calendars"]
            ]
        return {"sub": account.account_id, **listed} if self.calendars_sub else listed

    def _calendar_list(self, account: Account) -> list[dict]:
        listed = []
        for number, calendar_id in enumerate(account.calendars):
            readonly = number == 2
            listed.append(
                {
                    "provider_name": "google",
                    "profile_id": f"pro_{account.account_id[4:]}",
                    "profile_name": account.email,
                    "calendar_id": calendar_id,
                    "calendar_name": account.calendar_names.get(
                        calendar_id, ["Work", "Personal", "Holidays"][number % 3]
                    ),
                    "calendar_readonly": readonly,
                    "calendar_deleted": False,
                    "calendar_primary": number == 0,
                    "calendar_integrated_conferencing_available": number == 0,
                    "calendar_attachments_available": False,
                    "permission_level": "sandbox" if readonly else "unrestricted",
                    "calendar_color": ["#49BED8", "#FC9C45", "#9DE3A7"][number % 3],
                }
            )
        return listed

    # Scheduling requests

    def query_scheduling_requests(self, token: str | None, body: dict) -> dict:
        if token != (self.scheduler_secret or self.client_secret):
            raise APIError(401)
        if not self.scheduler_plan:
            raise APIError(403)
        ids = body.get("scheduling_request_ids")
        if not isinstance(ids, list) or not ids:
            raise field_error("scheduling_request_ids", "errors.required", "required")
        with self.lock:
            found = [i for i in dict.fromkeys(ids) if i in self.scheduling]
            newest_first = sorted(found, key=lambda i: self._created[i], reverse=True)[:10]
            return {
                "scheduling_requests": [
                    {"scheduling_request": copy.deepcopy(self.scheduling[i])} for i in newest_first
                ]
            }

    def tap_config(self, url: str) -> dict:
        """A tap config that syncs every account and scheduling request held here."""
        with self.lock:
            return {
                "api_url": url,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "accounts": [
                    {
                        "account_id": a.account_id,
                        "access_token": a.access_token,
                        "refresh_token": a.refresh_token,
                    }
                    for a in self.accounts.values()
                ],
                "scheduling_request_ids": list(self.scheduling),
            }

    # Expectations for tests and the demo, computed from the stored data

    def events_of(self, account_id: str) -> list[Event]:
        with self.lock:
            return [copy.copy(e) for e in self.accounts[account_id].events.values()]
