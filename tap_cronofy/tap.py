"""tap-cronofy: the Tap class, its settings and its streams."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
import threading
import typing as t
from functools import cached_property
from pathlib import Path

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.contrib.msgspec import encoder as msgspec_encoder
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.singerlib.encoding.simple import StateMessage

from tap_cronofy.auth import AccountAuth, BearerAuth
from tap_cronofy.errors import AccountError, CronofyAPIError
from tap_cronofy.prefetch import OrderedPrefetcher
from tap_cronofy.ratelimit import SlidingWindowLimiter
from tap_cronofy.redact import SECRETS, install_log_redaction
from tap_cronofy.settings import (
    DATA_CENTERS,
    SINGLE_ACCOUNT_KEY,
    api_base_url,
    configured_accounts,
    read_scheduling_request_ids,
    validate_values,
)
from tap_cronofy.streams import FreeBusyStream, Page, SchedulingRequestsStream

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from tap_cronofy.settings import AccountConfig

DEFAULT_PARALLEL_ACCOUNTS = 8


class StateFlushingWriter(MsgSpecWriter):
    """msgspec output collected in a buffer of our own and written out at each STATE
    message (and every 256 KiB), rather than one system call per record.

    Our own buffer because stdout is often unbuffered (PYTHONUNBUFFERED is common in
    containers and schedulers). A STATE line never reaches the target before the records
    it covers, since both leave in order from the same buffer.
    """

    FLUSH_BYTES = 1 << 18

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = bytearray()
        atexit.register(self.flush)

    def write_record(self, stream: str, record: dict, version: int | None, extracted: str) -> None:
        """A RECORD line, encoded straight from the record: the same JSON the SDK's
        RecordMessage gives, without building the message object."""
        message: dict[str, t.Any] = {"type": "RECORD", "stream": stream, "record": record}
        if version is not None:
            message["version"] = version
        message["time_extracted"] = extracted
        self._pending += msgspec_encoder.encode(message)
        self._pending += b"\n"
        if len(self._pending) >= self.FLUSH_BYTES:
            self.flush()

    def write_message(self, message: t.Any) -> None:
        self._pending += self.format_message(message)
        if isinstance(message, StateMessage) or len(self._pending) >= self.FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            sys.stdout.buffer.write(self._pending)
            self._pending.clear()
        sys.stdout.flush()


def register_secrets(config: t.Any) -> None:
    """Remember every secret of a config (a dict, a JSON file path, or a list of them) and
    of the TAP_CRONOFY_* environment, so that logs and errors can mask them."""
    sources: list[t.Any] = list(config) if isinstance(config, (list, tuple)) else [config]
    for name, value in os.environ.items():
        if name.startswith("TAP_CRONOFY_") and name.endswith(("TOKEN", "SECRET")):
            SECRETS.add(value)
        elif name == "TAP_CRONOFY_ACCOUNTS":
            with contextlib.suppress(ValueError):
                sources.append({"accounts": json.loads(value)})
    for source in sources:
        if isinstance(source, (str, Path)) and Path(source).is_file():
            try:
                source = json.loads(Path(source).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
        if not isinstance(source, t.Mapping):
            continue
        entries = source.get("accounts")
        for entry in [source, *(entries if isinstance(entries, list) else [])]:
            if isinstance(entry, t.Mapping):
                for name in ("access_token", "refresh_token", "client_secret"):
                    SECRETS.add(entry.get(name))


class TapCronofy(Tap):
    """Cronofy free-busy periods (incremental) and scheduling requests (change-detected)."""

    name = "tap-cronofy"
    message_writer_class = StateFlushingWriter

    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_url",
            th.StringType,
            description="Base URL override, e.g. http://127.0.0.1:8765 for the "
            "simulator; when set, data_center is ignored",
        ),
        th.Property(
            "data_center",
            th.StringType,
            default="us",
            allowed_values=list(DATA_CENTERS),
            description="Cronofy data center: us (api.cronofy.com), uk, de, au, ca, sg",
        ),
        th.Property(
            "access_token",
            th.StringType,
            secret=True,
            description="OAuth access token of one account (or use `accounts`)",
        ),
        th.Property(
            "refresh_token",
            th.StringType,
            secret=True,
            description="Refresh token of that account; with client_id and "
            "client_secret, expired tokens are refreshed during the run",
        ),
        th.Property(
            "client_id",
            th.StringType,
            description="OAuth application client_id, used to refresh tokens",
        ),
        th.Property(
            "client_secret",
            th.StringType,
            secret=True,
            description="OAuth application client_secret: refreshes tokens and is the "
            "Bearer for scheduling requests (an Internal Application's secret)",
        ),
        th.Property(
            "accounts",
            th.ArrayType(
                th.ObjectType(
                    th.Property("account_id", th.StringType, required=True),
                    th.Property("access_token", th.StringType, required=True, secret=True),
                    th.Property("refresh_token", th.StringType, secret=True),
                )
            ),
            description="Several accounts in one run, instead of access_token: a list of "
            "{account_id, access_token, refresh_token?}",
        ),
        th.Property(
            "tzid",
            th.StringType,
            default="Etc/UTC",
            description="IANA time zone for queries; all-day periods start at midnight in it",
        ),
        th.Property(
            "calendar_ids",
            th.ArrayType(th.StringType),
            description="Only these calendars (default: all of each account's)",
        ),
        th.Property(
            "include_managed",
            th.BooleanType,
            default=True,
            description="Include events your application manages",
        ),
        th.Property(
            "localized_times",
            th.BooleanType,
            default=False,
            description="Keep local times with offsets in start/end and their zone "
            "in start_tzid/end_tzid",
        ),
        th.Property(
            "start_date",
            th.StringType,
            description="First sync only: earliest date (clamped to 42 days back)",
        ),
        th.Property(
            "end_date",
            th.StringType,
            description="First sync only: end date, exclusive (clamped to 201 days ahead)",
        ),
        th.Property(
            "scheduling_request_ids",
            th.ArrayType(th.StringType),
            description="Scheduling request ids to track",
        ),
        th.Property(
            "scheduling_request_ids_file",
            th.StringType,
            description="Text file with one scheduling request id per line",
        ),
        th.Property(
            "lookback_seconds",
            th.NumberType,
            default=5,
            description="Incremental queries ask for changes since the bookmark "
            "minus this many seconds",
        ),
        th.Property(
            "max_retries",
            th.IntegerType,
            default=5,
            description="Tries per request on 429, 5xx and network errors",
        ),
        th.Property(
            "backoff_factor_seconds",
            th.NumberType,
            default=1,
            description="First retry wait without Retry-After; doubles each try",
        ),
        th.Property(
            "max_retry_wait_seconds",
            th.NumberType,
            default=60,
            description="Longest wait between tries, Retry-After included",
        ),
        th.Property(
            "request_timeout_seconds",
            th.NumberType,
            default=60,
            description="Connect/read timeout per request",
        ),
        th.Property(
            "requests_per_second",
            th.IntegerType,
            default=50,
            description="Client-side limit (Cronofy allows 50 per second per app)",
        ),
        th.Property(
            "requests_per_minute",
            th.IntegerType,
            default=500,
            description="Client-side limit (Cronofy allows 500 per minute per app)",
        ),
        th.Property(
            "max_parallel_accounts",
            th.IntegerType,
            default=DEFAULT_PARALLEL_ACCOUNTS,
            description="Accounts fetched concurrently; records stay in account order",
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        # Mask secrets before the SDK validates (and may log) the config.
        install_log_redaction()
        register_secrets(kwargs.get("config"))
        super().__init__(*args, **kwargs)
        register_secrets(self.config)
        if kwargs.get("validate_config", True) and (errors := validate_values(self.config)):
            raise ConfigValidationError("Config validation failed", errors=errors)
        self._auth_lock = threading.Lock()
        self._account_auths: dict[str, AccountAuth] = {}
        self._single_account_id: str | None = None
        self._prefetchers: dict[str, OrderedPrefetcher] = {}
        self.failed_accounts: dict[str, str] = {}

    def discover_streams(self) -> list:
        return [FreeBusyStream(self), SchedulingRequestsStream(self)]

    # Shared across streams and threads

    @cached_property
    def rate_limiter(self) -> SlidingWindowLimiter:
        return SlidingWindowLimiter(
            [
                (int(self.config.get("requests_per_second") or 50), 1.0),
                (int(self.config.get("requests_per_minute") or 500), 60.0),
            ],
            margin=0.02,
            slack=0.1,
        )

    @cached_property
    def accounts(self) -> list[AccountConfig]:
        return configured_accounts(self.config)

    @property
    def has_account_list(self) -> bool:
        return bool(self.config.get("accounts"))

    def _new_account_auth(self, account: AccountConfig) -> AccountAuth:
        return AccountAuth(
            api_base_url(self.config),
            account,
            client_id=self.config.get("client_id"),
            client_secret=self.config.get("client_secret"),
        )

    def account_ids(self, stream: FreeBusyStream) -> list[str]:
        """Account ids in a stable order; a lone access_token's id is asked of Cronofy."""
        if self.has_account_list:
            return [account.account_id for account in self.accounts if account.account_id]
        if self._single_account_id is None:
            auth = self._new_account_auth(self.accounts[0])
            self._account_auths[SINGLE_ACCOUNT_KEY] = auth
            prepared = stream.build_prepared_request(
                method="GET", url=f"{stream.url_base}/v1/userinfo"
            )
            try:
                response = stream.request_decorator(stream._request)(
                    prepared, {"account_id": SINGLE_ACCOUNT_KEY}
                )
            except AccountError as exc:  # nothing else to sync: fatal
                raise CronofyAPIError(str(exc), status=exc.status) from exc
            sub = response.cronofy_json.get("sub")  # type: ignore[attr-defined]
            if not sub:
                raise CronofyAPIError("Cronofy's userinfo answer has no `sub` (account id).")
            auth.set_account_id(sub)
            self._account_auths[sub] = auth
            self._single_account_id = sub
        return [self._single_account_id]

    def account_auth(self, account_id: str) -> AccountAuth:
        with self._auth_lock:
            if account_id not in self._account_auths:
                account = next(a for a in self.accounts if a.account_id == account_id)
                self._account_auths[account_id] = self._new_account_auth(account)
            return self._account_auths[account_id]

    @cached_property
    def client_secret_auth(self) -> BearerAuth:
        """The Bearer of the scheduling request query: the Internal Application's secret."""
        return BearerAuth(api_base_url(self.config), self.config["client_secret"], "client_secret")

    def prefetched_pages(self, stream: FreeBusyStream, account_id: str) -> Iterator[Page]:
        """``account_id``'s pages, fetched ahead together with the next accounts'."""
        prefetcher = self._prefetchers.get(stream.name)
        if prefetcher is None or prefetcher.closed or account_id not in prefetcher:
            keys = [p["account_id"] for p in stream.partitions]
            keys = keys[keys.index(account_id) :] if account_id in keys else [account_id]
            prefetcher = OrderedPrefetcher(
                keys,
                stream.account_pages,
                workers=int(self.config.get("max_parallel_accounts") or DEFAULT_PARALLEL_ACCOUNTS),
            )
            self._prefetchers[stream.name] = prefetcher
        return prefetcher.items(account_id)

    def record_account_failure(self, error: AccountError) -> None:
        self.failed_accounts[error.account_id] = str(error)
        self.logger.error("Account %s was not synced: %s", error.account_id, error)

    # Run

    def selection_errors(self) -> list[str]:
        """Problems that depend on which streams are selected."""
        errors = []
        selected = {name for name, stream in self.streams.items() if stream.selected}
        if "free_busy" in selected and not self.accounts:
            errors.append(
                "free_busy is selected but no account is configured: set "
                "`access_token` or `accounts`."
            )
        if "scheduling_requests" in selected and not self.config.get("client_secret"):
            errors.append(
                "scheduling_requests is selected but `client_secret` is not set: "
                "it is the Bearer token of the scheduling request query."
            )
        if "scheduling_requests" in selected:
            try:
                read_scheduling_request_ids(self.config)
            except OSError as exc:
                errors.append(f"`scheduling_request_ids_file` cannot be read: {exc}")
        return errors

    def sync_all(self) -> None:
        if errors := self.selection_errors():
            for error in errors:
                self.logger.error(error)
            self.logger.error("Config validation failed: nothing was requested from Cronofy.")
            raise SystemExit(1)
        try:
            super().sync_all()
        except CronofyAPIError as exc:
            # Bookmarks only ever cover emitted records, so the state as it stands is safe
            # to save: a rerun continues from it without a gap.
            self._state_writer.write_state(self.state)
            self.logger.error("%s", exc)
            raise SystemExit(1) from None
        finally:
            if flush := getattr(self.message_writer, "flush", None):
                flush()
            for prefetcher in self._prefetchers.values():
                prefetcher.close()
            self._prefetchers.clear()
        if self.failed_accounts:
            for account_id, reason in sorted(self.failed_accounts.items()):
                self.logger.error("FAILED account %s: %s", account_id, reason)
            self.logger.error(
                "%d account(s) failed: %s. The other accounts were synced and their state "
                "saved; fix these and run again.",
                len(self.failed_accounts),
                ", ".join(sorted(self.failed_accounts)),
            )
            raise SystemExit(1)


if __name__ == "__main__":
    TapCronofy.cli()
