"""The free_busy and scheduling_requests streams."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import typing as t
from array import array
from dataclasses import dataclass
from functools import cached_property, lru_cache
from zoneinfo import ZoneInfo

from singer_sdk import singerlib
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.helpers._state import get_state_if_exists
from singer_sdk.helpers._util import utc_now
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform

from tap_cronofy.client import CronofyStream, format_time, server_time
from tap_cronofy.errors import AccountError, CronofyAPIError, ExpiredPageError
from tap_cronofy.schemas import FREE_BUSY, SCHEDULING_REQUEST
from tap_cronofy.settings import parse_config_date, read_scheduling_request_ids

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from singer_sdk.helpers.types import Context

    from tap_cronofy.auth import BearerAuth

# Cronofy's window: 42 days back, 201 ahead. One day inside each, so that clock or
# time-zone differences between this host and Cronofy never provoke a 422.
DAYS_BACK_LIMIT = 41
DAYS_AHEAD_LIMIT = 200
DEFAULT_LOOKBACK_SECONDS = 5
QUERY_BATCH_SIZE = 10  # Cronofy answers at most the 10 most recently created ids


def _flag(value: bool) -> str:
    return "true" if value else "false"


@lru_cache(maxsize=8192)
def _to_utc(value: str, zone: str) -> str:
    """A Cronofy Date (midnight in ``zone``) or a Time with an offset, in UTC."""
    if len(value) == 10:
        midnight = dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), ZoneInfo(zone))
        return format_time(midnight)
    return format_time(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))


def _utc_time(value: str | None, zone: str) -> str | None:
    """A period boundary as a UTC time string; Cronofy's plain UTC times pass as they are."""
    if not value:
        return None
    if len(value) == 20 and value[19] == "Z":
        return value
    return _to_utc(value, zone)


@dataclass
class Page:
    records: list[dict]
    watermark: str
    extracted_at: dt.datetime


class FreeBusyStream(CronofyStream):
    """Free-busy periods of every configured account, one partition per account."""

    name = "free_busy"
    path = "/v1/free_busy"
    primary_keys: t.ClassVar[list[str]] = ["account_id", "calendar_id", "event_uid"]
    replication_key = "last_modified"
    is_sorted = False
    schema = FREE_BUSY
    # Records are built here with exact types; skipping the SDK's per-record type
    # conformance roughly doubles throughput.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    @property
    def partitions(self) -> list[dict]:
        return [{"account_id": account_id} for account_id in self._tap.account_ids(self)]

    # Per-record work: the SDK's generic path does work this stream never needs.

    _extracted_at: dt.datetime | None = None  # arrival of the page being emitted
    _extracted_text = ""

    def _increment_stream_state(
        self, latest_record: dict, *, context: Context | None = None
    ) -> None:
        """Nothing per record: every record of a partition carries the same watermark, which
        ``get_records`` writes as the bookmark once the partition is complete."""

    def _process_record(
        self,
        record: dict,
        child_context: Context | None = None,
        partition_context: Context | None = None,
    ) -> None:
        """Nothing: records already hold ``account_id`` and this stream has no children."""

    @cached_property
    def _direct_writer(self) -> t.Callable[..., None] | None:
        """The writer's direct RECORD path, when records need no mapping or selection."""
        if self._plain_output and not self._has_deselected:
            return getattr(self._tap.message_writer, "write_record", None)
        return None

    def _write_record_message(self, record: dict) -> None:
        if (write := self._direct_writer) is None:
            super()._write_record_message(record)
            return
        write(self.name, record, self._stream_version, self._extracted_text)
        self.state_manager.is_flushed = False

    @cached_property
    def _plain_output(self) -> bool:
        """No stream map and no flattening: records go out exactly as built."""
        maps = self.stream_maps
        return (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == self.name
            and not maps[0].flattening_enabled
        )

    @cached_property
    def _has_deselected(self) -> bool:
        return any(not self.mask[("properties", name)] for name in self.schema["properties"])

    def _generate_record_messages(self, record: dict) -> Iterator[singerlib.RecordMessage]:
        """As the SDK's, minus the selection walk when every field is selected, and minus
        type conformance (records are built with exact types in ``make_record``). Used when
        stream maps or a writer without ``write_record`` are in play."""
        if self._has_deselected:
            pop_deselected_record_properties(record, self.schema, self.mask)
        extracted = self._extracted_at  # when its page arrived
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield singerlib.RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    version=self._stream_version,
                    time_extracted=extracted,
                )

    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        """No signpost: ``last_modified`` is Cronofy's clock, never a future data value."""
        return None

    def auth_for(self, context: Context | None) -> BearerAuth:
        return self._tap.account_auth((context or {})["account_id"])

    def credential_error(
        self, context: Context | None, status: int, detail: str
    ) -> CronofyAPIError:
        account_id = (context or {}).get("account_id", "?")
        advice = {
            401: "The account must be re-authorised in Cronofy (its token was not recognised).",
            403: "The token lacks the read_free_busy scope (read_events also grants it): "
            "authorise the account again requesting read_free_busy.",
            423: "Cronofy reports the account locked: its calendar credentials are "
            "unavailable until the user reconnects the calendar.",
        }[status]
        return AccountError(
            account_id, f"{detail} for account {account_id}. {advice}", status=status
        )

    # Query

    def bookmark(self, context: Context | None) -> str | None:
        """The account's bookmark, read without creating state (workers call this)."""
        state = get_state_if_exists(self.tap_state, self.name, state_partition_context=context)
        if state and state.get("replication_key") == self.replication_key:
            return state.get("replication_key_value")
        return None

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict:
        config = self.config
        params: dict[str, t.Any] = {
            "tzid": config.get("tzid") or "Etc/UTC",
            "include_ids": "true",
            "include_free": "true",
            "include_managed": _flag(config.get("include_managed", True)),
            "localized_times": _flag(config.get("localized_times", False)),
        }
        if calendar_ids := config.get("calendar_ids"):
            params["calendar_ids[]"] = list(calendar_ids)
        if self._tap.has_account_list:
            params["include_userinfo"] = "true"  # to check each token belongs to its account
        if bookmark := self.bookmark(context):
            # The document's incremental recipe: no from/to, deletions included.
            lookback = float(config.get("lookback_seconds", DEFAULT_LOOKBACK_SECONDS))
            since = dt.datetime.fromisoformat(bookmark.replace("Z", "+00:00"))
            params["include_deleted"] = "true"
            params["last_modified"] = format_time(since - dt.timedelta(seconds=lookback))
        else:
            params.update(self.first_sync_window)
        return params

    @cached_property
    def first_sync_window(self) -> dict[str, str]:
        """``from``/``to`` from start_date/end_date, clamped into Cronofy's window (worked
        out, and any clamping logged, once per run)."""
        window: dict[str, str] = {}
        zone = ZoneInfo(self.config.get("tzid") or "Etc/UTC")
        today = dt.datetime.now(zone).date()
        earliest = today - dt.timedelta(days=DAYS_BACK_LIMIT)
        latest = today + dt.timedelta(days=DAYS_AHEAD_LIMIT)
        for setting, param, limit, beyond in (
            ("start_date", "from", earliest, "further back than Cronofy allows (42 days)"),
            ("end_date", "to", latest, "further ahead than Cronofy allows (201 days)"),
        ):
            if value := self.config.get(setting):
                day = parse_config_date(value)
                if (day < limit) if param == "from" else (day > limit):
                    self.logger.warning("%s %s is %s; using %s.", setting, day, beyond, limit)
                    day = limit
                window[param] = day.isoformat()
        if "from" in window and "to" in window and window["from"] >= window["to"]:
            msg = (
                f"start_date/end_date give an empty window ({window['from']} to {window['to']}) "
                "inside Cronofy's limits of 42 days back and 201 days ahead."
            )
            raise CronofyAPIError(msg)
        return window

    # Records

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        account_id = (context or {})["account_id"]
        watermark = None
        try:
            for page in self._tap.prefetched_pages(self, account_id):
                watermark = page.watermark
                self._extracted_at = page.extracted_at
                self._extracted_text = page.extracted_at.isoformat(sep="T")
                yield from page.records
        except AccountError as exc:
            # Finish the other accounts; this one's bookmark stays where it was.
            self._tap.record_account_failure(exc)
            return
        state = self.get_context_state(context)
        if watermark is not None:
            # Also for accounts with no changes: the SDK bookmarks only partitions with records.
            state["replication_key"] = self.replication_key
            state["replication_key_value"] = watermark
        self.state_manager.is_flushed = False
        self._write_state_message()  # this account is done: say so before the next one

    def account_pages(self, account_id: str) -> Iterator[Page]:
        """Pages of one account's query, as records; restarts once if a page token expires."""
        context = {"account_id": account_id}
        zone = self.config.get("tzid") or "Etc/UTC"
        watermark: str | None = None
        emitted = array("q")  # hashes of keys emitted, to skip them after a restart
        skip: set[int] | None = None
        while True:
            try:
                for number, response in enumerate(self.iter_responses(context)):
                    body = response.cronofy_json  # type: ignore[attr-defined]
                    if number == 0:
                        if watermark is None:
                            watermark = format_time(server_time(response))
                        self._check_account(account_id, body)
                    records = [
                        self.make_record(period, account_id, watermark, zone)
                        for period in body.get("free_busy") or ()
                    ]
                    keys = [hash((r["calendar_id"], r["event_uid"])) for r in records]
                    if skip is not None:
                        records = [r for r, k in zip(records, keys) if k not in skip]
                    emitted.extend(keys)
                    yield Page(records, watermark, utc_now())
                return
            except ExpiredPageError as exc:
                if skip is not None:
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
                skip = set(emitted)

    def _check_account(self, account_id: str, body: dict) -> None:
        sub = (body.get("userinfo") or {}).get("sub")
        if self._tap.has_account_list and sub and sub != account_id:
            raise AccountError(
                account_id,
                f"The access_token configured for account {account_id} belongs to {sub}: "
                "fix the `accounts` entry so that each token sits beside its own account_id.",
            )

    @staticmethod
    def make_record(period: dict, account_id: str, watermark: str, zone: str) -> dict:
        start = period.get("start")
        end = period.get("end")
        start_tzid = end_tzid = None
        if isinstance(start, dict):
            start_tzid = start.get("tzid")
            start = start.get("time")
        if isinstance(end, dict):
            end_tzid = end.get("tzid")
            end = end.get("time")
        deleted = bool(period.get("deleted", False))
        calendar_id = period.get("calendar_id")
        event_uid = period.get("event_uid")
        if not event_uid:  # only without include_ids; keep the key non-null and stable
            digest = hashlib.sha1(f"{calendar_id}|{start}|{end}".encode(), usedforsecurity=False)
            event_uid = f"period_{digest.hexdigest()[:20]}"
        return {
            "account_id": account_id,
            "calendar_id": calendar_id,
            "event_uid": event_uid,
            "event_id": period.get("event_id"),
            "start": start,
            "end": end,
            "start_tzid": start_tzid,
            "end_tzid": end_tzid,
            "start_time": _utc_time(start, start_tzid or zone),
            "end_time": _utc_time(end, end_tzid or zone),
            "all_day": bool(start) and len(start) == 10,
            "free_busy_status": period.get("free_busy_status"),
            "deleted": deleted,
            "last_modified": watermark,
            "_sdc_deleted_at": watermark if deleted else None,
        }


class SchedulingRequestsStream(CronofyStream):
    """Scheduling requests by id, emitted when new or changed since the last run."""

    name = "scheduling_requests"
    path = "/v1/scheduling_requests/query"
    http_method = "POST"
    primary_keys: t.ClassVar[list[str]] = ["scheduling_request_id"]
    replication_key = "last_modified"
    is_sorted = False
    schema = SCHEDULING_REQUEST
    STATE_KEY = "fingerprints"

    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        return None

    def auth_for(self, context: Context | None) -> BearerAuth:
        return self._tap.client_secret_auth

    def credential_error(
        self, context: Context | None, status: int, detail: str
    ) -> CronofyAPIError:
        advice = {
            401: "client_secret was not recognised: use the client_secret of an Internal "
            "Application linked to the Organizational Unit.",
            403: "The application may not query scheduling requests: it must be an Internal "
            "Application and the organisation needs the Scheduler plan.",
            423: "Cronofy reports the organisation's credentials locked.",
        }[status]
        return CronofyAPIError(f"{detail}. {advice}", status=status)

    def batches(self, ids: list[str]) -> list[list[str]]:
        return [ids[i : i + QUERY_BATCH_SIZE] for i in range(0, len(ids), QUERY_BATCH_SIZE)]

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        ids = read_scheduling_request_ids(self.config)
        if not ids:
            self.logger.info(
                "No scheduling requests to query: set scheduling_request_ids or "
                "scheduling_request_ids_file (Cronofy has no endpoint that lists them)."
            )
            return
        state = self.stream_state
        previous = dict(item.rsplit(":", 1) for item in state.get(self.STATE_KEY) or [])
        incremental = self.STATE_KEY in state
        fingerprints = {i: previous[i] for i in ids if i in previous}
        found = 0
        missing: list[str] = []
        send = self.request_decorator(self._request)
        for batch in self.batches(ids):
            prepared = self.build_prepared_request(
                method="POST", url=self.get_url(None), json={"scheduling_request_ids": batch}
            )
            response = send(prepared, None)
            seen_at = format_time(server_time(response))
            returned = {}
            for item in response.cronofy_json.get("scheduling_requests") or ():  # type: ignore[attr-defined]
                request = item.get("scheduling_request") or {}
                request_id = request.get("scheduling_request_id")
                if request_id in batch:
                    returned[request_id] = request
            missing.extend(i for i in batch if i not in returned)
            found += len(returned)
            for request_id in batch:
                request = returned.get(request_id)
                if request is None:
                    continue
                fingerprint = _fingerprint(request)
                if incremental and fingerprints.get(request_id) == fingerprint:
                    continue
                yield {**request, "last_modified": seen_at}
                fingerprints[request_id] = fingerprint  # only once the record is out
                state[self.STATE_KEY] = _encode(fingerprints, ids)
        if missing:
            self.logger.warning(
                "%d of %d scheduling request ids were not found by Cronofy (unknown, or not "
                "in this Organizational Unit).",
                len(missing),
                len(ids),
            )
            self.logger.debug("Scheduling request ids not found: %s", ", ".join(missing))
        self.logger.info(
            "Queried %d scheduling request ids in %d requests; %d found.",
            len(ids),
            len(self.batches(ids)),
            found,
        )
        state[self.STATE_KEY] = _encode(fingerprints, ids)  # ids no longer configured drop out


def _fingerprint(request: dict) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _encode(fingerprints: dict[str, str], ids: list[str]) -> list[str]:
    """A list, not a dict: Meltano replaces lists in state wholesale, so removed ids go."""
    return [f"{i}:{fingerprints[i]}" for i in ids if i in fingerprints]
