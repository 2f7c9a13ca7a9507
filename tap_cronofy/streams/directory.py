"""accounts and calendars: small dimensions read whole every run, one request per account."""

from __future__ import annotations

import typing as t
from functools import cached_property

from tap_cronofy.accounts import account_failure
from tap_cronofy.errors import CronofyAPIError
from tap_cronofy.schemas import ACCOUNT, CALENDAR
from tap_cronofy.streams.base import CronofyStream

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context


class _PerAccountStream(CronofyStream):
    """One GET per account; a failing account is reported and the others go on."""

    path: str

    @cached_property
    def partitions(self) -> list[dict]:
        return [{"account_id": account_id} for account_id in self.services.accounts().ids()]

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        account_id = (context or {})["account_id"]
        credential = self.services.accounts().credential(account_id)
        try:
            reply = self.client.get(self.client.url(self.path), credential=credential)
        except CronofyAPIError as exc:
            failure = account_failure(account_id, exc)
            self.services.report.account_failed(account_id, str(failure))
            self.logger.error("Account %s: %s not read: %s", account_id, self.name, failure)
            return
        records = list(self.records_of(account_id, reply.body))
        self.services.report.tally(self.name).records += len(records)
        yield from records

    def records_of(self, account_id: str, body: dict) -> t.Iterable[dict]:
        raise NotImplementedError


class CalendarsStream(_PerAccountStream):
    """Each account's calendars (GET /v1/calendars), to name the calendar_ids of free_busy."""

    name = "calendars"
    path = "/v1/calendars"
    primary_keys: t.ClassVar[list[str]] = ["calendar_id"]
    schema = CALENDAR

    def records_of(self, account_id: str, body: dict) -> t.Iterable[dict]:
        for calendar in body.get("calendars") or ():
            if isinstance(calendar, dict) and calendar.get("calendar_id"):
                yield {**calendar, "account_id": account_id}


class AccountsStream(_PerAccountStream):
    """Who each account is (GET /v1/userinfo): name, email and time zone."""

    name = "accounts"
    path = "/v1/userinfo"
    primary_keys: t.ClassVar[list[str]] = ["account_id"]
    schema = ACCOUNT

    def records_of(self, account_id: str, body: dict) -> t.Iterable[dict]:
        profiles = (body.get("cronofy.data") or {}).get("profiles") or []
        yield {
            "account_id": account_id,
            "email": body.get("email"),
            "name": body.get("name"),
            "zoneinfo": body.get("zoneinfo"),
            "profiles": [
                {
                    k: p.get(k)
                    for k in ("provider_name", "profile_id", "profile_name", "profile_connected")
                }
                for p in profiles
                if isinstance(p, dict)
            ],
        }
