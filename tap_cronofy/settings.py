"""Config checks that run before any HTTP request, and values derived from the config."""

from __future__ import annotations

import datetime as dt
import numbers
import typing as t
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DATA_CENTERS = {
    "us": "https://api.cronofy.com",
    "uk": "https://api-uk.cronofy.com",
    "de": "https://api-de.cronofy.com",
    "au": "https://api-au.cronofy.com",
    "ca": "https://api-ca.cronofy.com",
    "sg": "https://api-sg.cronofy.com",
}

SINGLE_ACCOUNT_KEY = "access_token"


@dataclass(frozen=True)
class AccountConfig:
    """One connected calendar account. ``account_id`` is None until Cronofy names it."""

    account_id: str | None
    access_token: str
    refresh_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:  # never show tokens, even in a debugger or a traceback
        return f"AccountConfig(account_id={self.account_id!r})"


def api_base_url(config: t.Mapping[str, t.Any]) -> str:
    """The API base: ``api_url`` when set, else the data center's host."""
    if config.get("api_url"):
        return str(config["api_url"]).rstrip("/")
    return DATA_CENTERS[config.get("data_center") or "us"]


def configured_accounts(config: t.Mapping[str, t.Any]) -> list[AccountConfig]:
    """Accounts of this run, sorted by id so partitions do not depend on list order."""
    entries = config.get("accounts") or []
    if entries:
        accounts = [
            AccountConfig(
                account_id=entry["account_id"],
                access_token=entry["access_token"],
                refresh_token=entry.get("refresh_token") or config.get("refresh_token"),
            )
            for entry in entries
        ]
        return sorted(accounts, key=lambda account: account.account_id or "")
    if config.get("access_token"):
        return [
            AccountConfig(
                account_id=None,
                access_token=config["access_token"],
                refresh_token=config.get("refresh_token"),
            )
        ]
    return []


def read_scheduling_request_ids(config: t.Mapping[str, t.Any]) -> list[str]:
    """Ids from ``scheduling_request_ids`` and ``scheduling_request_ids_file``, de-duplicated."""
    ids: list[str] = list(config.get("scheduling_request_ids") or [])
    if path := config.get("scheduling_request_ids_file"):
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        ids.extend(
            line.strip() for line in lines if line.strip() and not line.strip().startswith("#")
        )
    return list(dict.fromkeys(ids))


def parse_config_date(value: str) -> dt.date:
    """A date (``2024-05-01``) or a date-time whose date part is used."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).date()


def _valid_zone(name: str) -> bool:
    if name not in _zone_names():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


_ZONES: set[str] | None = None


def _zone_names() -> set[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = set(available_timezones()) | {"UTC", "Etc/UTC"}
    return _ZONES


def _is_number(value: object) -> bool:
    return isinstance(value, (numbers.Real, Decimal)) and not isinstance(value, bool)


def _is_whole(value: object) -> bool:
    return _is_number(value) and int(value) == value  # type: ignore[arg-type]


def _check_string(config: t.Mapping[str, t.Any], name: str, errors: list[str]) -> None:
    value = config.get(name)
    if value is None:
        return
    if not isinstance(value, str) or not value.strip():
        errors.append(f"`{name}` must be a non-empty string.")
    elif value != value.strip():
        errors.append(f"`{name}` has leading or trailing whitespace; remove it.")


def _check_id_list(config: t.Mapping[str, t.Any], name: str, errors: list[str]) -> None:
    value = config.get(name)
    if value is None:
        return
    if not isinstance(value, list):
        errors.append(f"`{name}` must be a list of ids.")
        return
    seen: set[str] = set()
    for item in value:
        if problem := _id_problem(item, seen):
            errors.append(f"`{name}` has {problem}: {item!r}.")


def _id_problem(value: object, seen: set[str]) -> str | None:
    """What is wrong with an id (empty, whitespace, repeated), recording it as seen."""
    if not isinstance(value, str) or not value.strip():
        return "an empty or non-string id"
    if any(ch.isspace() for ch in value):
        return "an id with whitespace"
    if value in seen:
        return "an id listed more than once"
    seen.add(value)
    return None


def validate_values(config: t.Mapping[str, t.Any]) -> list[str]:
    """Problems with the values given, whatever is selected. Empty when the config is sound."""
    errors: list[str] = []
    for name in ("api_url", "access_token", "refresh_token", "client_id", "client_secret"):
        _check_string(config, name, errors)

    if api_url := config.get("api_url"):
        parts = urlsplit(str(api_url))
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            errors.append(
                f"`api_url` must be an http(s) URL like https://api.cronofy.com, got {api_url!r}."
            )
    data_center = config.get("data_center")
    if data_center is not None and data_center not in DATA_CENTERS:
        errors.append(
            f"`data_center` must be one of {', '.join(DATA_CENTERS)}, got {data_center!r}."
        )
    tzid = config.get("tzid")
    if tzid is not None and (not isinstance(tzid, str) or not _valid_zone(tzid)):
        errors.append(
            f"`tzid` must be an IANA time zone such as Etc/UTC or Europe/Paris, got {tzid!r}."
        )

    accounts = config.get("accounts")
    if accounts is not None:
        if not isinstance(accounts, list):
            errors.append("`accounts` must be a list of {account_id, access_token} objects.")
            accounts = []
        seen: set[str] = set()
        for index, entry in enumerate(accounts):
            where = f"`accounts[{index}]`"
            if not isinstance(entry, dict):
                errors.append(f"{where} must be an object with account_id and access_token.")
                continue
            account_id = entry.get("account_id")
            if account_id is None:
                errors.append(f"{where} has no `account_id`.")
            elif problem := _id_problem(account_id, seen):
                errors.append(f"{where} has {problem} as `account_id`: {account_id!r}.")
            else:
                where = f"`accounts` entry {account_id!r}"
            token = entry.get("access_token")
            if not isinstance(token, str) or not token.strip():
                errors.append(f"{where} has no `access_token`.")
            refresh = entry.get("refresh_token")
            if refresh is not None and (not isinstance(refresh, str) or not refresh.strip()):
                errors.append(f"{where} has an empty `refresh_token`.")
        if accounts and config.get("access_token"):
            errors.append("Set either `access_token` or `accounts`, not both.")

    _check_id_list(config, "calendar_ids", errors)
    _check_id_list(config, "scheduling_request_ids", errors)

    path = config.get("scheduling_request_ids_file")
    if path and not Path(path).is_file():
        errors.append(f"`scheduling_request_ids_file` {path!r} is not a readable file.")

    dates: dict[str, dt.date] = {}
    for name in ("start_date", "end_date"):
        value = config.get(name)
        if value is None:
            continue
        try:
            dates[name] = parse_config_date(str(value))
        except ValueError:
            errors.append(f"`{name}` must be a date such as 2024-05-01, got {value!r}.")
    if len(dates) == 2 and dates["start_date"] >= dates["end_date"]:
        errors.append("`start_date` must be before `end_date`.")

    for name, minimum in (
        ("max_retries", 1),
        ("requests_per_second", 1),
        ("requests_per_minute", 1),
        ("max_parallel_accounts", 1),
    ):
        value = config.get(name)
        if value is not None and (not _is_whole(value) or value < minimum):
            errors.append(f"`{name}` must be a whole number of at least {minimum}, got {value!r}.")
    for name in (
        "backoff_factor_seconds",
        "max_retry_wait_seconds",
        "request_timeout_seconds",
        "lookback_seconds",
    ):
        value = config.get(name)
        if value is not None and (not _is_number(value) or value < 0):
            errors.append(f"`{name}` must be a number of seconds, at least 0, got {value!r}.")

    has_refresh = bool(config.get("refresh_token")) or any(
        isinstance(entry, dict) and entry.get("refresh_token")
        for entry in (config.get("accounts") or [])
        if isinstance(config.get("accounts"), list)
    )
    if has_refresh:
        for name in ("client_id", "client_secret"):
            if not config.get(name):
                errors.append(
                    f"A refresh token is set but `{name}` is missing: tokens cannot be "
                    f"refreshed without the OAuth application's client_id and client_secret."
                )
    return errors
