"""One account's credentials tried with one request: a token refresh, else its userinfo."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from tap_cronofy.accounts import ADVICE, APP_REFUSED, UNNAMED
from tap_cronofy.errors import CronofyAPIError

if t.TYPE_CHECKING:
    from tap_cronofy.accounts import Accounts
    from tap_cronofy.client import CronofyClient

FREE_BUSY_SCOPES = {"read_free_busy", "read_events"}  # either lets the tap read free-busy
APP = "the application's own credentials (client_id/client_secret) were refused: see the last line"


@dataclass(frozen=True)
class Result:
    account_id: str
    ok: bool
    why: str  # "ok", or what is wrong, with what to do


def probe(
    account_id: str, accounts: Accounts, client: CronofyClient, *, identity: bool = False
) -> Result:
    """With refresh credentials: one token refresh (client_id, client_secret and the
    refresh token all proven; a rotated refresh token is saved as in a run), the scope it
    grants checked; with ``identity``, one ``/v1/userinfo`` more, which proves the token is
    the account's own (a refresh does not say whose it is). Without refresh credentials:
    one ``/v1/userinfo``, the token proven to be the account's."""
    try:
        credential = accounts.credential(account_id)
        if credential.can_refresh:
            if accounts.application.refused:
                return Result(account_id, False, APP)  # no request: it would fail alike
            credential.bearer(client)
            scope = credential.scope
            if scope is not None and not FREE_BUSY_SCOPES & set(scope.split()):
                return Result(account_id, False, f"granted {scope!r}. {ADVICE[403]}")
            if not identity:
                return Result(account_id, True, "ok: token refreshed")
            accounts.verify(account_id, None)  # None: Cronofy's userinfo is asked
            return Result(account_id, True, "ok: token refreshed, its account checked")
        accounts.verify(account_id, None)  # None: Cronofy's userinfo is asked
        return Result(account_id, True, "ok: token accepted, its account checked")
    except CronofyAPIError as exc:
        if str(exc) == APP_REFUSED:
            return Result(account_id, False, APP)
        failure = accounts.fail(account_id, exc)[0]
        return Result(account_id, False, str(failure))


def unnamed(failures: t.Mapping[str, str]) -> Result:
    """A lone access_token whose account could not be asked (its userinfo failed)."""
    return Result(UNNAMED, False, failures.get(UNNAMED, "Cronofy did not name its account"))


def application_line(accounts: Accounts) -> str | None:
    return APP_REFUSED if accounts.application.refused else None
