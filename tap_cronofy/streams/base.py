"""What every Cronofy stream is given (settings, client, accounts, report), and the private
SDK methods the tap overrides, listed with why."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import typing as t
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property

from singer_sdk import Stream
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import RecordMessage, SingerMessageType

from tap_cronofy.errors import AccountError, CronofyAPIError
from tap_cronofy.redact import SECRETS

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_cronofy.accounts import Accounts
    from tap_cronofy.budget import RunBudget
    from tap_cronofy.client import CronofyClient
    from tap_cronofy.report import RunReport
    from tap_cronofy.settings import Settings


@dataclass(frozen=True)
class Services:
    """Built lazily by the tap: discovery and --about never construct them."""

    settings: t.Callable[[], Settings]
    client: t.Callable[[], CronofyClient]
    accounts: t.Callable[[], Accounts]
    report: RunReport
    budget: t.Callable[[], RunBudget]
    # A STATE message, if one is due, after ``done`` of a stream's ``total`` accounts.
    checkpoint: t.Callable[[int, int], None]
    # The calendar ids free_busy read this run, by account (calendars reads unknown ones).
    seen_calendars: dict[str, set[str]] = field(default_factory=dict)
    # Change-driven mode: the accounts free_busy did not query (nothing changed): the
    # accounts stream asks nothing for them either.
    unqueried: set[str] = field(default_factory=set)


# The private SDK surface this tap overrides, with why (without the first three, CPU per
# record is 2.7x a bare requests+json loop instead of 1.3x). tests/streams/test_sdk_surface.py
# fails when an SDK upgrade changes their signatures or bodies, so each override is re-checked
# then.
PRIVATE_SDK_OVERRIDES = {
    "_generate_record_messages": (
        "The SDK walks the schema and the selection mask for every record to drop "
        "deselected fields, the largest per-record cost in a profile of this tap. When no "
        "field is deselected and conformance is off (free_busy builds exact types), the "
        "walk is skipped; every other case goes through the SDK's own method."
    ),
    "_process_record": (
        "The SDK's version also builds child contexts and copies the context for every "
        "record; these streams have no children and their records already carry their "
        "partition keys. Streams with children would go through the SDK's own method."
    ),
    "_write_record_message": (
        "The SDK builds a RecordMessage per record, through a generator, for the tap's "
        "writer to take apart again. When the shortcut of _generate_record_messages applies "
        "and the writer is this tap's, the record goes straight to the writer's RECORD "
        "encoder (the same bytes): a third of the main thread's CPU per record. Any other "
        "case goes through the SDK's own method."
    ),
    "_increment_stream_state": (
        "Streams write each partition's bookmark once, when the partition is complete (and "
        "also for partitions without records, which the SDK never bookmarks). The SDK's "
        "per-record increment looks the partition up in the state's list for every record, "
        "O(accounts) per record, and would leave progress markers to undo when an account "
        "fails halfway."
    ),
}


def _quiet_sdk_lines(record: logging.LogRecord) -> bool:
    """Drops two SDK lines that read like bugs here: "Starting incremental sync of 'x' with
    bookmark value: None" (these streams keep their bookmarks per account, and each
    account's line says where it moved), and "An unhandled error occurred" when the error
    is the reader closing the pipe (the tap says so itself, in one line)."""
    if (
        record.msg == "Starting incremental sync of '%s' with bookmark value: %s"
        and isinstance(record.args, tuple)
        and len(record.args) == 2
        and record.args[1] is None
    ):
        return False
    return not (
        str(record.msg).startswith("An unhandled error occurred")
        and isinstance(sys.exc_info()[1], BrokenPipeError)
    )


def fingerprint(value: object, digits: int) -> str:
    """A short hash of a JSON value's canonical form: a record's content, kept in state to
    tell whether it changed since the last run."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:digits]


class TypedRecordMessage(RecordMessage):
    """A RECORD message whose ``time_extracted`` is known to be aware (always the case
    here): the SDK's check of it, on every record, is skipped."""

    def __post_init__(self) -> None:
        self.type = SingerMessageType.RECORD


class CronofyStream(Stream):
    """A Cronofy stream: records from the client's replies, state written per partition."""

    def __init__(self, tap: Tap, services: Services) -> None:
        super().__init__(tap)
        self.logger.addFilter(_quiet_sdk_lines)
        self.services = services
        # When the answer holding the records being emitted arrived; None: per record.
        self.extracted_at: datetime | None = None

    @property
    def settings(self) -> Settings:
        return self.services.settings()

    @property
    def client(self) -> CronofyClient:
        return self.services.client()

    def account_failed(self, account_id: str, error: Exception) -> None:
        """Report an account's failure (once per run: later streams say it was skipped).
        Anything raised while reading one account fails it alone, named with its cause."""
        if not isinstance(error, CronofyAPIError):
            error = AccountError(
                account_id,
                f"Reading account {account_id} failed ({type(error).__name__}: "
                f"{SECRETS.redact(str(error))[:200]}): its bookmark is kept and it is read "
                "again next run; the other accounts go on.",
            )
        failure, new = self.services.accounts().fail(account_id, error)
        if new:
            self.logger.error("Account %s: %s not read: %s", account_id, self.name, failure)
        else:
            self.logger.info(
                "Account %s: %s skipped: it failed earlier in this run.", account_id, self.name
            )

    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        """No signpost: ``last_modified`` is Cronofy's clock, never a future data value."""
        return None

    @cached_property
    def _nothing_to_pop(self) -> bool:
        """Every field selected, records already typed, no table version: nothing for the
        SDK's walk to do."""
        properties = self.schema["properties"]
        selected = all(self.mask.get(("properties", name), True) for name in properties)
        return (
            selected
            and self.TYPE_CONFORMANCE_LEVEL == TypeConformanceLevel.NONE
            and self.replication_method == "INCREMENTAL"  # no table versions to stamp
        )

    @cached_property
    def _plain_maps(self) -> bool:
        """The one map is the identity (no stream map, no flattening): nothing to transform."""
        maps = self.stream_maps
        return (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == self.name
            and not maps[0].flattening_enabled
        )

    @cached_property
    def _direct_write(self) -> t.Callable[..., None] | None:
        """The tap's writer's own RECORD method, when no map or walk has anything to do."""
        from tap_cronofy.output import StateFlushingWriter

        writer = getattr(self._tap, "message_writer", None)
        if self._nothing_to_pop and self._plain_maps and type(writer) is StateFlushingWriter:
            return writer.write_record
        return None

    def _write_record_message(self, record: dict) -> None:
        """Straight into the tap's writer (no message object, no generator) when nothing
        would change the record; else the SDK's way."""
        write = self._direct_write
        if write is None:
            super()._write_record_message(record)
            return
        write(self.name, record, self.extracted_at or datetime.now(timezone.utc))
        self.state_manager.is_flushed = False

    def _generate_record_messages(self, record: dict) -> t.Generator[RecordMessage, None, None]:
        """As the SDK's, without its per-record selection walk and identity map when they
        have nothing to do (see PRIVATE_SDK_OVERRIDES)."""
        if not self._nothing_to_pop:
            yield from super()._generate_record_messages(record)
            return
        extracted = self.extracted_at or datetime.now(timezone.utc)
        if self._plain_maps:
            yield TypedRecordMessage(
                stream=self.name, record=record, version=None, time_extracted=extracted
            )
            return
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    version=None,
                    time_extracted=extracted,
                )

    def _process_record(
        self,
        record: dict,
        child_context: Context | None = None,
        partition_context: Context | None = None,
    ) -> None:
        """Partition keys into the record when missing, as the SDK does, and nothing for
        child streams, which these streams do not have (see PRIVATE_SDK_OVERRIDES)."""
        if self.child_streams:
            super()._process_record(record, child_context, partition_context)
            return
        for key, value in (partition_context or {}).items():
            if key not in record:
                record[key] = value

    def _increment_stream_state(
        self, latest_record: dict, *, context: Context | None = None
    ) -> None:
        """Nothing per record (see PRIVATE_SDK_OVERRIDES): ``get_records`` writes the
        bookmark once the partition is complete."""
