"""accounts and calendars: small dimensions read whole, each account's identity checked."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from functools import cached_property

from tap_cronofy.client import format_time
from tap_cronofy.prefetch import OrderedPrefetcher
from tap_cronofy.report import plural
from tap_cronofy.schemas import ACCOUNT, CALENDAR, CALENDAR_FIELDS
from tap_cronofy.statecodec import ACCOUNTS
from tap_cronofy.streams.base import CronofyStream, fingerprint
from tap_cronofy.undeclared import Shape, Undeclared, leaves
from tap_cronofy.window import (
    FULL_LISTING,
    LAST_RUN,
    UNLISTED,
    calendar_changes,
    calendars_due,
    run_gap_hours,
    server_date,
    zone,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from singer_sdk.helpers.types import Context

PROFILE_FIELDS = (
    "provider_name",
    "provider_service",
    "profile_id",
    "profile_name",
    "profile_connected",
    "profile_initial_sync_required",
    "profile_relink_url",
)
CONFERENCING_FIELDS = (
    "provider_name",
    "profile_id",
    "profile_name",
    "profile_connected",
    "profile_relink_url",
)
AUTHORIZATION_FIELDS = ("scope", "delegated_scope", "status")
# What the records declare of each answer (the rest is named once per run: undeclared.py).
CALENDARS_ANSWER: Shape = {"sub": None, "calendars": [leaves(CALENDAR_FIELDS)]}
USERINFO_ANSWER: Shape = {
    **leaves(("sub", "email", "name", "zoneinfo", "cronofy.type", "application_calendar_id")),
    "cronofy.data": {
        "authorization": leaves(AUTHORIZATION_FIELDS),
        "profiles": [{**leaves(PROFILE_FIELDS), "profile_calendars": [leaves(CALENDAR_FIELDS)]}],
        "conferencing_profiles": [leaves(CONFERENCING_FIELDS)],
        "application_calendar": None,
        "service_account": None,
    },
}


@dataclass
class Answer:
    """An account's records and, once they are emitted, its new stream state (None: none)."""

    records: list[dict]
    state: dict | None = None
    kind: str | None = None  # for the run's summary: "read", "not due"


class _PerAccountStream(CronofyStream):
    """One answer per account, fetched by the parallel workers within the run's budget. A
    failing account is reported and the others go on."""

    @property
    def partitions(self) -> list[dict] | None:
        """None: one sync over every account. (The SDK's default would replay the partitions
        that earlier versions kept in state, one per account ever configured; they are
        dropped, and the next STATE message says so.)"""
        if self.stream_state.pop("partitions", None) is not None:
            self.state_manager.is_flushed = False
        return None

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        ids = self.services.accounts().ids()
        self.prepare(ids)
        prefetcher = OrderedPrefetcher(
            ids, self._answers, workers=self.settings.max_parallel_accounts
        )
        tally = self.services.report.tally(self.name)
        for account_id in ids:
            try:
                for answer in prefetcher.items(account_id):
                    tally.records += len(answer.records)
                    if answer.kind:
                        tally.reads[answer.kind] += 1
                    yield from answer.records
                    if answer.state is not None:
                        self.keep(account_id, answer.state)
            except Exception as exc:  # of this account's: it alone fails
                self.account_failed(account_id, exc)

    def _answers(self, account_id: str) -> Iterator[Answer]:
        """In a worker: the account's answer, once it is known to be its own; a request
        only within the run's budget (an account the budget leaves out waits)."""
        if (answer := self.without_request(account_id)) is not None:
            yield answer
            return
        budget = self.services.budget()
        if not budget.admit(account_id):
            return
        try:
            yield self.read(account_id)
        finally:
            budget.finished(account_id)

    def prepare(self, ids: list[str]) -> None:
        """Before the workers start, in the main thread."""

    def without_request(self, account_id: str) -> Answer | None:
        """The answer when no request is needed for it; None when one is."""
        return None

    def read(self, account_id: str) -> Answer:
        raise NotImplementedError

    def keep(self, account_id: str, state: dict) -> None:
        """Keep the account's new state (its records are out)."""


class CalendarsStream(_PerAccountStream):
    """Each account's calendars (GET /v1/calendars), to name the calendar_ids of free_busy:
    read once a day per account (at an hour spread across accounts, ``calendars_due``) and
    at once when free_busy meets a calendar not read before; a calendar is emitted when new
    or changed."""

    name = "calendars"
    primary_keys: t.ClassVar[list[str]] = ["account_id", "calendar_id"]
    # Incremental: only new or changed calendars are emitted (a full-table stream's
    # ACTIVATE_VERSION would make a target drop the others).
    replication_key = "last_modified"
    is_sorted = False
    schema = CALENDAR

    def prepare(self, ids: list[str]) -> None:
        state = self.stream_state
        states = state.get(ACCOUNTS)
        self._states: dict[str, dict] = states if isinstance(states, dict) else {}
        for account_id in self.services.accounts().gone(self._states):
            del self._states[account_id]
        state[ACCOUNTS] = self._states
        self.state_manager.is_flushed = False
        now = self.client.clock()  # Cronofy's: one unauthenticated request when none told it
        local = now.astimezone(zone(self.settings.tzid))
        self._today, self._hour = server_date(now, self.settings.tzid), local.hour
        self._gap = run_gap_hours(state.get(LAST_RUN), now)
        state[LAST_RUN] = format_time(now)
        self._reasons: dict[str, str] = {}

    @cached_property
    def _undeclared(self) -> Undeclared:
        return Undeclared(self.logger, "calendar list", CALENDARS_ANSWER)

    def without_request(self, account_id: str) -> Answer | None:
        seen = self.services.seen_calendars.get(account_id, ())
        state = self._states.get(account_id)
        reason = calendars_due(state, account_id, self._today, self._hour, self._gap, seen)
        if reason is None:
            return Answer([], kind="not due")
        self._reasons[account_id] = reason
        return None

    def read(self, account_id: str) -> Answer:
        accounts = self.services.accounts()
        credential = accounts.credential(account_id)
        reply = self.client.get(self.client.url("/v1/calendars"), credential=credential)
        body = reply.body
        accounts.verify(account_id, body.get("sub"))
        self._undeclared.check(body)
        records = {
            calendar["calendar_id"]: {**fields(calendar, CALENDAR_FIELDS), "account_id": account_id}
            for calendar in body.get("calendars") or ()
            if isinstance(calendar, dict) and calendar.get("calendar_id")
        }
        seen_at = format_time(reply.server_time)
        before = self._states.get(account_id)
        changed, removed, state = calendar_changes(
            before,
            self._today,
            {calendar_id: fingerprint(r, 12) for calendar_id, r in records.items()},
            seen_at,
            self.services.seen_calendars.get(account_id, ()),
        )
        if new := sorted(set(state.get(UNLISTED, ())) - set((before or {}).get(UNLISTED, ()))):
            self.logger.warning(
                "Account %s: free_busy reports %s that /v1/calendars does not list (%s): "
                "remembered as unlisted, so runs do not re-read the calendars for it; their "
                "periods are loaded as usual.",
                account_id,
                plural(len(new), "calendar"),
                ", ".join(new[:3]),
            )
        self.logger.info(
            "Account %s: calendars read (%s): %s, %d new or changed, %d no longer listed "
            "(marked deleted).",
            account_id,
            self._reasons.pop(account_id, "due"),
            plural(len(records), "calendar"),
            len(changed),
            len(removed),
        )
        listing = state.get(FULL_LISTING)
        emitted = [
            {
                **records[c],
                "last_modified": seen_at,
                "full_listing_at": listing,
                "_sdc_deleted_at": None,
            }
            for c in changed
        ]
        emitted += [gone_calendar(account_id, c, seen_at, listing) for c in removed]
        return Answer(emitted, state, kind="read")

    def keep(self, account_id: str, state: dict) -> None:
        self._states[account_id] = state


class AccountsStream(_PerAccountStream):
    """Who each account is (userinfo): name, email, zone, authorization and profiles. The
    userinfo a free_busy answer embedded is used when there is one: no request then."""

    name = "accounts"
    primary_keys: t.ClassVar[list[str]] = ["account_id"]
    schema = ACCOUNT

    def without_request(self, account_id: str) -> Answer | None:
        if (known := self.services.accounts().known_userinfo(account_id)) is None:
            if account_id in self.services.unqueried:  # change-driven: nothing changed
                return Answer([], kind="unchanged")
            return None
        return Answer(list(self.records_of(account_id, known)))

    def read(self, account_id: str) -> Answer:
        accounts = self.services.accounts()
        body = accounts.userinfo(account_id)
        accounts.verify(account_id, body.get("sub"))
        return Answer(list(self.records_of(account_id, body)))

    @cached_property
    def _undeclared(self) -> Undeclared:
        return Undeclared(self.logger, "userinfo", USERINFO_ANSWER)

    def records_of(self, account_id: str, body: dict) -> t.Iterable[dict]:
        self._undeclared.check(body)
        data = body.get("cronofy.data") or {}
        profiles = data.get("profiles")
        conferencing = data.get("conferencing_profiles")
        yield {
            "account_id": account_id,
            "email": body.get("email"),
            "name": body.get("name"),
            "zoneinfo": body.get("zoneinfo"),
            "cronofy_type": body.get("cronofy.type"),
            "authorization": pick(data.get("authorization"), AUTHORIZATION_FIELDS),
            "profiles": None
            if profiles is None
            else [
                {
                    **fields(p, PROFILE_FIELDS),
                    "profile_calendars": [
                        pick(c, CALENDAR_FIELDS)
                        for c in p.get("profile_calendars") or ()
                        if isinstance(c, dict)
                    ],
                }
                for p in profiles
                if isinstance(p, dict)
            ],
            "conferencing_profiles": None
            if conferencing is None
            else [pick(p, CONFERENCING_FIELDS) for p in conferencing if isinstance(p, dict)],
            "application_calendar_id": body.get("application_calendar_id"),
            "application_calendar": _object(data.get("application_calendar")),
            "service_account": _object(data.get("service_account")),
        }


def _object(value: object) -> dict | None:
    return value if isinstance(value, dict) else None


def gone_calendar(account_id: str, calendar_id: str, seen_at: str, listing: str | None) -> dict:
    """A calendar that /v1/calendars no longer lists: marked deleted (its other fields are
    not known any more)."""
    return {
        **dict.fromkeys(CALENDAR_FIELDS),
        "account_id": account_id,
        "calendar_id": calendar_id,
        "calendar_deleted": True,
        "last_modified": seen_at,
        "full_listing_at": listing,
        "_sdc_deleted_at": seen_at,
    }


def fields(value: dict, names: tuple[str, ...]) -> dict:
    """The named fields of an object, None where absent."""
    return {name: value.get(name) for name in names}


def pick(value: object, names: tuple[str, ...]) -> dict | None:
    """``fields`` of an object; None when it is not an object."""
    return fields(value, names) if isinstance(value, dict) else None
