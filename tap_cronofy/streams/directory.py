"""accounts and calendars: small dimensions read whole, each account's identity checked."""

from __future__ import annotations

import typing as t

from tap_cronofy.errors import CronofyAPIError
from tap_cronofy.prefetch import OrderedPrefetcher
from tap_cronofy.schemas import ACCOUNT, CALENDAR, CALENDAR_FIELDS
from tap_cronofy.streams.base import CronofyStream

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


class _PerAccountStream(CronofyStream):
    """One answer per account, fetched by the parallel workers; full table, so no
    per-account state. A failing account is reported and the others go on."""

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
        prefetcher = OrderedPrefetcher(
            ids, self._records, workers=self.settings.max_parallel_accounts
        )
        tally = self.services.report.tally(self.name)
        for account_id in ids:
            try:
                for records in prefetcher.items(account_id):
                    tally.records += len(records)
                    yield from records
            except CronofyAPIError as exc:
                self.account_failed(account_id, exc)

    def _records(self, account_id: str) -> Iterator[list[dict]]:
        """In a worker: the account's records, once its answer is known to be its own."""
        yield list(self.records_of(account_id, self.answer(account_id)))

    def answer(self, account_id: str) -> dict:
        raise NotImplementedError

    def records_of(self, account_id: str, body: dict) -> t.Iterable[dict]:
        raise NotImplementedError


class CalendarsStream(_PerAccountStream):
    """Each account's calendars (GET /v1/calendars), to name the calendar_ids of free_busy."""

    name = "calendars"
    primary_keys: t.ClassVar[list[str]] = ["account_id", "calendar_id"]
    schema = CALENDAR

    def answer(self, account_id: str) -> dict:
        accounts = self.services.accounts()
        credential = accounts.credential(account_id)
        body = self.client.get(self.client.url("/v1/calendars"), credential=credential).body
        accounts.verify(account_id, body.get("sub"))
        return body

    def records_of(self, account_id: str, body: dict) -> t.Iterable[dict]:
        for calendar in body.get("calendars") or ():
            if isinstance(calendar, dict) and calendar.get("calendar_id"):
                yield {**fields(calendar, CALENDAR_FIELDS), "account_id": account_id}


class AccountsStream(_PerAccountStream):
    """Who each account is (userinfo): name, email, zone, authorization and profiles. The
    userinfo a free_busy answer embedded is used when there is one: no request then."""

    name = "accounts"
    primary_keys: t.ClassVar[list[str]] = ["account_id"]
    schema = ACCOUNT

    def answer(self, account_id: str) -> dict:
        accounts = self.services.accounts()
        body = accounts.userinfo(account_id)
        accounts.verify(account_id, body.get("sub"))
        return body

    def records_of(self, account_id: str, body: dict) -> t.Iterable[dict]:
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
        }


def fields(value: dict, names: tuple[str, ...]) -> dict:
    """The named fields of an object, None where absent."""
    return {name: value.get(name) for name in names}


def pick(value: object, names: tuple[str, ...]) -> dict | None:
    """``fields`` of an object; None when it is not an object."""
    return fields(value, names) if isinstance(value, dict) else None
