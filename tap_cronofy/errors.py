"""Errors the tap raises, each worded so a user knows what to do next."""

from __future__ import annotations

import typing as t

from singer_sdk.exceptions import FatalAPIError


class CronofyAPIError(FatalAPIError):
    """A Cronofy response that retrying will not fix."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ParameterError(CronofyAPIError):
    """422: Cronofy refused the named request parameters (``fields``)."""

    def __init__(self, message: str, *, fields: t.Collection[str] = ()) -> None:
        super().__init__(message, status=422)
        self.fields = frozenset(fields)


class CredentialError(CronofyAPIError):
    """401 (after any refresh), 403 or 423: the caller words the advice."""


class AccountError(CronofyAPIError):
    """One account cannot be synced (revoked, locked, missing scope); others still can.

    ``final``: the account's credentials or identity are wrong, so no other stream of the
    run may ask Cronofy anything more for it (a failed refresh, a 401 after refreshing, 403,
    423, a token of another account)."""

    def __init__(
        self, account_id: str, message: str, *, status: int | None = None, final: bool = False
    ) -> None:
        super().__init__(message, status=status)
        self.account_id = account_id
        self.final = final


class ChangeLogError(CronofyAPIError):
    """Change-driven mode: the change log cannot be read; nothing is requested."""


class SharedQuotaError(CronofyAPIError):
    """The shared quota's database cannot be used: the run stops before any request."""


class ExpiredPageError(CronofyAPIError):
    """A ``next_page`` URL answered 404: its page token expired."""


class ForeignHostError(CronofyAPIError):
    """A URL pointed away from the configured API host; the token is not sent there."""
