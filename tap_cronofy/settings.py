"""The tap's settings: one JSON Schema, parsed once into a frozen ``Settings`` object."""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import typing as t
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfoNotFoundError

import pendulum
from singer_sdk import typing as th

from tap_cronofy import zones
from tap_cronofy.changelog import POSTGRES_SCHEMES, is_postgres, sqlite_path
from tap_cronofy.idsource import query_ids
from tap_cronofy.shard import PATTERN as SHARD_PATTERN
from tap_cronofy.shard import Shard
from tap_cronofy.tokenstore import parse

DATA_CENTERS = {
    "us": "https://api.cronofy.com",
    "uk": "https://api-uk.cronofy.com",
    "de": "https://api-de.cronofy.com",
    "au": "https://api-au.cronofy.com",
    "ca": "https://api-ca.cronofy.com",
    "sg": "https://api-sg.cronofy.com",
}

_ID = r"^\S+$"  # ids: non-empty, no whitespace
_TOKEN = r"^\S(.*\S)?$"  # secrets: non-empty, no leading or trailing whitespace
_DATE = r"^\d{4}-\d{2}-\d{2}([T ].*)?$"


def _seconds(*, positive: bool = False) -> th.CustomType:
    """A number of seconds, also as a numeric string: Meltano 4.4 cannot pass a `decimal`
    setting from an environment variable, so meltano.yml declares these as strings."""
    bound = {"exclusiveMinimum": 0} if positive else {"minimum": 0}
    pattern = (
        r"^[0-9]*[1-9][0-9]*(\.[0-9]+)?$|^[0-9]*\.[0-9]*[1-9][0-9]*$"
        if positive
        else (r"^[0-9]+(\.[0-9]+)?$")
    )
    return th.CustomType({"type": ["number", "string", "null"], "pattern": pattern, **bound})


def _ids() -> th.ArrayType:
    return th.ArrayType(th.StringType(pattern=_ID))


CONFIG_SCHEMA: dict[str, t.Any] = th.PropertiesList(
    th.Property(
        "api_url",
        th.StringType(pattern=r"^https?://[^/\s]+"),
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
        th.StringType(pattern=_TOKEN),
        secret=True,
        description="OAuth access token of one account. One of access_token, accounts or "
        "accounts_file is required",
    ),
    th.Property(
        "refresh_token",
        th.StringType(pattern=_TOKEN),
        secret=True,
        requires_properties=["client_id", "client_secret"],
        description="Refresh token of the `access_token` account; with client_id and "
        "client_secret, the tap gets a fresh access token at the start of each run. Not "
        "with `accounts`/`accounts_file`: each entry has its own",
    ),
    th.Property(
        "client_id",
        th.StringType(pattern=_TOKEN),
        description="OAuth application client_id, used to refresh tokens",
    ),
    th.Property(
        "client_secret",
        th.StringType(pattern=_TOKEN),
        secret=True,
        description="OAuth application client_secret, used to refresh tokens (and the "
        "scheduling request Bearer when scheduler_client_secret is not set)",
    ),
    th.Property(
        "scheduler_client_secret",
        th.StringType(pattern=_TOKEN),
        secret=True,
        description="client_secret of the Internal Application linked to your "
        "Organizational Unit: the Bearer of the scheduling request query "
        "(default: client_secret)",
    ),
    th.Property(
        "accounts",
        th.ArrayType(
            th.ObjectType(
                th.Property("account_id", th.StringType(pattern=_ID), required=True),
                th.Property(
                    "access_token", th.StringType(pattern=_TOKEN), required=True, secret=True
                ),
                th.Property("refresh_token", th.StringType(pattern=_TOKEN), secret=True),
                th.Property(
                    "access_token_expires_at",
                    th.DateTimeType,
                    description="When access_token expires (the tap writes it beside a "
                    "token it refreshed, so that other processes reuse the token)",
                ),
            )
        ),
        secret=True,
        description="Several accounts in one run, instead of access_token (one of access_token, "
        "accounts or accounts_file is required): a list of "
        "{account_id, access_token, refresh_token?}",
    ),
    th.Property(
        "accounts_file",
        th.StringType,
        description="Path of a JSON or YAML file holding the `accounts` list (one of "
        "access_token, accounts or accounts_file is required; it keeps "
        "tokens out of environment variables); used when `accounts` is not set",
    ),
    th.Property(
        "save_rotated_refresh_tokens",
        th.BooleanType,
        default=True,
        description="When Cronofy returns a new refresh token for an account of "
        "`accounts_file`, write it into that file (atomically, same format and file mode); "
        "off: only a warning is logged",
    ),
    th.Property(
        "token_store",
        th.StringType(),
        secret=True,  # its password is masked
        description="A postgresql:// URL whose table (`token_store_table`) holds every "
        "account's tokens, instead of accounts/accounts_file: the accounts are its rows, and "
        "shards on several hosts refresh under a row lock. Needs the `postgres` extra",
    ),
    th.Property(
        "token_store_table",
        th.StringType(pattern=r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$"),
        default="cronofy_tokens",
        description="The table (or view, with token_owner `product`) of `token_store`, "
        "optionally schema-qualified",
    ),
    th.Property(
        "token_store_columns",
        th.ObjectType(
            th.Property("account_id", th.StringType),
            th.Property("access_token", th.StringType),
            th.Property("refresh_token", th.StringType),
            th.Property("expires_at", th.StringType),
            additional_properties=False,
        ),
        description="The `token_store_table` columns by role, when they are not named "
        'account_id, access_token, refresh_token, expires_at ("" for one the table lacks, '
        "with token_owner `product`)",
    ),
    th.Property(
        "token_owner",
        th.StringType,
        default="tap",
        allowed_values=["tap", "product"],
        description="Who refreshes the accounts' tokens: `tap` (the tap refreshes and writes "
        "them back to accounts_file or token_store) or `product` (your product refreshes "
        "them: the tap only reads the store's current access token, again after a 401, and "
        "never refreshes)",
    ),
    th.Property(
        "tzid",
        th.StringType,
        default="Etc/UTC",
        description="IANA time zone for queries; all-day periods start at midnight in it",
    ),
    th.Property(
        "calendar_ids",
        _ids(),
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
        th.StringType(pattern=_DATE),
        description="No period ending on or before this date (midnight in `tzid`) is emitted "
        "live, by any read (one that moves there is marked deleted); Cronofy serves at most "
        "42 days back",
    ),
    th.Property(
        "end_date",
        th.StringType(pattern=_DATE),
        description="No period starting on or after this date (midnight in `tzid`) is "
        "emitted live, by any read (one that moves there is marked deleted); Cronofy serves "
        "up to 201 days ahead",
    ),
    th.Property(
        "full_resync_days",
        th.IntegerType(minimum=0),
        default=0,
        description="Re-read each account's whole window every this many days (spread "
        "across accounts), catching what no incremental query reports; 0 = never",
    ),
    th.Property(
        "scheduling_request_ids",
        _ids(),
        description="Scheduling request ids to track",
    ),
    th.Property(
        "scheduling_request_ids_file",
        th.StringType,
        description="Text file with one scheduling request id per line",
    ),
    th.Property(
        "scheduling_request_ids_url",
        th.StringType,
        secret=True,
        description="A postgresql:// URL of your product's database, where "
        "`scheduling_request_ids_sql` reads the ids to track (read-only). Needs the "
        "`postgres` extra",
    ),
    th.Property(
        "scheduling_request_ids_sql",
        th.StringType,
        description="A query on `scheduling_request_ids_url` whose first column is the "
        "scheduling request ids to track, e.g. SELECT cronofy_id FROM interviews",
    ),
    th.Property(
        "scheduling_settled_hours",
        th.IntegerType(minimum=1),
        default=24,
        description="Settled scheduling requests (expired, cancelled, or complete with the "
        "meeting over) are queried once in this many hours, spread evenly across runs; open "
        "ones every run",
    ),
    th.Property(
        "lookback_seconds",
        _seconds(),
        default=600,
        description="Incremental queries ask for changes since the bookmark minus this "
        "many seconds, so that a change that reaches Cronofy late (calendar providers sync "
        "into it asynchronously) is still read; each run re-emits the changes of that span",
    ),
    th.Property(
        "max_retries",
        th.IntegerType(minimum=1),
        default=5,
        description="Tries per request on 429, 5xx and network errors",
    ),
    th.Property(
        "backoff_factor_seconds",
        _seconds(),
        default=1,
        description="First retry wait without Retry-After; doubles each try",
    ),
    th.Property(
        "max_retry_wait_seconds",
        _seconds(),
        default=60,
        description="Longest wait between tries, Retry-After included",
    ),
    th.Property(
        "request_timeout_seconds",
        _seconds(positive=True),
        default=60,
        description="Connect/read timeout per request",
    ),
    th.Property(
        "requests_per_second",
        th.IntegerType(minimum=1),
        default=50,
        description="Client-side limit (Cronofy allows 50 per second per app)",
    ),
    th.Property(
        "requests_per_minute",
        th.IntegerType(minimum=1),
        default=500,
        description="Client-side limit (Cronofy allows 500 per minute per app)",
    ),
    th.Property(
        "max_parallel_accounts",
        th.IntegerType(minimum=1),
        default=8,
        description="Accounts fetched concurrently; records stay in account order",
    ),
    th.Property(
        "max_requests_per_run",
        th.IntegerType(minimum=0),
        default=0,
        description="Per-run request budget: once a run has made this many requests, no "
        "further account is started (those in progress finish) and the rest wait for the next "
        "run, which serves the stalest accounts first; 0 = no budget",
    ),
    th.Property(
        "max_run_minutes",
        _seconds(),
        default=0,
        description="Per-run time budget, in minutes: after this long, no further account "
        "is started, as with max_requests_per_run; 0 = no budget",
    ),
    th.Property(
        "change_log",
        th.StringType(),
        secret=True,  # a postgresql:// URL may carry a password (only that part is masked)
        description="Change-driven mode: the change log that `tap-cronofy-push receive` writes "
        "Cronofy's push notifications to (a file path for SQLite, relative to the Meltano "
        "project, or a postgresql:// URL). free_busy then queries only the accounts notified "
        "since their last query, those never synced and each account once a day; unset = "
        "query every account every run",
    ),
    th.Property(
        "notification_url",
        th.StringType(pattern=_ID),
        description="The public HTTPS URL Cronofy posts push notifications to (the receiver, "
        "behind your HTTPS proxy); `tap-cronofy-push channels` opens one channel per account "
        "to it",
    ),
    th.Property(
        "shard",
        th.StringType(pattern=SHARD_PATTERN),
        description="Run as one shard of several processes, e.g. `3/16` (shard 3 of 16, from "
        "0): only the accounts whose CRC32 of account_id falls in it are read, provisioned "
        "and kept in state. Give each shard its own state (Meltano: `--state-id-suffix`)",
    ),
    th.Property(
        "shared_quota",
        th.StringType(),
        secret=True,  # its password is masked
        description="A postgresql:// URL where every process of this Cronofy application "
        "(each shard) shares one request window of `requests_per_minute`, timed by the "
        "database's clock; each process's own limit still applies. Needs the `postgres` extra",
    ),
    th.Property(
        "strict_settings",
        th.BooleanType,
        default=True,
        description="Refuse to run, before any request, when the config holds a setting "
        "name the tap does not know (a typo such as `tz_id`), naming the closest known one "
        "(an hourly schedule would hide a warning); false: such keys are allowed, each "
        "warned about and ignored",
    ),
    th.Property(
        "scheduling_requests_shard",
        th.IntegerType(minimum=0),
        default=0,
        description="With `shard`: the one shard that reads scheduling_requests",
    ),
    th.Property(
        "change_log_retention_days",
        _seconds(positive=True),
        default=7,
        description="The receiver deletes notifications older than this; an account not "
        "queried for longer is queried on its next run",
    ),
).to_dict()
for _name in ("calendar_ids", "scheduling_request_ids"):
    CONFIG_SCHEMA["properties"][_name]["uniqueItems"] = True

DEFAULTS: dict[str, t.Any] = {
    name: spec["default"] for name, spec in CONFIG_SCHEMA["properties"].items() if "default" in spec
}


def secret_values(config: t.Mapping[str, t.Any], schema: dict = CONFIG_SCHEMA) -> list[str]:
    """Every value of ``config`` that the schema flags ``secret``, nested ones included."""
    found: list[str] = []
    for name, spec in (schema.get("properties") or {}).items():
        value = config.get(name)
        if value is None:
            continue
        if name in URL_SETTINGS and schema is CONFIG_SCHEMA:
            continue  # a path or URL: only its password is a secret (below)
        if spec.get("secret") and isinstance(value, str):
            found.append(value)
        items = spec.get("items") or {}
        if isinstance(value, list) and items.get("properties"):
            for entry in value:
                if isinstance(entry, t.Mapping):
                    found.extend(secret_values(entry, items))
    for name in URL_SETTINGS if schema is CONFIG_SCHEMA else ():
        if isinstance(config.get(name), str):
            with contextlib.suppress(ValueError):
                if password := urlsplit(config[name]).password:  # postgresql://u:p@host
                    found.append(password)
    return found


URL_SETTINGS = (
    "change_log",
    "shared_quota",
    "token_store",
    "scheduling_request_ids_url",
)  # secret: only their password


@dataclass(frozen=True)
class AccountConfig:
    """One connected calendar account. ``account_id`` is None until Cronofy names it."""

    account_id: str | None
    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Settings:
    """The config, checked and with defaults applied; what every other module reads."""

    api_base: str
    accounts: tuple[AccountConfig, ...]
    has_account_list: bool
    accounts_file: str | None
    save_rotated_refresh_tokens: bool
    client_id: str | None = field(repr=False)
    client_secret: str | None = field(repr=False)
    scheduler_secret: str | None = field(repr=False)
    tzid: str
    calendar_ids: tuple[str, ...]
    include_managed: bool
    localized_times: bool
    start_date: pendulum.Date | None
    end_date: pendulum.Date | None
    full_resync_days: int
    scheduling_request_ids_setting: tuple[str, ...]
    scheduling_request_ids_file: str | None
    lookback_seconds: float
    max_retries: int
    backoff_factor_seconds: float
    max_retry_wait_seconds: float
    request_timeout_seconds: float
    requests_per_second: int
    requests_per_minute: int
    max_parallel_accounts: int
    max_requests_per_run: int = 0
    max_run_minutes: float = 0.0
    change_log: str | None = field(default=None, repr=False)  # a URL may hold a password
    notification_url: str | None = None
    change_log_retention_days: float = 7.0
    shard: Shard | None = None
    scheduling_requests_shard: int = 0
    shared_quota: str | None = field(default=None, repr=False)  # a URL may hold a password
    token_store: str | None = field(default=None, repr=False)  # a URL may hold a password
    token_store_table: str = "cronofy_tokens"
    token_store_columns: tuple[tuple[str, str], ...] = ()
    token_owner: str = "tap"
    scheduling_request_ids_url: str | None = field(default=None, repr=False)  # a password
    scheduling_request_ids_sql: str | None = None
    scheduling_settled_hours: int = 24

    @property
    def reads_scheduling_requests(self) -> bool:
        return self.shard is None or self.shard.index == self.scheduling_requests_shard

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any]) -> Settings:
        """Parse a config the schema accepted (``check`` lists what it cannot express)."""
        value = {**DEFAULTS, **{k: v for k, v in config.items() if v is not None}}
        entries = account_entries(value)
        if entries:
            accounts = sorted(
                (
                    AccountConfig(
                        entry["account_id"],
                        entry["access_token"],
                        entry.get("refresh_token"),
                    )
                    for entry in entries
                ),
                key=lambda account: account.account_id or "",
            )
        elif value.get("access_token"):
            accounts = [AccountConfig(None, value["access_token"], value.get("refresh_token"))]
        else:
            accounts = []
        api_url = value.get("api_url")
        return cls(
            api_base=str(api_url).rstrip("/") if api_url else DATA_CENTERS[value["data_center"]],
            accounts=tuple(accounts),
            has_account_list=bool(entries) or bool(value.get("token_store")),
            accounts_file=None
            if value.get("accounts") or not value.get("accounts_file")
            else project_path(value["accounts_file"]),
            save_rotated_refresh_tokens=bool(value["save_rotated_refresh_tokens"]),
            client_id=value.get("client_id"),
            client_secret=value.get("client_secret"),
            scheduler_secret=value.get("scheduler_client_secret") or value.get("client_secret"),
            tzid=value["tzid"],
            calendar_ids=tuple(value.get("calendar_ids") or ()),
            include_managed=bool(value["include_managed"]),
            localized_times=bool(value["localized_times"]),
            start_date=parse_date(value["start_date"]) if value.get("start_date") else None,
            end_date=parse_date(value["end_date"]) if value.get("end_date") else None,
            full_resync_days=int(value["full_resync_days"]),
            scheduling_request_ids_setting=tuple(value.get("scheduling_request_ids") or ()),
            scheduling_request_ids_file=project_path(value["scheduling_request_ids_file"])
            if value.get("scheduling_request_ids_file")
            else None,
            lookback_seconds=float(value["lookback_seconds"]),
            max_retries=int(value["max_retries"]),
            backoff_factor_seconds=float(value["backoff_factor_seconds"]),
            max_retry_wait_seconds=float(value["max_retry_wait_seconds"]),
            request_timeout_seconds=float(value["request_timeout_seconds"]),
            requests_per_second=int(value["requests_per_second"]),
            requests_per_minute=int(value["requests_per_minute"]),
            max_parallel_accounts=int(value["max_parallel_accounts"]),
            max_requests_per_run=int(value["max_requests_per_run"]),
            max_run_minutes=float(value["max_run_minutes"]),
            change_log=change_log_target(value["change_log"]) if value.get("change_log") else None,
            notification_url=value.get("notification_url"),
            change_log_retention_days=float(value["change_log_retention_days"]),
            shard=Shard.parse(value["shard"]) if value.get("shard") else None,
            scheduling_requests_shard=int(value["scheduling_requests_shard"]),
            shared_quota=value.get("shared_quota"),
            token_store=value.get("token_store"),
            scheduling_request_ids_url=value.get("scheduling_request_ids_url"),
            scheduling_request_ids_sql=value.get("scheduling_request_ids_sql"),
            scheduling_settled_hours=int(value["scheduling_settled_hours"]),
            token_store_table=value["token_store_table"],
            token_store_columns=tuple(sorted((value.get("token_store_columns") or {}).items())),
            token_owner=value["token_owner"],
        )

    @property
    def has_scheduling_ids(self) -> bool:
        """Whether any source of scheduling request ids is set (the query's is read later)."""
        return bool(
            self.scheduling_request_ids_setting
            or self.scheduling_request_ids_file
            or self.scheduling_request_ids_sql
        )

    def scheduling_request_ids(self, query: bool = True) -> list[str]:
        """Ids from the setting, the file and (``query``) the product's database,
        de-duplicated, in order."""
        ids = list(self.scheduling_request_ids_setting)
        if self.scheduling_request_ids_file:
            lines = Path(self.scheduling_request_ids_file).read_text(encoding="utf-8").splitlines()
            ids.extend(s for line in lines if (s := line.strip()) and not s.startswith("#"))
        if query and self.scheduling_request_ids_sql and self.scheduling_request_ids_url:
            ids.extend(query_ids(self.scheduling_request_ids_url, self.scheduling_request_ids_sql))
        return list(dict.fromkeys(ids))


def parse_date(value: str) -> pendulum.Date:
    """A date (``2024-05-01``) or a date-time whose date part is used."""
    parsed = pendulum.parse(str(value), exact=True)
    if isinstance(parsed, pendulum.DateTime):
        return parsed.date()
    if isinstance(parsed, pendulum.Date):
        return parsed
    msg = f"not a date: {value!r}"
    raise ValueError(msg)


PROJECT_ROOT = "MELTANO_PROJECT_ROOT"  # set by Meltano for the plugins it runs


def project_path(path: str, environ: t.Mapping[str, str] | None = None) -> str:
    """A path setting as a file path: a relative one is relative to the Meltano project
    when Meltano runs the tap (``MELTANO_PROJECT_ROOT``), else to the working directory."""
    root = (os.environ if environ is None else environ).get(PROJECT_ROOT)
    expanded = os.path.expanduser(path)
    if root and not os.path.isabs(expanded):
        return os.path.join(root, expanded)
    return expanded


def change_log_target(value: str) -> str:
    """The change log setting as ChangeLog opens it: a PostgreSQL URL as it is, a SQLite
    path (or sqlite:/// URL) resolved like every path setting."""
    return value if is_postgres(value) else project_path(sqlite_path(value))


def change_log_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    errors = []
    value = config.get("change_log")
    if value:
        scheme = urlsplit(str(value)).scheme.lower()
        if scheme not in (*POSTGRES_SCHEMES, "sqlite", ""):
            errors.append(
                f"`change_log` must be a file path, sqlite:///path or postgresql://..., got a "
                f"{scheme}:// URL."
            )
        elif not is_postgres(str(value)):
            folder = Path(change_log_target(str(value))).parent
            if not folder.is_dir():
                errors.append(
                    f"`change_log` {value!r}: its folder {str(folder)!r} does not exist"
                    f"{where(str(value))}."
                )
    url = config.get("notification_url")
    if url:
        parts = urlsplit(str(url))
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            errors.append(
                "`notification_url` must be an https:// URL (Cronofy posts notifications "
                f"only to HTTPS; http:// is accepted for 127.0.0.1 alone), got {url!r}."
            )
    return errors


SHARD_VARIABLE = "TAP_CRONOFY_SHARD"  # how Meltano (and Dagster) are told a shard


def unknown_settings(
    config: t.Mapping[str, t.Any], known: t.Iterable[str], *, ignored: bool = False
) -> list[str]:
    """One line per setting name the tap does not know, with the closest known name (and,
    when such keys are allowed, that it is ignored)."""
    names = sorted(set(known))
    lines = []
    for name in sorted(set(config) - set(names)):
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        lines.append(f"Unknown setting `{name}`{hint}" + (": it is ignored." if ignored else "."))
    return lines


def shard_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    if (quota := config.get("shared_quota")) and not is_postgres(str(quota)):
        return ["`shared_quota` must be a postgresql:// URL."]
    value = config.get("shard")
    if not value:
        return []
    try:
        shard = Shard.parse(str(value))
    except ValueError as exc:
        return [str(exc)]
    chosen = config.get("scheduling_requests_shard") or 0
    if isinstance(chosen, int) and chosen >= shard.count:
        return [
            f"`scheduling_requests_shard` {chosen} is not one of the {shard.count} shards "
            f"(0 to {shard.count - 1})."
        ]
    return []


def where(path: str) -> str:
    """For an error about a relative path: what it was taken relative to."""
    if os.path.isabs(os.path.expanduser(path)):
        return ""
    root = os.environ.get(PROJECT_ROOT)
    return f" (relative to the Meltano project, {root})" if root else f" (in {os.getcwd()})"


def entry_error(error: t.Any) -> str:
    """A jsonschema error about an ``accounts_file`` entry, without the value (a token)."""
    where_ = list(error.path)
    entry = f"entry {where_[0]}" if where_ else "the list"
    field_ = f"`{where_[1]}` " if len(where_) > 1 else ""
    kind = error.validator
    if kind == "type":
        expected = error.validator_value
        wanted = " or ".join(expected) if isinstance(expected, list) else str(expected)
        what = f"must be of type {wanted}"
    elif kind == "pattern":
        what = "has spaces where a token or id cannot (an empty value, a space at either end)"
    elif kind in ("required", "additionalProperties"):
        what = error.message  # names the property, not a value
    else:
        what = f"is not valid ({kind})"
    return f"`accounts_file`: {entry}: {field_}{what}."


def account_entries(config: t.Mapping[str, t.Any]) -> list:
    """The ``accounts`` list, from the setting or else from ``accounts_file`` (ValueError
    naming the line and what is wrong, never quoting the file)."""
    if config.get("accounts"):
        return list(config["accounts"])
    path = config.get("accounts_file")
    if not path:
        return []
    data = parse(Path(project_path(path)))
    if isinstance(data, dict) and "accounts" in data:
        data = data["accounts"]
    if not isinstance(data, list):
        msg = "it must hold a list of {account_id, access_token, refresh_token?} objects"
        raise ValueError(msg)
    return data


def valid_zone(name: str) -> bool:
    """An IANA zone the tzdata package has (what the tap will use, whatever the host has)."""
    if name not in zones.names() and name not in ("UTC", "Etc/UTC"):
        return False
    try:
        zones.zone(name)
    except ZoneInfoNotFoundError:
        return False
    return True


def check(config: t.Mapping[str, t.Any], environ: t.Mapping[str, str] | None = None) -> list[str]:
    """What the schema cannot say: cross-field rules, time zones, files. Empty when sound.
    ``environ``: the process's environment, where a shard started by Meltano also finds
    its `TAP_CRONOFY_SHARD`."""
    errors: list[str] = []
    if (
        (environ or {}).get(SHARD_VARIABLE)
        and environ
        and (environ[SHARD_VARIABLE].strip() != str(config.get("shard") or "").strip())
    ):
        errors.append(
            f"`shard` is {config.get('shard')!r} in the config but {SHARD_VARIABLE} is "
            f"{environ[SHARD_VARIABLE]!r}: another shard's run wrote this config (two shards "
            "of one Meltano project share .meltano/run/tap-cronofy/); give each shard its own "
            "MELTANO_SYS_DIR_ROOT. Nothing was requested."
        )
    tzid = config.get("tzid")
    if isinstance(tzid, str) and not valid_zone(tzid):
        errors.append(
            f"`tzid` must be an IANA time zone such as Etc/UTC or Europe/Paris, got {tzid!r}."
        )
    try:
        entries = account_entries(config)
    except (OSError, ValueError) as exc:
        path = str(config.get("accounts_file"))
        errors.append(f"`accounts_file` {path!r} cannot be read{where(path)}: {exc}")
        entries = []
    if config.get("accounts_file") and not config.get("accounts"):
        from jsonschema import Draft202012Validator

        validator = Draft202012Validator(CONFIG_SCHEMA["properties"]["accounts"])
        errors.extend(entry_error(error) for error in validator.iter_errors(entries))
    seen: set[str] = set()
    for entry in entries:
        account_id = entry.get("account_id") if isinstance(entry, t.Mapping) else None
        if isinstance(account_id, str) and account_id in seen:
            errors.append(f"{account_id!r} is listed more than once as `account_id`.")
        seen.add(account_id)  # type: ignore[arg-type]  # None and non-strings never match
    errors.extend(shard_errors(config))
    if config.get("token_store"):
        if not is_postgres(str(config["token_store"])):
            errors.append("`token_store` must be a postgresql:// URL.")
        for name in ("access_token", "accounts", "accounts_file"):
            if config.get(name):
                errors.append(
                    f"Set either `token_store` or `{name}`, not both: with `token_store` the "
                    "accounts are the rows of its table."
                )
    for name, column in (config.get("token_store_columns") or {}).items():
        required = name in ("account_id", "access_token")
        if column == "" and (required or config.get("token_owner") != "product"):
            errors.append(
                f"`token_store_columns`: {name} must name a column"
                + ("." if required else ' (only with token_owner `product` may it be "").')
            )
    if entries and config.get("access_token"):
        errors.append("Set either `access_token` or `accounts`/`accounts_file`, not both.")
    if entries and config.get("refresh_token"):
        errors.append(
            "`refresh_token` is set beside `accounts`/`accounts_file`: it belongs to one "
            "account, so it cannot serve every entry. Put each account's refresh_token in "
            "its entry and unset `refresh_token`."
        )
    if any(isinstance(e, t.Mapping) and e.get("refresh_token") for e in entries):
        for name in ("client_id", "client_secret"):
            if not config.get(name):
                errors.append(
                    f"A refresh token is set but `{name}` is missing: tokens cannot be "
                    "refreshed without the OAuth application's client_id and client_secret."
                )
    if config.get("batch_config"):
        errors.append(
            "`batch_config` is not supported: with BATCH messages the SDK writes state before "
            "the target has loaded the batch, so a bookmark could get ahead of the warehouse."
        )
    url, sql = config.get("scheduling_request_ids_url"), config.get("scheduling_request_ids_sql")
    if bool(url) != bool(sql):
        errors.append(
            "`scheduling_request_ids_url` and `scheduling_request_ids_sql` go together: the "
            "query needs its database, and the database its query."
        )
    if url and not is_postgres(str(url)):
        errors.append("`scheduling_request_ids_url` must be a postgresql:// URL.")
    ids_file = config.get("scheduling_request_ids_file")
    if ids_file and not Path(project_path(ids_file)).is_file():
        errors.append(
            f"`scheduling_request_ids_file` {ids_file!r} is not a readable file{where(ids_file)}."
        )
    dates: dict[str, pendulum.Date] = {}
    for name in ("start_date", "end_date"):
        if value := config.get(name):
            try:
                dates[name] = parse_date(str(value))
            except (ValueError, pendulum.parsing.exceptions.ParserError):
                errors.append(f"`{name}` must be a date such as 2024-05-01, got {value!r}.")
    if len(dates) == 2 and dates["start_date"] >= dates["end_date"]:
        errors.append("`start_date` must be before `end_date`.")
    errors.extend(change_log_errors(config))
    return errors


def secrets_of_input(config: t.Any, environ: t.Mapping[str, str]) -> list[str]:
    """Secrets of a config as the tap receives it (a dict, JSON file paths, the
    TAP_CRONOFY_* environment, an accounts_file), found before the SDK validates it, so
    that validation messages can be masked."""
    sources: list[t.Any] = list(config) if isinstance(config, (list, tuple)) else [config]
    env: dict[str, t.Any] = {}
    for name, spec in CONFIG_SCHEMA["properties"].items():
        value = environ.get(f"TAP_CRONOFY_{name.upper()}")
        if value is not None:
            env[name] = value
            if "array" in spec["type"]:  # a list of type names (or one name)
                try:
                    env[name] = json.loads(value)
                except ValueError:
                    env[name] = value  # still a secret: mask the raw text
    sources.append(env)
    found: list[str] = []
    for source in sources:
        if isinstance(source, (str, Path)) and Path(source).is_file():
            try:
                source = json.loads(Path(source).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
        if not isinstance(source, t.Mapping):
            continue
        found.extend(secret_values(source))  # an `accounts` given as text included
        with contextlib.suppress(Exception):  # an unreadable file is reported by check()
            found.extend(secret_values({"accounts": account_entries(source)}))
    return found


def selection_errors(settings: Settings, selected: set[str]) -> list[str]:
    """Problems that depend on which streams are selected, found before any request."""
    errors = []
    per_account = sorted(selected & {"free_busy", "calendars", "accounts"})
    if per_account and not settings.accounts and not settings.token_store:
        errors.append(
            f"{', '.join(per_account)} selected but no account is configured: set "
            "`access_token`, `accounts`, `accounts_file` or `token_store`."
        )
    if "scheduling_requests" in selected:
        try:
            ids = settings.scheduling_request_ids(query=False)  # the query runs in the stream
            if settings.scheduling_request_ids_sql:
                ids.append("(from scheduling_request_ids_sql)")
        except OSError as exc:
            errors.append(f"`scheduling_request_ids_file` cannot be read: {exc}")
            ids = []
        if ids and not settings.scheduler_secret:
            errors.append(
                "scheduling_request_ids are set but neither `scheduler_client_secret` nor "
                "`client_secret` is: the scheduling request query needs the client_secret "
                "of an Internal Application as its Bearer token."
            )
    return errors
